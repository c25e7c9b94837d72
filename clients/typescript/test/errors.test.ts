// `ApiError` carries the problem document's status, code and detail for every kind of refusal.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiError, Octohooks } from "../src/index.js";
import { client, serverUrl, uniqueUid } from "./support.js";

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

test("not_found, conflict, validation_error, unauthorized, idempotency_key_reused", async () => {
  const missing = await failure(octohooks.application.get("no-such-app"));
  assert.equal(missing.status, 404);
  assert.equal(missing.code, "not_found");
  assert.equal(missing.detail, "application not found");
  assert.deepEqual(missing.body, {
    type: "about:blank",
    title: "Not Found",
    status: 404,
    detail: "application not found",
    code: "not_found",
  });

  const uid = uniqueUid("taken");
  await octohooks.application.create({ name: "first", uid });
  const taken = await failure(octohooks.application.create({ name: "second", uid }));
  assert.equal(taken.status, 409);
  assert.equal(taken.code, "conflict");

  const invalid = await failure(octohooks.application.create({ name: "x", uid: "not valid!" }));
  assert.equal(invalid.status, 422);
  assert.equal(invalid.code, "validation_error");
  assert.match(invalid.detail, /^uid/);

  const stranger = new Octohooks("ohk_not-a-key", { serverUrl });
  const unauthorized = await failure(stranger.application.list());
  assert.equal(unauthorized.status, 401);
  assert.equal(unauthorized.code, "unauthorized");

  const key = uniqueUid("key");
  await octohooks.application.create({ name: "keyed" }, { idempotencyKey: key });
  const reused = await failure(
    octohooks.eventType.create({ name: uniqueUid("evt") }, { idempotencyKey: key }),
  );
  assert.equal(reused.status, 409);
  assert.equal(reused.code, "idempotency_key_reused");
});

test("a code can be told apart in a catch block", async () => {
  let code = "";
  try {
    await octohooks.endpoint.create("no-such-app", { url: "http://127.0.0.1:9/" });
  } catch (e) {
    if (e instanceof ApiError && e.code === "not_found") code = e.code;
  }
  assert.equal(code, "not_found");
});

test("the token is required", () => {
  assert.throws(() => new Octohooks(""), TypeError);
});

test("schema_violation lists where the payload breaks an enforced schema", async () => {
  const app = await octohooks.application.create({ name: "schemas", uid: uniqueUid("schemas") });
  const eventType = uniqueUid("order.placed");
  const created = await octohooks.eventType.create({
    name: eventType,
    groupName: "orders",
    schemas: {
      "1": { type: "object", required: ["id"], properties: { qty: { type: "integer" } } },
    },
    schemaValidation: "enforce",
  });
  assert.equal(created.schemaValidation, "enforce");
  assert.equal(created.groupName, "orders");

  const refused = await failure(
    octohooks.message.create(app.id, { eventType, payload: { qty: "two" } }),
  );
  assert.equal(refused.status, 422);
  assert.equal(refused.code, "schema_violation");
  assert.deepEqual(refused.errors.map((error) => error.pointer).sort(), ["", "/qty"]);
  assert.ok(refused.errors.every((error) => error.reason.length > 0));

  const accepted = await octohooks.message.create(app.id, { eventType, payload: { id: "o1" } });
  assert.deepEqual(accepted.payload, { id: "o1" });

  const off = await octohooks.eventType.update(eventType, {
    schemaValidation: "off",
    groupName: null,
  });
  assert.equal(off.groupName, null);
  await octohooks.message.create(app.id, { eventType, payload: { qty: "two" } });

  const invalid = await failure(octohooks.application.get("no-such-app"));
  assert.deepEqual(invalid.errors, []);
});
