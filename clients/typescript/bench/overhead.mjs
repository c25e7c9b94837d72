// What the SDK costs per `message.create` against a bare `fetch` of the same request, both
// sequential against one running API, interleaved call by call so that both see the same
// machine. Three variants: the SDK as users call it (it adds a generated Idempotency-Key, which
// the server then keeps), a bare fetch with an Idempotency-Key of its own (the same server work:
// the difference is the client's own cost), and a bare fetch without one.
// Usage: node bench/overhead.mjs <serverUrl> <apiKey> <appUid> [calls]; prints one JSON line.
import { randomUUID } from "node:crypto";
import { Octohooks } from "../dist/index.js";

const [serverUrl, apiKey, app, callsText] = process.argv.slice(2);
if (!serverUrl || !apiKey || !app) {
  console.error("usage: node bench/overhead.mjs <serverUrl> <apiKey> <appUid> [calls]");
  process.exit(2);
}
const calls = Number(callsText ?? 2000);
const octohooks = new Octohooks(apiKey, { serverUrl });
const body = { eventType: "bench.sdk", payload: { order: 42, items: ["a", "b"], paid: true } };
const url = `${serverUrl}/api/v1/applications/${app}/messages`;

const variants = {
  sdk: () => octohooks.message.create(app, body),
  fetchWithKey: () => bare({ "idempotency-key": randomUUID() }),
  fetch: () => bare({}),
};

async function bare(extra) {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      authorization: `Bearer ${apiKey}`,
      "content-type": "application/json",
      accept: "application/json",
      ...extra,
    },
    body: JSON.stringify(body),
  });
  if (response.status !== 202) throw new Error(`answered ${response.status}`);
  return response.json();
}

async function time(call) {
  const started = process.hrtime.bigint();
  await call();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const median = (samples) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

const names = Object.keys(variants);
const samples = Object.fromEntries(names.map((name) => [name, []]));
for (let i = 0; i < 200; i++) for (const name of names) await variants[name]();
for (let i = 0; i < calls; i++) {
  // Rotate the order so that no variant always follows another.
  for (let j = 0; j < names.length; j++) {
    const name = names[(i + j) % names.length];
    samples[name].push(await time(variants[name]));
  }
}
console.log(
  JSON.stringify({
    calls,
    sdkMs: median(samples.sdk),
    fetchWithKeyMs: median(samples.fetchWithKey),
    fetchMs: median(samples.fetch),
  }),
);
