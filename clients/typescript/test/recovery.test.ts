// Endpoint statistics, recover and replay-missing against the real API and dispatcher (which
// runs the background tasks), with a receiver that fails on demand; `backgroundTask.waitFor`
// also through a proxy that answers for the API.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, test } from "node:test";
import { ApiError, type BackgroundTaskOut, Octohooks, WaitTimeoutError } from "../src/index.js";
import {
  apiKey,
  client,
  eventually,
  type ReceivedWebhook,
  serverUrl,
  startFaultProxy,
  startReceiver,
  uniqueUid,
} from "./support.js";

const octohooks = client();
const HOUR = 3_600_000;
const WAIT = { intervalMs: 100, timeoutMs: 20_000 };

// Closed after the file's tests even when one fails, so that a failure cannot hang the run.
const servers: { close: () => Promise<void> }[] = [];
after(() => Promise.all(servers.map((server) => server.close())));

async function receiver() {
  const started = await startReceiver();
  servers.push(started);
  return started;
}

/** How many times each message (by `webhook-id`) reached the receiver. */
function arrivals(received: ReceivedWebhook[]): Map<string, number> {
  const seen = new Map<string, number>();
  for (const hook of received) {
    const id = String(hook.headers["webhook-id"]);
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  return seen;
}

async function sendMessages(appId: string, eventType: string, count: number): Promise<string[]> {
  const ids = [];
  for (let n = 0; n < count; n++) {
    ids.push((await octohooks.message.create(appId, { eventType, payload: { n } })).id);
  }
  return ids;
}

test("a fresh endpoint's statistics are zero, over a window of whole hours", async () => {
  const app = await octohooks.application.create({ name: "Stats", uid: uniqueUid("stats") });
  const endpoint = await octohooks.endpoint.create(app.id, { url: "http://127.0.0.1:9/stats" });

  const week = await octohooks.endpoint.stats(app.id, endpoint.id);
  assert.deepEqual(
    { ...week, since: 0, until: 0 },
    {
      success: 0,
      failure: 0,
      pending: 0,
      inFlight: 0,
      lastSuccess: null,
      lastFailure: null,
      since: 0,
      until: 0,
    },
  );
  assert.equal(week.since % HOUR, 0);
  assert.equal(week.until % HOUR, 0);
  const span = week.until - week.since;
  assert.ok(span >= 7 * 24 * HOUR && span <= 7 * 24 * HOUR + HOUR, "7 days by default");

  const now = Date.now();
  const day = await octohooks.endpoint.stats(app.id, endpoint.id, {
    since: new Date(now - 24 * HOUR),
    until: now,
  });
  assert.equal(day.since, Math.floor((now - 24 * HOUR) / HOUR) * HOUR);
  assert.equal(day.until, Math.ceil(now / HOUR) * HOUR);
  await assert.rejects(octohooks.endpoint.stats(app.id, "no-such-endpoint"), {
    status: 404,
    code: "not_found",
  });
  const text = await octohooks.endpoint.stats(app.id, endpoint.id, {
    since: new Date(now - HOUR).toISOString(),
  });
  assert.equal(text.since, Math.floor((now - HOUR) / HOUR) * HOUR);
  await octohooks.application.delete(app.id);
});

test("recover resends the messages whose delivery failed, once, and stats count it", async () => {
  const hooks = await receiver();
  const app = await octohooks.application.create({ name: "Recover", uid: uniqueUid("recover") });
  const endpoint = await octohooks.endpoint.create(app.id, { url: `${hooks.url}/in` });
  const since = new Date(Date.now() - 1_000);
  const [delivered] = await sendMessages(app.id, "order.placed", 1);
  await eventually(async () => (hooks.received.length === 1 ? true : undefined));
  hooks.status = 500;
  const failed = await sendMessages(app.id, "order.placed", 2);
  await eventually(async () => {
    const page = await octohooks.message.list(app.id, { status: "failed" });
    return page.data.length === 2 ? true : undefined;
  });

  let failedAttempts = 0;
  for await (const attempt of octohooks.messageAttempt.listAllByEndpoint(app.id, endpoint.id)) {
    if (attempt.status === "failed") failedAttempts += 1;
  }
  const before = await octohooks.endpoint.stats(app.id, endpoint.id, { since });
  assert.equal(before.success, 1);
  assert.equal(before.failure, failedAttempts);
  assert.ok(failedAttempts >= 2, "each failed message was tried");
  assert.ok(before.lastSuccess !== null && before.lastFailure !== null);
  assert.ok(before.lastSuccess <= before.lastFailure);
  assert.equal(before.pending + before.inFlight, 0, "nothing waits after the last retry");

  hooks.status = 204;
  const task = await octohooks.endpoint.recover(app.id, endpoint.id, { since });
  assert.equal(task.task, "endpoint.recover");
  assert.equal(task.status, "running");
  assert.equal(task.appId, app.id);
  assert.equal(task.endpointId, endpoint.id);
  assert.equal(task.since, since.getTime());
  assert.ok(task.until <= Date.now(), "until defaults to now");
  const done = await octohooks.backgroundTask.waitFor(task.id, WAIT);
  assert.equal(done.status, "finished");
  assert.equal(done.failure, null);
  assert.equal(done.messagesScanned, 3);
  assert.equal(done.messagesQueued, 2, "the delivered message is not sent again");

  await eventually(async () => {
    const page = await octohooks.message.list(app.id, { status: "failed" });
    return page.data.length === 0 ? true : undefined;
  });
  const seen = arrivals(hooks.received);
  assert.deepEqual(
    [delivered, ...failed].map((id) => seen.get(id ?? "")),
    [1, failedAttempts / 2 + 1, failedAttempts / 2 + 1],
    "each failed message once more, the delivered one not again",
  );
  const afterwards = await octohooks.endpoint.stats(app.id, endpoint.id, { since });
  assert.equal(afterwards.success, 3);
  assert.equal(afterwards.failure, failedAttempts);

  assert.deepEqual(await octohooks.backgroundTask.get(task.id), done);
  const finished = await octohooks.backgroundTask.list({
    endpointId: endpoint.id,
    status: "finished",
  });
  assert.deepEqual(finished.data, [done]);
  const running = await octohooks.backgroundTask.list({
    endpointId: endpoint.id,
    status: "running",
  });
  assert.deepEqual(running.data, []);

  // Nothing failed any more: a second recovery of the window queues nothing.
  const again = await octohooks.endpoint.recover(app.id, endpoint.id, { since: since.getTime() });
  const none = await octohooks.backgroundTask.waitFor(again.id, WAIT);
  assert.equal(none.messagesScanned, 3);
  assert.equal(none.messagesQueued, 0);
  const listed: string[] = [];
  for await (const item of octohooks.backgroundTask.listAll({
    endpointId: endpoint.id,
    limit: 1,
  })) {
    listed.push(item.id);
  }
  assert.deepEqual(listed, [again.id, task.id], "newest first, page after page");
  await octohooks.application.delete(app.id);
});

test("replay-missing sends a new endpoint the messages sent before it, through its filters", async () => {
  const hooks = await receiver();
  const app = await octohooks.application.create({ name: "Replay", uid: uniqueUid("replay") });
  const since = Date.now() - 60_000;
  const paid = await sendMessages(app.id, "invoice.paid", 3);
  await sendMessages(app.id, "invoice.voided", 1);
  const endpoint = await octohooks.endpoint.create(app.id, {
    url: `${hooks.url}/late`,
    eventTypes: ["invoice.paid"],
  });

  const task = await octohooks.endpoint.replayMissing(app.id, endpoint.id, {
    since,
    until: new Date(Date.now() + 60_000),
  });
  assert.equal(task.task, "endpoint.replay");
  assert.equal(task.status, "running");
  assert.ok(task.until <= Date.now(), "a later until means now");
  const seen: BackgroundTaskOut[] = [];
  const done = await octohooks.backgroundTask.waitFor(task.id, {
    ...WAIT,
    onProgress: (progress) => seen.push(progress),
  });
  assert.equal(done.status, "finished");
  assert.equal(done.messagesScanned, 4);
  assert.equal(done.messagesQueued, 3, "the voided invoice does not pass the filter");
  assert.deepEqual(seen.at(-1), done);
  assert.ok(seen.slice(0, -1).every((progress) => progress.status === "running"));

  const got = await eventually(async () => {
    const ids = [...arrivals(hooks.received).keys()];
    return ids.length === 3 ? ids : undefined;
  });
  assert.deepEqual(got.sort(), [...paid].sort());

  // The endpoint has them all now: replaying the window again queues nothing.
  const again = await octohooks.endpoint.replayMissing(app.id, endpoint.id, {
    since: new Date(since).toISOString(),
  });
  const none = await octohooks.backgroundTask.waitFor(again.id, WAIT);
  assert.equal(none.messagesQueued, 0);
  await octohooks.application.delete(app.id);
});

test("refusals: invalid windows and filters, a disabled endpoint, an unknown task", async () => {
  const app = await octohooks.application.create({ name: "Refusals", uid: uniqueUid("refuse") });
  const endpoint = await octohooks.endpoint.create(app.id, { url: "http://127.0.0.1:9/r" });
  const invalid = { name: "ApiError", status: 422, code: "validation_error" };
  const now = Date.now();

  await assert.rejects(
    octohooks.endpoint.recover(app.id, endpoint.id, { since: new Date(now + HOUR) }),
    invalid,
  );
  await assert.rejects(
    octohooks.endpoint.replayMissing(app.id, endpoint.id, { since: "yesterday" }),
    invalid,
  );
  await assert.rejects(
    octohooks.endpoint.recover(app.id, endpoint.id, { since: now - HOUR, until: now - 2 * HOUR }),
    invalid,
  );
  await assert.rejects(
    octohooks.endpoint.stats(app.id, endpoint.id, { since: now, until: now - 2 * HOUR }),
    invalid,
  );
  await assert.rejects(octohooks.endpoint.stats(app.id, endpoint.id, { since: "soon" }), invalid);
  await assert.rejects(
    octohooks.backgroundTask.list({ status: "lost" as "running" }),
    (e) => e instanceof ApiError && e.code === "validation_error" && /status/.test(e.detail),
  );
  await assert.rejects(octohooks.backgroundTask.get(randomUUID()), {
    status: 404,
    code: "not_found",
  });

  await octohooks.endpoint.patch(app.id, endpoint.id, { enabled: false });
  const conflict = { status: 409, code: "conflict" };
  await assert.rejects(
    octohooks.endpoint.recover(app.id, endpoint.id, { since: now - HOUR }),
    conflict,
  );
  await assert.rejects(
    octohooks.endpoint.replayMissing(app.id, endpoint.id, { since: now - HOUR }),
    conflict,
  );
  await octohooks.application.delete(app.id);
});

test("a portal token reads its application's stats and tasks; a read-only one starts none", async () => {
  const app = await octohooks.application.create({ name: "Portal", uid: uniqueUid("ptasks") });
  const other = await octohooks.application.create({ name: "Other", uid: uniqueUid("pother") });
  const endpoint = await octohooks.endpoint.create(app.id, { url: "http://127.0.0.1:9/p" });
  const otherEndpoint = await octohooks.endpoint.create(other.id, { url: "http://127.0.0.1:9/o" });
  const since = Date.now() - HOUR;
  const otherTask = await octohooks.endpoint.replayMissing(other.id, otherEndpoint.id, { since });

  const viewer = new Octohooks(
    (await octohooks.portalAccess.create(app.id, { readOnly: true })).token,
    { serverUrl },
  );
  assert.equal((await viewer.endpoint.stats(app.id, endpoint.id)).success, 0);
  await assert.rejects(viewer.endpoint.recover(app.id, endpoint.id, { since }), {
    status: 403,
    code: "forbidden",
  });

  const portal = new Octohooks((await octohooks.portalAccess.create(app.id)).token, {
    serverUrl,
  });
  const task = await portal.endpoint.replayMissing(app.id, endpoint.id, { since });
  assert.equal((await portal.backgroundTask.waitFor(task.id, WAIT)).status, "finished");
  assert.deepEqual(
    (await portal.backgroundTask.list()).data.map((item) => item.id),
    [task.id],
    "only its own application's tasks",
  );
  await assert.rejects(viewer.backgroundTask.get(otherTask.id), { code: "not_found" });
  await octohooks.application.delete(app.id);
  await octohooks.application.delete(other.id);
});

test("waitFor reads until the task is no longer running, and gives up after timeoutMs", async () => {
  const app = await octohooks.application.create({ name: "Wait", uid: uniqueUid("wait") });
  const endpoint = await octohooks.endpoint.create(app.id, { url: "http://127.0.0.1:9/w" });
  const task = await octohooks.endpoint.replayMissing(app.id, endpoint.id, {
    since: Date.now() - HOUR,
  });
  const running = { status: 200, body: { ...task, status: "running" } };

  const proxy = await startFaultProxy([running, running]);
  servers.push(proxy);
  const proxied = new Octohooks(apiKey, { serverUrl: proxy.url });
  const done = await proxied.backgroundTask.waitFor(task.id, WAIT);
  assert.equal(done.status, "finished");
  assert.ok(proxy.requests.length >= 3, "two running answers, then the API's own");
  const gaps = proxy.requests
    .slice(1)
    .map((request, n) => request.at - (proxy.requests[n]?.at ?? 0));
  assert.ok(
    gaps.every((gap) => gap >= 90),
    `reads ${WAIT.intervalMs} ms apart: ${gaps.join(", ")}`,
  );

  const stuck = await startFaultProxy(Array.from({ length: 50 }, () => running));
  servers.push(stuck);
  const waiting = new Octohooks(apiKey, { serverUrl: stuck.url });
  const error = await waiting.backgroundTask
    .waitFor(task.id, { intervalMs: 50, timeoutMs: 300 })
    .catch((e: unknown) => e);
  assert.ok(error instanceof WaitTimeoutError, `not a WaitTimeoutError: ${error}`);
  assert.equal(error.task.id, task.id);
  assert.equal(error.task.status, "running");
  assert.ok(stuck.requests.length >= 2 && stuck.requests.length <= 8, "reads until 300 ms");
  await octohooks.application.delete(app.id);
});
