// Lists across several pages: `{ data, iterator, done }` pages and `listAll` iterators.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { nextIterator } from "../src/pagination.js";
import { client, uniqueUid } from "./support.js";

const octohooks = client();
let appId = "";
const endpointIds: string[] = [];
const messageIds: string[] = [];

before(async () => {
  appId = (await octohooks.application.create({ name: "Pages", uid: uniqueUid("pages") })).id;
  for (let i = 0; i < 7; i++) {
    const endpoint = await octohooks.endpoint.create(appId, { url: `http://127.0.0.1:9/${i}` });
    endpointIds.push(endpoint.id);
    messageIds.push((await octohooks.message.create(appId, { eventType: "t", payload: { i } })).id);
  }
});
after(() => octohooks.application.delete(appId));

test("pages of three walk seven endpoints once, oldest first", async () => {
  const first = await octohooks.endpoint.list(appId, { limit: 3 });
  assert.equal(first.data.length, 3);
  assert.equal(first.done, false);
  assert.ok(first.iterator);
  const second = await octohooks.endpoint.list(appId, { limit: 3, iterator: first.iterator });
  const third = await octohooks.endpoint.list(appId, { limit: 3, iterator: second.iterator });
  assert.equal(third.data.length, 1);
  assert.equal(third.done, true);
  assert.equal(third.iterator, null);
  assert.deepEqual(
    [...first.data, ...second.data, ...third.data].map((endpoint) => endpoint.id),
    endpointIds,
  );
});

test("listAll yields every item of every page, and keeps the filters", async () => {
  const seen: string[] = [];
  for await (const endpoint of octohooks.endpoint.listAll(appId, { limit: 2 })) {
    seen.push(endpoint.id);
  }
  assert.deepEqual(seen, endpointIds);

  const messages: string[] = [];
  for await (const message of octohooks.message.listAll(appId, { limit: 2, eventType: "t" })) {
    messages.push(message.id);
  }
  assert.deepEqual(messages, [...messageIds].reverse(), "newest first");

  const none: string[] = [];
  for await (const message of octohooks.message.listAll(appId, { limit: 2, eventType: "x" })) {
    none.push(message.id);
  }
  assert.deepEqual(none, []);
});

test("a loop that stops early fetches no more pages", async () => {
  let pages = 0;
  const counting = client({
    fetch: (url, init) => {
      pages += 1;
      return fetch(url, init as RequestInit);
    },
  });
  for await (const endpoint of counting.endpoint.listAll(appId, { limit: 2 })) {
    assert.equal(endpoint.id, endpointIds[0]);
    break;
  }
  assert.equal(pages, 1);
});

test("the next iterator is read from the Link header", () => {
  assert.equal(nextIterator(undefined), null);
  assert.equal(nextIterator('</api/v1/applications?limit=2&iterator=abc>; rel="next"'), "abc");
  assert.equal(
    nextIterator('</x?iterator=a%2Fb>; rel="prev", </x?eventType=t&iterator=c>; rel="next"'),
    "c",
  );
  assert.equal(nextIterator('</x?iterator=a>; rel="prev"'), null);
});

test("messages filter by several event types and come without content on request", async () => {
  const filtered = (await octohooks.application.create({ name: "Filters", uid: uniqueUid("flt") }))
    .id;
  const sent: Record<string, string> = {};
  for (const eventType of ["user.created", "user.deleted", "invoice.paid"]) {
    sent[eventType] = (
      await octohooks.message.create(filtered, { eventType, payload: { eventType } })
    ).id;
  }
  const users = await octohooks.message.list(filtered, {
    eventType: ["user.created", "user.deleted"],
  });
  assert.deepEqual(
    users.data.map((message) => message.id),
    [sent["user.deleted"], sent["user.created"]],
  );
  assert.deepEqual(users.data[0]?.payload, { eventType: "user.deleted" });

  const bare = await octohooks.message.list(filtered, {
    eventType: "invoice.paid",
    withContent: false,
  });
  assert.equal(bare.data.length, 1);
  assert.equal(bare.data[0]?.id, sent["invoice.paid"]);
  assert.deepEqual(bare.data[0]?.payload, {});
  await octohooks.application.delete(filtered);
});
