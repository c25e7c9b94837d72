// Every resource method against the real API.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  ApiError,
  type MessageAttemptStatus,
  type MessageAttemptTriggerType,
  type MessageDestinationStatus,
  Octohooks,
} from "../src/index.js";
import {
  adminToken,
  apiKey,
  client,
  eventually,
  serverUrl,
  startReceiver,
  uniqueUid,
} from "./support.js";

const octohooks = client();

describe("application", () => {
  test("create, get by id and by uid, update, list, delete", async () => {
    const uid = uniqueUid("app");
    const created = await octohooks.application.create({ name: "Acme", uid });
    assert.equal(created.name, "Acme");
    assert.equal(created.uid, uid);
    assert.match(created.id, /^[0-9a-f-]{36}$/);
    assert.equal(typeof created.created, "number");

    assert.deepEqual(await octohooks.application.get(created.id), created);
    assert.deepEqual(await octohooks.application.get(uid), created);

    const renamed = await octohooks.application.update(uid, { name: "Acme Inc." });
    assert.equal(renamed.name, "Acme Inc.");
    assert.equal(renamed.uid, uid, "a uid left out is kept");

    const page = await octohooks.application.list({ limit: 250 });
    assert.ok(page.data.some((app) => app.id === created.id));

    const deleted = await octohooks.application.delete(uid);
    assert.equal(deleted.id, created.id);
    await assert.rejects(
      octohooks.application.get(uid),
      (e) => e instanceof ApiError && e.status === 404,
    );
  });

  test("search finds applications by name or uid, in any case", async () => {
    const tag = uniqueUid("Zebra");
    const byName = await octohooks.application.create({ name: `The ${tag} shop` });
    const byUid = await octohooks.application.create({ name: "other", uid: `${tag}-uid` });
    await octohooks.application.create({ name: "unrelated" });
    const found = await octohooks.application.list({ search: tag.toLowerCase() });
    assert.deepEqual(found.data.map((app) => app.id).sort(), [byName.id, byUid.id].sort());
    const wildcard = await octohooks.application.list({ search: "%" });
    assert.equal(wildcard.data.length, 0, "LIKE wildcards are taken literally");
  });

  test("an application without a uid reads uid null", async () => {
    const created = await octohooks.application.create({ name: "No uid" });
    assert.equal(created.uid, null);
    await octohooks.application.delete(created.id);
  });
});

describe("endpoint", () => {
  let appId = "";
  before(async () => {
    appId = (await octohooks.application.create({ name: "Endpoints", uid: uniqueUid("ep") })).id;
  });
  after(() => octohooks.application.delete(appId));

  test("create, get, update, list, secret, rotate, delete", async () => {
    const created = await octohooks.endpoint.create(appId, {
      url: "http://127.0.0.1:9/hooks",
      uid: "main",
      name: "Main",
      description: "the main one",
      eventTypes: ["user.created"],
      channels: ["eu"],
      headers: { "X-Team": "billing" },
      rateLimit: 50,
    });
    assert.equal(created.url, "http://127.0.0.1:9/hooks");
    assert.equal(created.rateLimit, 50);
    assert.deepEqual(created.eventTypes, ["user.created"]);
    assert.deepEqual(created.channels, ["eu"]);
    assert.deepEqual(created.headers, { "x-team": "billing" }, "header names in lower case");
    assert.equal(created.enabled, true);

    assert.deepEqual(await octohooks.endpoint.get(appId, "main"), created);

    const updated = await octohooks.endpoint.update(appId, "main", {
      url: "http://127.0.0.1:9/v2",
      enabled: false,
    });
    assert.equal(updated.url, "http://127.0.0.1:9/v2");
    assert.equal(updated.enabled, false);
    assert.equal(updated.name, "Main", "fields left out keep their value");
    assert.equal(updated.rateLimit, 50, "a rate limit left out is kept");
    const unlimited = await octohooks.endpoint.update(appId, "main", {
      url: "http://127.0.0.1:9/v2",
      rateLimit: null,
    });
    assert.equal(unlimited.rateLimit, null, "null removes the rate limit");

    const page = await octohooks.endpoint.list(appId);
    assert.deepEqual(
      page.data.map((endpoint) => endpoint.id),
      [created.id],
    );
    assert.equal(page.done, true);

    const secret = await octohooks.endpoint.getSecret(appId, "main");
    assert.match(secret.key, /^whsec_/);
    await octohooks.endpoint.rotateSecret(appId, "main");
    const rotated = await octohooks.endpoint.getSecret(appId, "main");
    assert.notEqual(rotated.key, secret.key);
    const chosen = `whsec_${Buffer.alloc(24, 1).toString("base64")}`;
    await octohooks.endpoint.rotateSecret(appId, created.id, { key: chosen });
    assert.equal((await octohooks.endpoint.getSecret(appId, created.id)).key, chosen);

    const deleted = await octohooks.endpoint.delete(appId, "main");
    assert.equal(deleted.id, created.id);
    assert.equal((await octohooks.endpoint.list(appId)).data.length, 0);
  });
});

describe("eventType", () => {
  test("create, get, update, list, delete", async () => {
    const name = `${uniqueUid("invoice")}.paid`;
    const created = await octohooks.eventType.create({ name, description: "An invoice was paid" });
    assert.equal(created.name, name);
    assert.equal(created.archived, false);
    assert.deepEqual(await octohooks.eventType.get(name), created);
    const archived = await octohooks.eventType.update(name, { archived: true });
    assert.equal(archived.archived, true);
    assert.equal(archived.description, "An invoice was paid");
    const names: string[] = [];
    for await (const eventType of octohooks.eventType.listAll({ limit: 2 })) {
      names.push(eventType.name);
    }
    assert.ok(names.includes(name));
    assert.equal((await octohooks.eventType.delete(name)).name, name);
    await assert.rejects(octohooks.eventType.get(name), { name: "ApiError", code: "not_found" });
  });
});

describe("message and messageAttempt", () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let appId = "";
  let endpointId = "";
  before(async () => {
    receiver = await startReceiver();
    appId = (await octohooks.application.create({ name: "Messages", uid: uniqueUid("msg") })).id;
    endpointId = (await octohooks.endpoint.create(appId, { url: `${receiver.url}/hook` })).id;
  });
  after(async () => {
    await octohooks.application.delete(appId);
    await receiver.close();
  });

  test("create, get, list with filters", async () => {
    const uid = uniqueUid("order");
    const sent = await octohooks.message.create(appId, {
      eventType: "order.placed",
      uid,
      channels: ["eu"],
      payload: { order: 42, items: ["a", "b"] },
    });
    assert.equal(sent.eventType, "order.placed");
    assert.deepEqual(sent.payload, { order: 42, items: ["a", "b"] });
    assert.deepEqual(await octohooks.message.get(appId, sent.id), sent);
    assert.deepEqual(await octohooks.message.get(appId, uid), sent);

    await octohooks.message.create(appId, { eventType: "order.shipped", payload: {} });
    const placed = await octohooks.message.list(appId, { eventType: "order.placed" });
    assert.deepEqual(
      placed.data.map((message) => message.id),
      [sent.id],
    );
    const inChannel = await octohooks.message.list(appId, { channel: "eu" });
    assert.deepEqual(
      inChannel.data.map((message) => message.id),
      [sent.id],
    );
    const later = await octohooks.message.list(appId, { after: new Date(sent.created + 60_000) });
    assert.equal(later.data.length, 0);
    const earlier = await octohooks.message.list(appId, { before: sent.created + 60_000 });
    assert.equal(earlier.data.length, 2);
    await assert.rejects(octohooks.message.list(appId, { status: "lost" as "failed" }), {
      code: "validation_error",
    });
  });

  test("getPayload answers the payload byte for byte", async () => {
    // Spacing and numbers JSON.parse would not keep: a 20-digit integer, a trailing zero.
    const payload = '{ "big": 12345678901234567890, "price": 1.50 }';
    const response = await fetch(`${serverUrl}/api/v1/applications/${appId}/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: `{"eventType":"raw","payload":${payload}}`,
    });
    assert.equal(response.status, 202);
    const { id } = (await response.json()) as { id: string };
    assert.equal(await octohooks.message.getPayload(appId, id), payload);
    await assert.rejects(octohooks.message.getPayload(appId, "no-such-message"), {
      code: "not_found",
    });
  });

  test("attempts by message and by endpoint, one attempt, destinations, resend", async () => {
    const sent = await octohooks.message.create(appId, { eventType: "t", payload: { n: 1 } });
    const [attempt] = await eventually(async () => {
      const page = await octohooks.messageAttempt.listByMessage(appId, sent.id);
      return page.data.length > 0 ? page.data : undefined;
    });
    assert.ok(attempt);
    // Typed values: a document that spelled them otherwise would not compile.
    const success: MessageAttemptStatus = "success";
    const scheduled: MessageAttemptTriggerType = "scheduled";
    const delivered: MessageDestinationStatus = "success";
    assert.equal(attempt.status, success);
    assert.equal(attempt.triggerType, scheduled);
    assert.equal(attempt.responseStatusCode, 204);
    assert.equal(attempt.url, `${receiver.url}/hook`);
    assert.deepEqual(await octohooks.messageAttempt.get(appId, sent.id, attempt.id), attempt);

    const byEndpoint = await octohooks.messageAttempt.listByEndpoint(appId, endpointId);
    assert.ok(byEndpoint.data.some((item) => item.id === attempt.id));

    const destinations = await octohooks.messageAttempt.listDestinations(appId, sent.id);
    assert.deepEqual(
      destinations.data.map((d) => [d.endpointId, d.status, d.attempts]),
      [[endpointId, delivered, 1]],
    );

    const resent = await octohooks.messageAttempt.resend(appId, sent.id, endpointId);
    assert.deepEqual(resent, { messageId: sent.id, endpointId, status: "queued" });
    const manual = await eventually(async () => {
      const all = [];
      for await (const item of octohooks.messageAttempt.listAllByMessage(appId, sent.id)) {
        all.push(item);
      }
      return all.length === 2 ? all : undefined;
    });
    assert.deepEqual(
      manual.map((item) => item.triggerType),
      ["manual", "scheduled"],
    );
    const copies = receiver.received.filter((hook) => hook.headers["webhook-id"] === sent.id);
    assert.equal(copies.length, 2);

    const deliveredPage = await octohooks.message.list(appId, { status: "success", limit: 250 });
    assert.ok(deliveredPage.data.some((message) => message.id === sent.id));
    const failed = await octohooks.message.list(appId, { status: "failed" });
    assert.deepEqual(failed.data, [], "every message here was delivered");
  });
});

describe("environment (admin token)", () => {
  const admin = new Octohooks(adminToken, { serverUrl });

  test("create, list, add and revoke an API key, delete", async () => {
    const created = await admin.environment.create({ name: "SDK test" });
    assert.match(created.apiKey ?? "", /^ohk_/);
    const listed = [];
    for await (const environment of admin.environment.listAll()) listed.push(environment.id);
    assert.ok(listed.includes(created.id));

    const tenant = new Octohooks(created.apiKey ?? "", { serverUrl });
    assert.deepEqual((await tenant.application.list()).data, []);

    const key = await admin.environment.createApiKey(created.id);
    assert.equal(key.environmentId, created.id);
    const keys = [];
    for await (const listed of admin.environment.listAllApiKeys(created.id, { limit: 1 })) {
      keys.push(listed);
    }
    assert.deepEqual(
      keys.map((listed) => listed.id),
      [keys[0]?.id, key.id],
    );
    assert.equal(keys[1]?.prefix, key.apiKey?.slice(0, 8));
    assert.ok(!JSON.stringify(keys).includes(key.apiKey ?? "-"), "no key is listed");
    const second = new Octohooks(key.apiKey ?? "", { serverUrl });
    await second.application.list();
    const revoked = await admin.environment.deleteApiKey(created.id, key.id);
    assert.equal(revoked.id, key.id);
    await assert.rejects(second.application.list(), { name: "ApiError", code: "unauthorized" });

    assert.equal((await admin.environment.delete(created.id)).id, created.id);
    await assert.rejects(tenant.application.list(), { status: 401 });
  });
});

describe("portalAccess", () => {
  test("a link opens its application only, and expireAll revokes it", async () => {
    const app = await octohooks.application.create({ name: "Portal", uid: uniqueUid("portal") });
    const other = await octohooks.application.create({ name: "Other" });
    const before = Date.now();
    const access = await octohooks.portalAccess.create(app.id, { expiry: 600 });
    assert.ok(access.url.startsWith(`${serverUrl}/portal/#token=`));
    assert.ok(access.url.endsWith(access.token));
    assert.ok(access.expiresAt >= before + 600_000 && access.expiresAt <= Date.now() + 600_000);

    const portal = new Octohooks(access.token, { serverUrl });
    const endpoint = await portal.endpoint.create(app.id, { url: "http://127.0.0.1:9/p" });
    assert.equal((await portal.endpoint.list(app.uid ?? "")).data[0]?.id, endpoint.id);
    await assert.rejects(portal.endpoint.list(other.id), { status: 403, code: "forbidden" });
    await assert.rejects(portal.application.list(), { status: 403, code: "forbidden" });

    await octohooks.portalAccess.expireAll(app.id);
    await assert.rejects(portal.endpoint.list(app.id), { status: 401, code: "unauthorized" });
  });
});

test("eventType.importOpenApi turns an OpenAPI document's webhooks into event types", async () => {
  const name = uniqueUid("order.shipped");
  const { modified } = await octohooks.eventType.importOpenApi({
    spec: {
      openapi: "3.1.0",
      info: { title: "Shop", version: "1" },
      webhooks: {
        [name]: {
          post: {
            summary: "An order left the warehouse",
            requestBody: {
              content: {
                "application/json": {
                  schema: { $ref: "#/components/schemas/Order" },
                  example: { id: "o1" },
                },
              },
            },
          },
        },
      },
      components: { schemas: { Order: { type: "object", required: ["id"] } } },
    },
  });
  assert.equal(modified.length, 1);
  assert.equal(modified[0]?.name, name);
  assert.equal(modified[0]?.description, "An order left the warehouse");
  const stored = await octohooks.eventType.get(name);
  assert.deepEqual(stored.schemas?.["1"], {
    $ref: "#/$defs/Order",
    $defs: { Order: { type: "object", required: ["id"] } },
    examples: [{ id: "o1" }],
  });
  await octohooks.eventType.delete(name);
});

test("patch changes only the fields given, on applications, endpoints and event types", async () => {
  const uid = uniqueUid("patch");
  const app = await octohooks.application.create({ name: "Before", uid });
  const renamed = await octohooks.application.patch(app.id, { name: "After" });
  assert.equal(renamed.name, "After");
  assert.equal(renamed.uid, uid);
  const noUid = await octohooks.application.patch(app.id, { uid: null });
  assert.equal(noUid.uid, null);

  const endpoint = await octohooks.endpoint.create(app.id, {
    url: "https://hooks.example/patch",
    headers: { "X-Keep": "1", "X-Drop": "2" },
    rateLimit: 10,
  });
  const patched = await octohooks.endpoint.patch(app.id, endpoint.id, {
    headers: { "X-Drop": null, "X-New": "3" },
    rateLimit: null,
  });
  assert.deepEqual(patched.headers, { "x-keep": "1", "x-new": "3" });
  assert.equal(patched.rateLimit, null);
  assert.equal(patched.url, "https://hooks.example/patch");

  const name = uniqueUid("patched.type");
  await octohooks.eventType.create({ name, schemas: { "1": { type: "object" } } });
  const versioned = await octohooks.eventType.patch(name, {
    schemas: { "2": { type: "array" } },
    groupName: "g",
  });
  assert.deepEqual(Object.keys(versioned.schemas ?? {}).sort(), ["1", "2"]);
  assert.equal(versioned.groupName, "g");
  await octohooks.eventType.delete(name);
  await octohooks.application.delete(app.id);
});
