// Operational webhooks through the SDK: the environment's own endpoints, managed apart from its
// customers', and the signed events they get about customers' endpoints, verified with `Webhook`
// and read through the `OperationalEvent` union.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import {
  ApiError,
  isOperationalEvent,
  isOperationalEventType,
  OPERATIONAL_EVENT_TYPES,
  type OperationalEvent,
  type OperationalEventType,
  Webhook,
} from "../src/index.js";
import { client, eventually, type Receiver, startReceiver, uniqueUid } from "./support.js";

const octohooks = client();
const ops = octohooks.operationalWebhookEndpoint;

/**
 * Deletes the operational endpoint once the test is over, whatever happened: one left behind
 * would be told of every endpoint the later test files make.
 */
function deleteAfter(endpointId: string): void {
  after(async () => {
    try {
      await ops.delete(endpointId);
    } catch (e) {
      if (!(e instanceof ApiError && e.code === "not_found")) throw e;
    }
  });
}

async function allIds(): Promise<string[]> {
  const ids: string[] = [];
  for await (const endpoint of ops.listAll({ limit: 1 })) ids.push(endpoint.id);
  return ids;
}

/**
 * One line per event, reading the fields that only some types have: it compiles only because
 * the union narrows `data` on `type`, and the `never` at the end only if every type is handled.
 */
function summary(event: OperationalEvent): string {
  switch (event.type) {
    case "endpoint.created":
    case "endpoint.updated":
    case "endpoint.deleted":
    case "endpoint.enabled":
      return `${event.type} ${event.data.endpointId}`;
    case "endpoint.disabled":
      return `${event.type} ${event.data.endpointId} ${event.data.trigger} ${event.data.failSince}`;
    case "message.attempt.failing":
    case "message.attempt.exhausted":
    case "message.attempt.recovered":
      return `${event.type} ${event.data.msgId} ${event.data.lastAttempt.responseStatusCode}`;
    default: {
      const unknown: never = event;
      return String(unknown);
    }
  }
}

/** The `i`th webhook the receiver got, once it came, verified and read as an operational event. */
async function event(receiver: Receiver, webhook: Webhook, i: number): Promise<OperationalEvent> {
  const hook = await eventually(async () => receiver.received[i]);
  const body = webhook.verify(hook.body, hook.headers);
  assert.ok(isOperationalEvent(body), `not an operational event: ${hook.body}`);
  return body;
}

test("the type names are the API's, and the guard knows them", () => {
  assert.equal(OPERATIONAL_EVENT_TYPES.length, 8);
  assert.ok(OPERATIONAL_EVENT_TYPES.every(isOperationalEventType));
  assert.ok(!isOperationalEventType("invoice.paid"));
  const data = { appId: "a", appUid: null, endpointId: "e", endpointUid: null };
  assert.ok(isOperationalEvent({ type: "endpoint.created", timestamp: 1, data }));
  assert.ok(!isOperationalEvent({ type: "endpoint.renamed", timestamp: 1, data }), "unknown type");
  assert.ok(!isOperationalEvent({ type: "endpoint.created", data }), "no timestamp");
  assert.ok(!isOperationalEvent({ type: "endpoint.created", timestamp: 1, data: null }));
  assert.ok(!isOperationalEvent("endpoint.created"));
  const created: OperationalEvent = { type: "endpoint.created", timestamp: 1, data };
  assert.equal(summary(created), "endpoint.created e");
  // @ts-expect-error: only endpoint.disabled has a trigger
  assert.equal(created.data.trigger, undefined);
  const disabled: OperationalEvent = {
    type: "endpoint.disabled",
    timestamp: 2,
    data: { ...data, trigger: "automatic", failSince: 1 },
  };
  assert.equal(summary(disabled), "endpoint.disabled e automatic 1");
  // @ts-expect-error: only message.attempt.* events have a lastAttempt
  assert.equal(disabled.data.lastAttempt, undefined);
});

test("create, list, get, update, patch, rotate the secret, delete", async () => {
  const uid = uniqueUid("ops");
  const created = await ops.create({
    url: "http://127.0.0.1:9/ops",
    uid,
    description: "pager",
    eventTypes: ["endpoint.disabled", "message.attempt.exhausted"],
  });
  deleteAfter(created.id);
  assert.equal(created.url, "http://127.0.0.1:9/ops");
  assert.equal(created.uid, uid);
  assert.equal(created.description, "pager");
  assert.deepEqual(created.eventTypes, ["endpoint.disabled", "message.attempt.exhausted"]);
  assert.deepEqual(created.channels, []);
  assert.equal(created.enabled, true);
  // A second one, disabled: nothing is sent to it, and the list has two pages of one. Sent
  // twice with one idempotency key, it is made once.
  const idempotencyKey = uniqueUid("ops-key");
  const quiet = await ops.create(
    { url: "http://127.0.0.1:9/quiet", enabled: false },
    { idempotencyKey },
  );
  deleteAfter(quiet.id);
  assert.equal(quiet.enabled, false);
  const replayed = await ops.create(
    { url: "http://127.0.0.1:9/quiet", enabled: false },
    { idempotencyKey },
  );
  assert.deepEqual(replayed, quiet);

  assert.deepEqual(await ops.get(created.id), created);
  assert.deepEqual(await ops.get(uid), created);
  const page = await ops.list({ limit: 250 });
  assert.ok(page.data.some((endpoint) => endpoint.id === created.id));
  assert.equal(page.done, true);
  const ids = await allIds();
  assert.deepEqual(
    ids.filter((id) => id === created.id || id === quiet.id),
    [created.id, quiet.id],
    "each once, oldest first",
  );

  const updated = await ops.update(uid, { url: "http://127.0.0.1:9/v2", eventTypes: [] });
  assert.equal(updated.url, "http://127.0.0.1:9/v2");
  assert.deepEqual(updated.eventTypes, [], "an empty filter: every operational event");
  assert.equal(updated.description, "pager", "fields left out keep their value");
  const patched = await ops.patch(created.id, {
    description: "on call",
    eventTypes: ["message.attempt.failing"],
  });
  assert.equal(patched.description, "on call");
  assert.deepEqual(patched.eventTypes, ["message.attempt.failing"]);
  assert.equal(patched.url, "http://127.0.0.1:9/v2", "fields left out are kept");
  const unfiltered = await ops.patch(uid, { eventTypes: null });
  assert.deepEqual(unfiltered.eventTypes, []);

  const secret = await ops.getSecret(uid);
  assert.match(secret.key, /^whsec_/);
  await ops.rotateSecret(uid);
  const rotated = await ops.getSecret(uid);
  assert.notEqual(rotated.key, secret.key);
  const chosen = `whsec_${Buffer.alloc(24, 7).toString("base64")}`;
  await ops.rotateSecret(created.id, { key: chosen });
  assert.equal((await ops.getSecret(created.id)).key, chosen);

  const attempts = await ops.listAttempts(uid);
  assert.deepEqual(attempts, { data: [], iterator: null, done: true }, "nothing sent yet");

  const deleted = await ops.delete(uid);
  assert.equal(deleted.id, created.id);
  await assert.rejects(ops.get(uid), { name: "ApiError", status: 404, code: "not_found" });
  assert.ok(!(await allIds()).includes(created.id));
});

test("a filter naming anything but operational event types is refused, and nothing made", async () => {
  const before = await allIds();
  const uid = uniqueUid("ops-bad");
  const refused = await ops
    .create({
      url: "http://127.0.0.1:9/ops",
      uid,
      eventTypes: ["endpoint.created", "invoice.paid" as OperationalEventType],
    })
    .then(
      () => assert.fail("an unknown event type was accepted"),
      (e: unknown) => e,
    );
  assert.ok(refused instanceof ApiError, String(refused));
  assert.equal(refused.status, 422);
  assert.equal(refused.code, "validation_error");
  assert.match(refused.detail, /^eventTypes/);
  assert.match(refused.detail, /invoice\.paid/);
  await assert.rejects(ops.get(uid), { code: "not_found" });
  assert.deepEqual(await allIds(), before);

  // Nor may a change bring one in: the endpoint stays as it was.
  const kept = await ops.create({
    url: "http://127.0.0.1:9/ops",
    eventTypes: ["endpoint.deleted"],
  });
  deleteAfter(kept.id);
  await assert.rejects(
    ops.patch(kept.id, { eventTypes: ["user.created" as OperationalEventType] }),
    { status: 422, code: "validation_error" },
  );
  assert.deepEqual((await ops.get(kept.id)).eventTypes, ["endpoint.deleted"]);
});

test("a customer's endpoint changes reach the operational endpoint, signed and typed", async () => {
  const receiver = await startReceiver();
  after(() => receiver.close());
  const operational = await ops.create({ url: `${receiver.url}/ops` });
  deleteAfter(operational.id);
  const { key } = await ops.getSecret(operational.id);
  const webhook = new Webhook(key);

  const app = await octohooks.application.create({ name: "Watched", uid: uniqueUid("watched") });
  const endpoint = await octohooks.endpoint.create(app.id, {
    url: "http://127.0.0.1:9/customer",
    uid: "customer",
  });
  const created = await event(receiver, webhook, 0);
  assert.equal(created.type, "endpoint.created");
  assert.deepEqual(created.data, {
    appId: app.id,
    appUid: app.uid,
    endpointId: endpoint.id,
    endpointUid: "customer",
  });
  assert.ok(created.timestamp >= endpoint.created - 1000 && created.timestamp <= Date.now());
  // The tampered body is refused like any webhook's.
  const first = receiver.received[0];
  assert.ok(first);
  assert.throws(() => webhook.verify(first.body.replace("customer", "client"), first.headers));

  // Disabled by hand: the event tells so, in the fields only that type has.
  await octohooks.endpoint.patch(app.id, "customer", { enabled: false });
  const disabled = await event(receiver, webhook, 1);
  if (disabled.type !== "endpoint.disabled") assert.fail(`got ${summary(disabled)}`);
  assert.equal(disabled.data.trigger, "manual");
  assert.equal(disabled.data.failSince, null);
  assert.equal(disabled.data.endpointId, endpoint.id);
  assert.ok(!("lastAttempt" in disabled.data));

  // Deleted with its application.
  await octohooks.application.delete(app.id);
  const deleted = await event(receiver, webhook, 2);
  assert.equal(summary(deleted), `endpoint.deleted ${endpoint.id}`);

  // Each was delivered once, and the operational endpoint's attempts show it, newest first.
  const messageIds = receiver.received.map((hook) => hook.headers["webhook-id"]);
  assert.equal(new Set(messageIds).size, 3);
  const attempts = await eventually(async () => {
    const page = await ops.listAttempts(operational.id);
    return page.data.length === 3 ? page.data : undefined;
  });
  assert.deepEqual(
    attempts.map((attempt) => attempt.messageId),
    [...messageIds].reverse(),
  );
  for (const attempt of attempts) {
    assert.equal(attempt.status, "success");
    assert.equal(attempt.responseStatusCode, 204);
    assert.equal(attempt.endpointId, operational.id);
    assert.equal(attempt.url, `${receiver.url}/ops`);
  }
  const all = [];
  for await (const attempt of ops.listAllAttempts(operational.id, { limit: 2 })) all.push(attempt);
  assert.deepEqual(all, attempts);
  assert.equal(receiver.received.length, 3, "nothing else was sent");
});

test("a message whose retries run out raises message.attempt.exhausted with its last attempt", async () => {
  const receiver = await startReceiver();
  after(() => receiver.close());
  const operational = await ops.create({
    url: `${receiver.url}/ops`,
    eventTypes: ["message.attempt.exhausted"],
  });
  deleteAfter(operational.id);
  const webhook = new Webhook((await ops.getSecret(operational.id)).key);

  const customer = await startReceiver();
  after(() => customer.close());
  customer.status = 500;
  const app = await octohooks.application.create({ name: "Failing", uid: uniqueUid("failing") });
  const endpoint = await octohooks.endpoint.create(app.id, { url: `${customer.url}/hook` });
  const msgUid = uniqueUid("order");
  const sent = await octohooks.message.create(app.id, {
    eventType: "order.placed",
    uid: msgUid,
    payload: { n: 1 },
  });

  const exhausted = await event(receiver, webhook, 0);
  if (exhausted.type !== "message.attempt.exhausted") assert.fail(`got ${summary(exhausted)}`);
  assert.equal(exhausted.data.endpointId, endpoint.id);
  assert.equal(exhausted.data.msgId, sent.id);
  assert.equal(exhausted.data.msgUid, msgUid);
  assert.equal(exhausted.data.lastAttempt.responseStatusCode, 500);
  // lastAttempt is the customer's last attempt, as the attempt routes know it.
  const last = await octohooks.messageAttempt.get(app.id, sent.id, exhausted.data.lastAttempt.id);
  assert.equal(last.endpointId, endpoint.id);
  assert.equal(last.status, "failed");
  assert.ok(Math.abs(last.created - exhausted.data.lastAttempt.timestamp) <= 1, "same time");
  const attempts = await octohooks.messageAttempt.listByEndpoint(app.id, endpoint.id);
  assert.equal(attempts.data[0]?.id, last.id, "the newest attempt");
  // The filter takes that type only: the endpoint's creation was not sent.
  assert.equal(receiver.received.length, 1);
  await octohooks.application.delete(app.id);
});
