// Expunging a payload (`message.expungeContent`) and `payloadRetentionPeriod`, against the real
// API and dispatcher: the payload goes, the message's history stays, nothing is sent again.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { ApiError, type MessageOut, Octohooks } from "../src/index.js";
import { client, eventually, serverUrl, startReceiver, uniqueUid } from "./support.js";

const octohooks = client();

async function failure(call: Promise<unknown>): Promise<ApiError> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof ApiError, `not an ApiError: ${error}`);
    return error;
  }
  assert.fail("the call succeeded");
}

async function ids(appId: string): Promise<string[]> {
  const all: string[] = [];
  for await (const message of octohooks.message.listAll(appId)) all.push(message.id);
  return all;
}

test("a delivered message expunged reads payload {}, keeps its attempts, and cannot be resent", async () => {
  const receiver = await startReceiver();
  after(() => receiver.close());
  const app = await octohooks.application.create({ name: "Expunge", uid: uniqueUid("xp") });
  const endpoint = await octohooks.endpoint.create(app.id, { url: `${receiver.url}/hook` });
  const payload = { card: "4242 4242 4242 4242", holder: "John Smith" };
  const sent = await octohooks.message.create(app.id, { eventType: "card.saved", payload });
  assert.equal(sent.expunged, false);

  const hook = await eventually(async () => receiver.received[0]);
  assert.equal(hook.headers["webhook-id"], sent.id);
  const attempts = await eventually(async () => {
    const page = await octohooks.messageAttempt.listByMessage(app.id, sent.id);
    return page.data.length > 0 ? page.data : undefined;
  });
  assert.equal(attempts[0]?.status, "success");

  assert.equal(await octohooks.message.expungeContent(app.id, sent.id), undefined);

  const read = await octohooks.message.get(app.id, sent.id);
  assert.deepEqual(read.payload, {});
  assert.equal(read.expunged, true);
  const unchanged: MessageOut = { ...read, payload: sent.payload, expunged: false };
  assert.deepEqual(unchanged, sent, "nothing else about the message changed");
  assert.equal(await octohooks.message.getPayload(app.id, sent.id), "{}");
  const listed = await octohooks.message.list(app.id);
  assert.deepEqual(
    listed.data.map((message) => [message.id, message.expunged, message.payload]),
    [[sent.id, true, {}]],
  );

  // Its history stays: the attempt and where the delivery stands.
  assert.deepEqual((await octohooks.messageAttempt.listByMessage(app.id, sent.id)).data, attempts);
  const destinations = await octohooks.messageAttempt.listDestinations(app.id, sent.id);
  assert.deepEqual(
    destinations.data.map((d) => [d.endpointId, d.status, d.attempts]),
    [[endpoint.id, "success", 1]],
  );

  // Nothing is left to send: a resend is refused, and told apart by its code.
  const refused = await failure(octohooks.messageAttempt.resend(app.id, sent.id, endpoint.id));
  assert.equal(refused.status, 409);
  assert.equal(refused.code, "message_expunged");
  assert.equal((await octohooks.messageAttempt.listByMessage(app.id, sent.id)).data.length, 1);
  assert.equal(receiver.received.length, 1);

  // Expunging again changes nothing; an unknown message is not found.
  await octohooks.message.expungeContent(app.id, sent.id);
  assert.deepEqual(await octohooks.message.get(app.id, sent.id), read);
  const missing = await failure(octohooks.message.expungeContent(app.id, "no-such-message"));
  assert.equal(missing.status, 404);
  assert.equal(missing.code, "not_found");
  await octohooks.application.delete(app.id);
});

test("a delivery still waiting when its message is expunged ends failed, and is never sent", async () => {
  const receiver = await startReceiver();
  after(() => receiver.close());
  const app = await octohooks.application.create({ name: "Waiting", uid: uniqueUid("xpw") });
  const endpoint = await octohooks.endpoint.create(app.id, { url: `${receiver.url}/hook` });
  const uid = uniqueUid("later");
  const at = new Date(Date.now() + 1500);
  const sent = await octohooks.message.create(app.id, {
    eventType: "reminder.due",
    uid,
    payload: { n: 1 },
    deliverAt: at,
  });
  const [waiting] = (await octohooks.messageAttempt.listDestinations(app.id, sent.id)).data;
  assert.equal(waiting?.status, "pending");

  await octohooks.message.expungeContent(app.id, uid);
  const [ended] = (await octohooks.messageAttempt.listDestinations(app.id, sent.id)).data;
  assert.deepEqual(
    [ended?.endpointId, ended?.status, ended?.nextAttempt, ended?.attempts],
    [endpoint.id, "failed", null, 0],
  );
  assert.equal((await octohooks.message.get(app.id, uid)).expunged, true);
  const failed = await octohooks.message.list(app.id, { status: "failed" });
  assert.deepEqual(
    failed.data.map((message) => message.id),
    [sent.id],
  );
  // Past its time, the receiver has heard nothing of it.
  await new Promise((resolve) => setTimeout(resolve, at.getTime() + 1500 - Date.now()));
  assert.equal(receiver.received.length, 0);
  assert.equal((await octohooks.messageAttempt.listByMessage(app.id, sent.id)).data.length, 0);
  await octohooks.application.delete(app.id);
});

test("a portal token may not expunge a payload", async () => {
  const app = await octohooks.application.create({ name: "Portal", uid: uniqueUid("xpp") });
  const sent = await octohooks.message.create(app.id, { eventType: "a.b", payload: { n: 1 } });
  const { token } = await octohooks.portalAccess.create(app.id, { expiry: 600 });
  const portal = new Octohooks(token, { serverUrl });
  assert.equal((await portal.message.get(app.id, sent.id)).expunged, false, "it reads the message");

  const refused = await failure(portal.message.expungeContent(app.id, sent.id));
  assert.equal(refused.status, 403);
  assert.equal(refused.code, "forbidden");
  const kept = await octohooks.message.get(app.id, sent.id);
  assert.deepEqual([kept.payload, kept.expunged], [{ n: 1 }, false]);
  await octohooks.application.delete(app.id);
});

test("payloadRetentionPeriod takes whole days from 1 to 3650; outside that nothing is stored", async () => {
  const app = await octohooks.application.create({ name: "Retention", uid: uniqueUid("ret") });
  const first = await octohooks.message.create(app.id, { eventType: "a.b", payload: { n: 0 } });
  const before = await ids(app.id);
  assert.deepEqual(before, [first.id]);

  for (const days of [0, 3651, -1, 1.5]) {
    const uid = uniqueUid("refused");
    const refused = await failure(
      octohooks.message.create(app.id, {
        eventType: "a.b",
        uid,
        payload: { n: 1 },
        payloadRetentionPeriod: days,
      }),
    );
    assert.equal(refused.status, 422, `${days}: ${refused.detail}`);
    assert.equal(refused.code, "validation_error");
    assert.match(refused.detail, /^payloadRetentionPeriod/);
    await assert.rejects(octohooks.message.get(app.id, uid), { status: 404 });
  }
  assert.deepEqual(await ids(app.id), before, "the message list is unchanged");

  const kept = await octohooks.message.create(app.id, {
    eventType: "a.b",
    payload: { n: 7 },
    payloadRetentionPeriod: 7,
  });
  assert.deepEqual([kept.payload, kept.expunged], [{ n: 7 }, false]);
  const read = await octohooks.message.get(app.id, kept.id);
  assert.deepEqual([read.payload, read.expunged], [{ n: 7 }, false]);
  assert.deepEqual(await ids(app.id), [kept.id, first.id]);
  const longest = await octohooks.message.create(app.id, {
    eventType: "a.b",
    payload: {},
    payloadRetentionPeriod: 3650,
  });
  assert.equal(longest.expunged, false);
  await octohooks.application.delete(app.id);
});
