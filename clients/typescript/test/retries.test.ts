// Retries through a proxy that injects faults in front of the real API: what is retried, how
// long the client waits, and that idempotency keys make a retried POST act once.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { ApiError, ConnectionError, Octohooks } from "../src/index.js";
import { apiKey, client, type Fault, startFaultProxy, uniqueUid } from "./support.js";

const octohooks = client();

// Closed after the file's tests even when one fails, so that a failure cannot hang the run.
const proxies: { close: () => Promise<void> }[] = [];
after(() => Promise.all(proxies.map((proxy) => proxy.close())));

async function throughProxy(
  faults: Fault[],
  options: { retries?: number; timeoutMs?: number } = {},
) {
  const proxy = await startFaultProxy(faults);
  proxies.push(proxy);
  const proxied = new Octohooks(apiKey, { serverUrl: proxy.url, ...options });
  return { proxy, proxied };
}

async function countApps(name: string): Promise<number> {
  let count = 0;
  for await (const app of octohooks.application.listAll({ limit: 250 })) {
    if (app.name === name) count += 1;
  }
  return count;
}

test("a POST answered 503 after it was done is retried with the same key and created once", async () => {
  const { proxy, proxied } = await throughProxy([
    { status: 503, forward: true, headers: { "retry-after": "0" } },
  ]);
  const name = uniqueUid("once");
  const app = await proxied.application.create({ name });
  assert.equal(app.name, name);
  assert.equal(proxy.requests.length, 2);
  const [first, second] = proxy.requests;
  assert.ok(first?.idempotencyKey, "a key is generated");
  assert.equal(second?.idempotencyKey, first?.idempotencyKey);
  assert.equal(await countApps(name), 1);
});

test("a given idempotency key is sent as it is, and replays the first answer", async () => {
  const name = uniqueUid("keyed");
  const key = uniqueUid("key");
  const first = await octohooks.application.create({ name }, { idempotencyKey: key });
  const again = await octohooks.application.create({ name }, { idempotencyKey: key });
  assert.deepEqual(again, first);
  assert.equal(await countApps(name), 1);
  // Without a key of one's own, every call is a new request.
  await octohooks.application.create({ name });
  assert.equal(await countApps(name), 2);
});

test("a dropped connection and a timeout are retried", async () => {
  const { proxy, proxied } = await throughProxy(["drop", { delayMs: 4_000 }], { timeoutMs: 1_500 });
  const app = await proxied.application.create({ name: uniqueUid("flaky") });
  assert.equal(proxy.requests.length, 3);
  assert.equal(new Set(proxy.requests.map((r) => r.idempotencyKey)).size, 1);
  assert.equal((await octohooks.application.get(app.id)).id, app.id);
});

test("429 waits for Retry-After before the retry", async () => {
  const { proxy, proxied } = await throughProxy([
    { status: 429, headers: { "retry-after": "1" }, body: { code: "rate_limited" } },
  ]);
  await proxied.application.list();
  assert.equal(proxy.requests.length, 2);
  const [first, second] = proxy.requests;
  assert.ok(first && second);
  assert.ok(second.at - first.at >= 950, `retried after ${second.at - first.at} ms`);
});

test("502, 504 and 409 idempotency_in_progress are retried", async () => {
  const { proxy, proxied } = await throughProxy([
    { status: 502 },
    { status: 504 },
    { status: 409, body: { code: "idempotency_in_progress", detail: "still running" } },
  ]);
  await proxied.application.create({ name: uniqueUid("retried") });
  assert.equal(proxy.requests.length, 4);
});

test("other 4xx are never retried", async () => {
  for (const status of [400, 401, 404, 409, 422]) {
    const { proxy, proxied } = await throughProxy([
      { status, body: { code: "conflict", detail: `answered ${status}` } },
    ]);
    await assert.rejects(
      proxied.application.list(),
      (e) => e instanceof ApiError && e.status === status,
    );
    assert.equal(proxy.requests.length, 1, `${status} was retried`);
  }
});

test("retries are bounded, and the last failure is thrown", async () => {
  const { proxy, proxied } = await throughProxy(
    [{ status: 503 }, { status: 503 }, { status: 503 }],
    { retries: 2 },
  );
  await assert.rejects(proxied.application.list(), { name: "ApiError", status: 503 });
  assert.equal(proxy.requests.length, 3);

  const down = new Octohooks(apiKey, { serverUrl: "http://127.0.0.1:9", retries: 1 });
  await assert.rejects(down.application.list(), (e) => e instanceof ConnectionError && !e.timedOut);
});

test("a call can be cancelled, and is not retried then", async () => {
  const { proxy, proxied } = await throughProxy([{ delayMs: 2_000 }]);
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  await assert.rejects(proxied.application.list({ signal: controller.signal }), {
    name: "AbortError",
  });
  assert.equal(proxy.requests.length, 1);
});
