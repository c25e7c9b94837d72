// A webhook sent through the SDK, received by a real receiver and verified with `Webhook`;
// a tampered copy is refused.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { Webhook, WebhookVerificationError } from "../src/index.js";
import { client, eventually, startReceiver, uniqueUid } from "./support.js";

test("a received webhook verifies with the endpoint's secret, a tampered one does not", async () => {
  const octohooks = client();
  const receiver = await startReceiver();
  after(() => receiver.close());
  const app = await octohooks.application.create({ name: "Deliveries", uid: uniqueUid("dl") });
  await octohooks.endpoint.create(app.id, { url: `${receiver.url}/webhooks`, uid: "in" });
  const payload = { email: "john@example.com", name: "John Smith", note: "über ✓" };
  const sent = await octohooks.message.create(app.id, { eventType: "user.created", payload });

  const hook = await eventually(async () => receiver.received[0]);
  assert.equal(hook.headers["webhook-id"], sent.id);
  const { key } = await octohooks.endpoint.getSecret(app.id, "in");
  const webhook = new Webhook(key);
  assert.deepEqual(webhook.verify(hook.body, hook.headers), payload);

  const tampered = hook.body.replace("John Smith", "Jane Smith");
  assert.throws(() => webhook.verify(tampered, hook.headers), WebhookVerificationError);
  const otherSecret = new Webhook(`whsec_${Buffer.alloc(32, 9).toString("base64")}`);
  assert.throws(() => otherSecret.verify(hook.body, hook.headers), WebhookVerificationError);

  await octohooks.application.delete(app.id);
});

test("a message given a Date in deliverAt is delivered then, not at once", async () => {
  const octohooks = client();
  const receiver = await startReceiver();
  after(() => receiver.close());
  const app = await octohooks.application.create({ name: "Later", uid: uniqueUid("later") });
  await octohooks.endpoint.create(app.id, { url: `${receiver.url}/webhooks` });
  const at = new Date(Date.now() + 1500);
  const sent = await octohooks.message.create(app.id, {
    eventType: "reminder.due",
    payload: { n: 1 },
    deliverAt: at,
  });
  const destinations = await octohooks.messageAttempt.listDestinations(app.id, sent.id);
  assert.equal(destinations.data[0]?.nextAttempt, at.getTime());
  assert.equal(receiver.received.length, 0);

  const hook = await eventually(async () => receiver.received[0]);
  assert.equal(hook.headers["webhook-id"], sent.id);
  assert.ok(Date.now() >= at.getTime(), "not before its time");
  await octohooks.application.delete(app.id);
});

test("sendExample delivers the event type's example to that endpoint, verifiably", async () => {
  const octohooks = client();
  const receiver = await startReceiver();
  after(() => receiver.close());
  const app = await octohooks.application.create({ name: "Examples", uid: uniqueUid("ex") });
  await octohooks.endpoint.create(app.id, { url: `${receiver.url}/webhooks`, uid: "in" });
  const eventType = uniqueUid("invoice.paid");
  const example = { id: "inv_1", amount: 1200 };
  await octohooks.eventType.create({
    name: eventType,
    schemas: { "1": { type: "object", required: ["id"], examples: [example] } },
  });

  const sent = await octohooks.endpoint.sendExample(app.id, "in", { eventType });
  assert.deepEqual(sent.payload, example);
  const hook = await eventually(async () => receiver.received[0]);
  assert.equal(hook.headers["webhook-id"], sent.id);
  const { key } = await octohooks.endpoint.getSecret(app.id, "in");
  assert.deepEqual(new Webhook(key).verify(hook.body, hook.headers), example);
  await octohooks.application.delete(app.id);
});

test("an ed25519 endpoint's webhooks carry v1a signatures that its public key verifies", async () => {
  const { createPublicKey, verify } = await import("node:crypto");
  const octohooks = client();
  const receiver = await startReceiver();
  after(() => receiver.close());
  const app = await octohooks.application.create({ name: "Asymmetric", uid: uniqueUid("ed") });
  await octohooks.endpoint.create(app.id, {
    url: `${receiver.url}/webhooks`,
    uid: "in",
    secretKind: "ed25519",
  });
  const { key, publicKey } = await octohooks.endpoint.getSecret(app.id, "in");
  assert.match(key, /^whsk_/);
  assert.ok(publicKey);
  assert.match(publicKey, /^whpk_/);
  const sent = await octohooks.message.create(app.id, { eventType: "a.b", payload: { n: 1 } });
  const hook = await eventually(async () => receiver.received[0]);
  const signature = String(hook.headers["webhook-signature"] ?? "");
  assert.match(signature, /^v1a,/);
  const x = Buffer.from(publicKey.slice("whpk_".length), "base64").toString("base64url");
  const verifier = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" });
  const content = `${sent.id}.${hook.headers["webhook-timestamp"]}.${hook.body}`;
  const raw = Buffer.from(signature.slice("v1a,".length), "base64");
  assert.ok(verify(null, Buffer.from(content), verifier, raw), "node's ed25519 verifies it");
  assert.ok(!verify(null, Buffer.from(`${content} `), verifier, raw));
  await octohooks.application.delete(app.id);
});
