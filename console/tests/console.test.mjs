// Browser test of the console: node:test + playwright-core against a running API that serves
// /dashboard/ and /portal/. Environment: OCTOHOOKS_CONSOLE_URL (API base URL),
// OCTOHOOKS_TEST_ADMIN_TOKEN, OCTOHOOKS_TEST_PORTAL_SIGNING_KEY (base64 of the API's portal
// signing key, to mint tokens such as expired ones), optional CHROMIUM_PATH. The API must allow
// private destinations (OCTOHOOKS_ALLOW_PRIVATE_DESTINATIONS=true): the receiver listens on
// 127.0.0.1.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHmac, generateKeyPairSync, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Octohooks, Webhook } from "octohooks";
import { chromium } from "playwright-core";

const BASE = (process.env.OCTOHOOKS_CONSOLE_URL ?? "").replace(/\/+$/, "");
const ADMIN = process.env.OCTOHOOKS_TEST_ADMIN_TOKEN ?? "";
const PORTAL_KEY = Buffer.from(process.env.OCTOHOOKS_TEST_PORTAL_SIGNING_KEY ?? "", "base64");
if (!BASE || !ADMIN || PORTAL_KEY.length === 0) {
  // Run through `cargo test -p octohooks-tests --test console_browser` (part of `make test`).
  throw new Error(
    "OCTOHOOKS_CONSOLE_URL, OCTOHOOKS_TEST_ADMIN_TOKEN and OCTOHOOKS_TEST_PORTAL_SIGNING_KEY are required",
  );
}
/** Where the portal keeps its token (src/api.ts, TOKEN_KEYS.portal). */
const PORTAL_TOKEN_KEY = "octohooks.portal.token";
const EXPIRED_TEXT = "This link has expired, ask for a new one";
const SHOTS = join(dirname(fileURLToPath(import.meta.url)), "screenshots");
const TIMEOUT = 20_000;
const HOSTILE_RESPONSE = "<script>alert(1)</script><img src=x onerror=alert(2)>";
const PAYLOAD = {
  invoice: "inv_<b>1</b>",
  note: "<script>alert(1)</script>",
  html: "<img src=x onerror=alert(3)>",
  amount: 4200,
};

const RAW_PAYLOAD = JSON.stringify(PAYLOAD, null, 1);

let browser;
let context;
let receiver;
let receiverUrl;
const received = [];
const problems = [];
// State shared by the steps, in order.
const state = {};
// Refusals a step provokes on purpose: { page, status, path } (path: exact, or a prefix ending
// in "/"). The browser logs "Failed to load resource: … status of 401" for each; only those, on
// that page, from this API, are not problems.
const expectedFailures = [];

function expectFailure(page, status, path) {
  expectedFailures.push({ page, status, path });
}

// Every endpoint page asks for the endpoint's client certificate; an endpoint without one
// answers 404, which the page shows as "none". Expected on any page, from this API.
const NO_CLIENT_CERTIFICATE =
  /^\/api\/v1\/applications\/[^/]+\/endpoints\/[^/]+\/client-certificate$/;

function isExpectedFailure(name, msg) {
  const m = /^Failed to load resource: the server responded with a status of (\d{3}) /.exec(
    msg.text(),
  );
  if (!m) return false;
  let url;
  try {
    url = new URL(msg.location().url);
  } catch {
    return false;
  }
  if (url.origin !== new URL(BASE).origin) return false;
  if (m[1] === "404" && NO_CLIENT_CERTIFICATE.test(url.pathname)) return true;
  return expectedFailures.some(
    (e) =>
      e.page === name &&
      e.status === Number(m[1]) &&
      (e.path.endsWith("/") ? url.pathname.startsWith(e.path) : url.pathname === e.path),
  );
}

function watch(page, name) {
  page.on("dialog", (dialog) => {
    problems.push(`${name}: dialog ${dialog.type()}: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.on("console", (msg) => {
    if (msg.type() === "error" && !isExpectedFailure(name, msg))
      problems.push(`${name}: console error: ${msg.text()}`);
  });
  page.on("pageerror", (err) => problems.push(`${name}: page error: ${err.message}`));
  return page;
}

async function shoot(page, name) {
  await mkdir(SHOTS, { recursive: true });
  const size = page.viewportSize();
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: width === 1280 ? 900 : 844 });
    await page.screenshot({ path: join(SHOTS, `${name}-${width}.png`), fullPage: true });
    // Nothing makes the page wider than the screen: a phone would scroll sideways into blank.
    const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(scrollWidth <= width, `${name}: the page is ${scrollWidth} px wide at ${width} px`);
  }
  if (size) await page.setViewportSize(size);
}

/** Retries `check` (with `between` run after each failure) until it passes or time runs out. */
async function eventually(check, between, timeout = TIMEOUT) {
  const end = Date.now() + timeout;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > end) throw err;
      if (between) await between();
    }
  }
}

function waitForRequests(count) {
  return eventually(
    async () => {
      assert.ok(received.length >= count, `receiver got ${received.length} of ${count} requests`);
    },
    () => new Promise((r) => setTimeout(r, 100)),
  );
}

/** `GET path` from inside `page`, with the portal token the page keeps in sessionStorage. */
function portalFetch(page, path) {
  return page.evaluate(
    async ({ path, key }) => {
      const token = sessionStorage.getItem(key);
      if (!token) throw new Error("no portal token in sessionStorage");
      const res = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
      const text = await res.text();
      let body = null;
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
      return { status: res.status, type: res.headers.get("content-type") ?? "", body };
    },
    { path, key: PORTAL_TOKEN_KEY },
  );
}

function base64url(bytes) {
  return Buffer.from(bytes).toString("base64url");
}

/** A portal token as the API mints them: `ohp_<base64url claims>.<base64url HMAC-SHA256>`. */
function mintPortalToken(claims) {
  const signed = `ohp_${base64url(JSON.stringify(claims))}`;
  return `${signed}.${base64url(createHmac("sha256", PORTAL_KEY).update(signed).digest())}`;
}

/** A self-signed P-256 certificate for `CN=client.example`, valid for a day, and its key (PEM). */
function selfSigned() {
  const dir = mkdtempSync(join(tmpdir(), "octohooks-console-mtls-"));
  try {
    const keyFile = join(dir, "key.pem");
    const certFile = join(dir, "cert.pem");
    execFileSync(
      "openssl",
      [
        ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
        ["-subj", "/CN=client.example", "-days", "1", "-keyout", keyFile, "-out", certFile],
      ].flat(),
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    return {
      certificate: readFileSync(certFile, "utf8"),
      privateKey: readFileSync(keyFile, "utf8"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function appIdFromUrl(url) {
  const m = /#\/apps\/([^/?]+)/.exec(url);
  assert.ok(m, `no application id in ${url}`);
  return decodeURIComponent(m[1]);
}

before(async () => {
  receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      received.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(200, { "content-type": "text/html" });
      res.end(HOSTILE_RESPONSE);
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  receiverUrl = `http://127.0.0.1:${receiver.address().port}/hook`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(TIMEOUT);
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
});

after(async () => {
  await context?.close();
  await browser?.close();
  // The dispatcher keeps its connections to the receiver open (keep-alive): close them, or
  // `close` waits for them.
  receiver?.closeAllConnections();
  await new Promise((r) => (receiver ? receiver.close(r) : r()));
});

test("admin: sign in, create an environment and an API key", async () => {
  const page = watch(await context.newPage(), "admin");
  state.page = page;
  await page.goto(`${BASE}/dashboard/`);
  await page.getByRole("heading", { name: "Sign in to the console" }).waitFor();
  await shoot(page, "signin");

  // A wrong token is refused with a message, not a dialog.
  expectFailure("admin", 401, "/api/v1/applications"); // the check of that token
  await page.getByLabel("API key or admin token").fill("ohk_not-a-real-key");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "not accepted" }).waitFor();

  await page.getByLabel("API key or admin token").fill(ADMIN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Environments", level: 1 }).waitFor();
  assert.equal(
    await page.evaluate(() => document.cookie),
    "",
    "the token must never be in a cookie",
  );
  assert.ok(!page.url().includes(ADMIN), "the token must never be in the URL");

  const envName = `Console test ${Date.now()}`;
  state.envName = envName;
  await page.getByLabel("Environment name").fill(envName);
  await page.getByRole("button", { name: "Create environment" }).click();
  const firstKey = await page.getByLabel("New API key").inputValue();
  assert.match(firstKey, /^ohk_/);
  await page.getByText("store it now").first().waitFor();
  await page.getByRole("link", { name: envName }).waitFor();
  await shoot(page, "environments");

  await page.getByRole("link", { name: envName }).click();
  await page.getByRole("heading", { name: envName, level: 1 }).waitFor();
  await page.getByRole("button", { name: "Create API key" }).click();
  const key = await page.getByLabel("New API key").inputValue();
  assert.match(key, /^ohk_/);
  assert.notEqual(key, firstKey);
  // Both keys are listed, by prefix only.
  await eventually(async () => {
    assert.equal(await page.getByRole("button", { name: "Revoke" }).count(), 2);
  });
  assert.equal(await page.getByText(key, { exact: true }).count(), 0);
  await shoot(page, "environment");
  state.key = key;

  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to the console" }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
});

test("tenant: application, endpoint, message log, attempts, resend", async () => {
  const { page, key } = state;
  assert.ok(key, "needs the API key of the previous test");
  await page.getByLabel("API key or admin token").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Applications", level: 1 }).waitFor();
  await page.getByText("No applications yet").waitFor();
  await shoot(page, "applications-empty");

  // The event type catalog feeds the endpoint's checkboxes.
  await page.getByRole("link", { name: "Event types" }).click();
  await page.getByRole("heading", { name: "Event types", level: 1 }).waitFor();
  await page.getByText("No event types yet").waitFor();
  await page.getByRole("button", { name: "New event type" }).click();
  await page.getByLabel("Event type name").fill("invoice.paid");
  await page.getByLabel("Description").fill("An invoice was paid <b>in full</b>");
  await page.getByRole("button", { name: "Create event type" }).click();
  await page.getByRole("cell", { name: "invoice.paid", exact: true }).waitFor();
  await page.getByRole("button", { name: "New event type" }).click();
  await page.getByLabel("Event type name").fill("invoice.voided");
  await page.getByRole("button", { name: "Create event type" }).click();
  await page.getByRole("cell", { name: "invoice.voided", exact: true }).waitFor();
  await shoot(page, "event-types");

  // An application.
  await page.getByRole("link", { name: "Applications" }).click();
  await page.getByRole("button", { name: "New application" }).click();
  const appName = "Acme <Corp>";
  await page.getByLabel("Application name").fill(appName);
  await page.getByLabel("UID (optional)").fill(`acme-${Date.now()}`);
  await page.getByRole("button", { name: "Create application" }).click();
  await page.getByRole("heading", { name: appName, level: 1 }).waitFor();
  await page.getByText("No endpoints yet").waitFor();
  const appId = appIdFromUrl(page.url());
  state.appId = appId;
  state.appName = appName;

  // Its endpoint, with an event type from the catalog and a custom header.
  await page.getByRole("button", { name: "Add endpoint" }).click();
  await page.getByLabel("Endpoint URL").fill(receiverUrl);
  await page.getByLabel("Description").fill("Receiver of the browser test");
  await page.getByRole("checkbox", { name: "invoice.paid" }).check();
  await page.getByRole("button", { name: "Add header" }).click();
  await page.getByLabel("Header 1 name").fill("x-console-test");
  await page.getByLabel("Header 1 value").fill("yes");
  await shoot(page, "endpoint-new");
  await page.getByRole("button", { name: "Create endpoint" }).click();
  await page.getByRole("heading", { name: receiverUrl, level: 1 }).waitFor();
  await page.getByText("No attempts yet").waitFor();
  state.endpointUrl = receiverUrl;

  // A message with hostile content, sent through the API.
  // Its JSON text is spaced out, so that a copy made from the parsed payload would differ.
  const sentRaw = await fetch(`${BASE}/api/v1/applications/${appId}/messages`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: `{"eventType":"invoice.paid","payload":${RAW_PAYLOAD}}`,
  });
  assert.equal(sentRaw.status, 202);
  const message = await sentRaw.json();
  await waitForRequests(1);
  assert.equal(received[0].headers["x-console-test"], "yes");
  assert.equal(received[0].body, RAW_PAYLOAD);

  // The endpoint page lists its attempt.
  const endpointAttempts = page.getByRole("region", { name: "Delivery attempts" });
  await eventually(
    async () => assert.equal(await endpointAttempts.getByRole("row").count(), 2),
    () => endpointAttempts.getByRole("button", { name: "Refresh" }).click(),
  );
  await endpointAttempts.getByRole("cell", { name: "200", exact: true }).waitFor();
  await page.getByRole("button", { name: "Reveal secret" }).click();
  assert.match(await page.getByRole("textbox", { name: "Signing secret" }).inputValue(), /^whsec_/);
  await shoot(page, "endpoint");

  // The message log, then the message.
  await page.getByRole("link", { name: appName }).click();
  await page.getByRole("link", { name: "Message log" }).click();
  await page.getByRole("heading", { name: "Message log", level: 1 }).waitFor();
  await page.getByRole("link", { name: "invoice.paid" }).waitFor();
  await shoot(page, "messages");
  // A filter that matches nothing shows an empty state that says so.
  await page.getByLabel("Event type").fill("invoice.voided");
  await page.getByRole("button", { name: "Apply filters" }).click();
  await page.getByText("No message matches these filters").waitFor();
  // Several event types, separated by commas: any of them matches.
  await page.getByLabel("Event type").fill("invoice.voided, invoice.paid");
  await page.getByRole("button", { name: "Apply filters" }).click();
  await page.getByRole("link", { name: "invoice.paid" }).waitFor();
  await page.getByRole("button", { name: "Clear" }).click();
  await page.getByRole("link", { name: "invoice.paid" }).click();
  await page.getByRole("heading", { name: "invoice.paid", level: 1 }).waitFor();
  assert.ok(page.url().includes(message.id));

  // The payload is text, pretty-printed; nothing hostile became markup.
  const pre = page.locator("pre").first();
  assert.equal(await pre.textContent(), JSON.stringify(PAYLOAD, null, 2));
  await page.getByRole("button", { name: "Copy payload" }).click();
  await page.getByRole("button", { name: "Copied" }).waitFor();
  const clip = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(clip, RAW_PAYLOAD, "the copy is the payload byte for byte");

  const attempts = page.getByRole("list", { name: "Delivery attempts" }).getByRole("listitem");
  await eventually(
    async () => assert.equal(await attempts.count(), 1),
    () =>
      page
        .getByRole("region", { name: "Attempts" })
        .getByRole("button", { name: "Refresh" })
        .click(),
  );
  await attempts.first().getByText(HOSTILE_RESPONSE, { exact: true }).waitFor();
  await page.getByRole("cell", { name: "success", exact: true }).waitFor();
  await shoot(page, "message");

  // Resend: a second, manual attempt appears by itself.
  await page.getByRole("button", { name: `Resend to ${receiverUrl}` }).click();
  await waitForRequests(2);
  await eventually(async () => assert.equal(await attempts.count(), 2));
  await attempts.first().getByText("manual").waitFor();
  assert.equal(await page.locator('img[src="x"]').count(), 0, "hostile markup was rendered");
  assert.equal(await page.locator("script:not([src])").count(), 0, "an inline script appeared");
  assert.deepEqual(problems, []);
});

test("tenant: an enforced schema, and its example sent from the endpoint page", async () => {
  const { page, key, appId, appName } = state;
  assert.ok(appId, "needs the application of the previous test");
  await page.getByRole("link", { name: "Event types" }).click();
  await page.getByRole("heading", { name: "Event types", level: 1 }).waitFor();
  await page.getByRole("button", { name: "Edit invoice.voided" }).click();
  // Invalid JSON is refused in the page, an invalid schema by the API; nothing is saved.
  const schemas = page.getByLabel("Schemas of invoice.voided (JSON)");
  await schemas.fill("{not json");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Schemas are not valid JSON").waitFor();
  await schemas.fill(JSON.stringify({ 1: { type: "objekt" } }));
  expectFailure("admin", 422, "/api/v1/event-types/invoice.voided");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("alert").getByText("schemas.1").waitFor();
  const example = { id: "inv_9", reason: "duplicate" };
  await schemas.fill(
    JSON.stringify({
      1: { type: "object", required: ["id", "reason"], examples: [example] },
    }),
  );
  await page.getByLabel("Group of invoice.voided").fill("billing");
  await page.getByRole("checkbox", { name: /Enforce the latest schema/ }).check();
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("enforced", { exact: true }).waitFor();
  await page.getByText("billing", { exact: true }).waitFor();
  await shoot(page, "event-types-schema");

  const refused = await fetch(`${BASE}/api/v1/applications/${appId}/messages`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ eventType: "invoice.voided", payload: { id: "inv_9" } }),
  });
  assert.equal(refused.status, 422);
  assert.equal((await refused.json()).code, "schema_violation");

  // The endpoint takes only invoice.paid; an example is sent to it all the same.
  await page.getByRole("link", { name: "Applications" }).click();
  await page.getByRole("link", { name: appName }).click();
  await page.getByRole("link", { name: state.endpointUrl }).click();
  const section = page.getByRole("region", { name: "Send an example" });
  await section.getByLabel("Example event type").selectOption("invoice.voided");
  const before = received.length;
  await section.getByRole("button", { name: "Send example" }).click();
  await page.getByRole("heading", { name: "invoice.voided", level: 1 }).waitFor();
  await waitForRequests(before + 1);
  assert.deepEqual(JSON.parse(received[before].body), example);
  await shoot(page, "example-sent");
  assert.deepEqual(problems, []);
});

test("tenant: a message's payload deleted from its page, which then shows it expunged and offers no resend", async () => {
  const { page, key } = state;
  assert.ok(key, "needs the API key of the first test");
  const sdk = new Octohooks(key, { serverUrl: BASE });
  // An application of its own: the portal steps count the first one's endpoints.
  const app = await sdk.application.create({ name: "Expunge <test>" });
  const url = receiverUrl.replace(/\/hook$/, "/expunge");
  const endpoint = await sdk.endpoint.create(app.id, { url });
  const before = received.length;
  const sent = await sdk.message.create(app.id, {
    eventType: "customer.updated",
    payload: { email: "john@example.com" },
  });
  await waitForRequests(before + 1);
  assert.equal(received[before].url, "/expunge");

  await page.goto(
    `${BASE}/dashboard/#/apps/${encodeURIComponent(app.id)}/messages/${encodeURIComponent(sent.id)}`,
  );
  await page.getByRole("heading", { name: "customer.updated", level: 1 }).waitFor();
  await page.getByText('"john@example.com"').waitFor();
  const attempts = page.getByRole("list", { name: "Delivery attempts" }).getByRole("listitem");
  await eventually(
    async () => assert.equal(await attempts.count(), 1),
    () =>
      page
        .getByRole("region", { name: "Attempts" })
        .getByRole("button", { name: "Refresh" })
        .click(),
  );
  await page.getByRole("button", { name: `Resend to ${url}` }).waitFor();

  // The confirmation says what it does before anything happens.
  const zone = page.getByRole("region", { name: "Delete payload" });
  await zone.getByRole("button", { name: "Delete payload" }).click();
  const question = zone.getByRole("group", { name: /Delete the payload for good\?/ });
  await question.getByText("The message can no longer be resent").waitFor();
  await question.getByText("deliveries still waiting stop").waitFor();
  await question.getByRole("button", { name: "Cancel" }).click();
  assert.equal((await sdk.message.get(app.id, sent.id)).expunged, false, "Cancel kept it");
  await zone.getByRole("button", { name: "Delete payload" }).click();
  await zone.getByRole("button", { name: "Delete", exact: true }).click();

  // Where the payload was, a notice; no copy, no resend, nothing more to delete.
  const notice = page.getByRole("region", { name: "Payload", exact: true }).getByRole("note");
  await notice.getByText("Payload deleted", { exact: true }).waitFor();
  await page.getByText("expunged", { exact: true }).waitFor(); // the badge by the title
  await page.getByText("This message can no longer be resent").waitFor();
  assert.equal(await page.getByText("john@example.com").count(), 0);
  assert.equal(await page.getByRole("button", { name: "Copy payload" }).count(), 0);
  assert.equal(await page.getByRole("button", { name: `Resend to ${url}` }).count(), 0);
  assert.equal(await page.getByRole("region", { name: "Delete payload" }).count(), 0);
  // Its history stays.
  assert.equal(await attempts.count(), 1);
  await page.getByRole("cell", { name: "success", exact: true }).waitFor();
  await shoot(page, "message-expunged");

  // The API agrees, and refuses a resend.
  const read = await sdk.message.get(app.id, sent.id);
  assert.deepEqual([read.expunged, read.payload], [true, {}]);
  await assert.rejects(sdk.messageAttempt.resend(app.id, sent.id, endpoint.id), {
    status: 409,
    code: "message_expunged",
  });
  // Loaded again, the page reads it back; the message log marks it.
  await page.reload();
  await notice.getByText("Payload deleted", { exact: true }).waitFor();
  assert.equal(await page.getByRole("button", { name: `Resend to ${url}` }).count(), 0);
  await page.getByRole("link", { name: "Message log" }).click();
  await page.getByRole("heading", { name: "Message log", level: 1 }).waitFor();
  await page
    .getByRole("row")
    .filter({ hasText: "customer.updated" })
    .getByText("expunged", { exact: true })
    .waitFor();
  assert.equal(received.length, before + 1, "nothing was sent again");
  await sdk.application.delete(app.id);
  assert.deepEqual(problems, []);
});

/** The value shown for `term` in a term/value grid inside `scope`. */
function detail(scope, term) {
  return scope
    .getByRole("term")
    .filter({ hasText: new RegExp(`^${term}$`) })
    .locator("xpath=following-sibling::dd[1]");
}

test("tenant: an endpoint's statistics, and a replay of the messages it missed", async () => {
  const { page, key } = state;
  assert.ok(key, "needs the API key of the first test");
  const sdk = new Octohooks(key, { serverUrl: BASE });
  // An application of its own: the portal steps count the first one's endpoints.
  const app = await sdk.application.create({ name: "Replay <test>" });
  for (const n of [1, 2]) {
    await sdk.message.create(app.id, { eventType: "invoice.paid", payload: { n } });
  }
  await sdk.message.create(app.id, { eventType: "invoice.refunded", payload: { n: 3 } });
  // Created after the messages, taking one of their two event types.
  const lateUrl = receiverUrl.replace(/\/hook$/, "/late");
  const endpoint = await sdk.endpoint.create(app.id, {
    url: lateUrl,
    eventTypes: ["invoice.paid"],
  });

  await page.goto(
    `${BASE}/dashboard/#/apps/${encodeURIComponent(app.id)}/endpoints/${encodeURIComponent(endpoint.id)}`,
  );
  await page.getByRole("heading", { name: lateUrl, level: 1 }).waitFor();
  const stats = page.getByRole("region", { name: "Statistics" });
  await stats.getByText("No attempts in the last 24 hours.").waitFor();
  assert.equal(await detail(stats, "Successful attempts").textContent(), "0");
  assert.equal(await detail(stats, "Failed attempts").textContent(), "0");
  assert.equal(await detail(stats, "In flight").textContent(), "0");
  assert.equal(await detail(stats, "Last success").textContent(), "—");
  await stats.getByLabel("Statistics window").selectOption({ label: "Last 7 days" });
  await stats.getByText("No attempts in the last 7 days.").waitFor();

  const recovery = page.getByRole("region", { name: "Recover" });
  await recovery.getByText("No tasks yet").waitFor();
  assert.notEqual(await recovery.getByLabel("Since").inputValue(), "", "a default window");
  // Enter in a time field starts nothing: each task has its own button.
  await recovery.getByLabel("Since").press("Enter");
  await page.waitForTimeout(500);
  assert.equal(await recovery.locator(".notice").count(), 0, "Enter started a task");
  assert.equal((await sdk.backgroundTask.list({ endpointId: endpoint.id })).data.length, 0);
  const before = received.length;
  await recovery.getByRole("button", { name: "Replay missing messages" }).click();
  const progress = recovery.locator(".notice");
  await progress.getByText("finished", { exact: true }).waitFor();
  assert.equal(await detail(progress, "Task").textContent(), "Replay missing messages");
  assert.equal(await detail(progress, "Messages scanned").textContent(), "3");
  assert.equal(await detail(progress, "Messages queued").textContent(), "2");
  await recovery.getByRole("cell", { name: "Replay missing messages" }).waitFor();

  await waitForRequests(before + 2);
  const replayed = received.slice(before);
  assert.deepEqual(
    replayed.map((r) => r.url),
    ["/late", "/late"],
  );
  assert.deepEqual(replayed.map((r) => JSON.parse(r.body).n).sort(), [1, 2]);
  // The statistics count the deliveries.
  await eventually(
    async () => assert.equal(await detail(stats, "Successful attempts").textContent(), "2"),
    () => stats.getByRole("button", { name: "Refresh" }).click(),
  );
  await shoot(page, "endpoint-recovery");
  assert.deepEqual(problems, []);
});

test("tenant: a client certificate (mutual TLS) set, shown and removed on the endpoint page", async () => {
  const { page, key } = state;
  assert.ok(key, "needs the API key of the first test");
  const sdk = new Octohooks(key, { serverUrl: BASE });
  // An application of its own: the portal steps count the first one's endpoints.
  const app = await sdk.application.create({ name: "Mutual TLS" });
  const endpoint = await sdk.endpoint.create(app.id, { url: "https://127.0.0.1:9/mtls" });
  const apiPath = `/api/v1/applications/${encodeURIComponent(app.id)}/endpoints/${encodeURIComponent(endpoint.id)}/client-certificate`;
  const pair = selfSigned();
  const fingerprint = new X509Certificate(pair.certificate).fingerprint256;

  await page.goto(
    `${BASE}/dashboard/#/apps/${encodeURIComponent(app.id)}/endpoints/${encodeURIComponent(endpoint.id)}`,
  );
  await page.getByRole("heading", { name: endpoint.url, level: 1 }).waitFor();
  const section = page.getByRole("region", { name: "Client certificate (mutual TLS)" });
  const certificate = section.getByLabel("Certificate (PEM)", { exact: true });
  const privateKey = section.getByLabel("Private key (PEM)", { exact: true });

  // A key of another certificate is refused, with the API's reason; nothing is stored.
  await certificate.fill(pair.certificate);
  const { privateKey: other } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  await privateKey.fill(other.export({ type: "pkcs8", format: "pem" }).toString());
  expectFailure("admin", 422, apiPath);
  await section.getByRole("button", { name: "Save certificate" }).click();
  await section.getByRole("alert").filter({ hasText: "privateKey" }).waitFor();
  await assert.rejects(sdk.endpoint.getClientCertificate(app.id, endpoint.id), { status: 404 });

  // Its own key: stored, and the page shows the fingerprint instead of the form.
  await privateKey.fill(pair.privateKey);
  await section.getByRole("button", { name: "Save certificate" }).click();
  await section.getByText(fingerprint, { exact: true }).waitFor();
  assert.equal(await detail(section, "SHA-256 fingerprint").textContent(), fingerprint);
  assert.equal(await detail(section, "Certificates in the chain").textContent(), "1");
  assert.equal(await privateKey.count(), 0, "the form is gone once a certificate is set");
  const stored = await sdk.endpoint.getClientCertificate(app.id, endpoint.id);
  assert.equal(stored.fingerprintSha256, fingerprint);
  // Loaded again, the page reads it back.
  await page.reload();
  await section.getByText(fingerprint, { exact: true }).waitFor();
  await shoot(page, "endpoint-client-certificate");

  // Removed, after a confirmation: the form is back, and the API has none.
  await section.getByRole("button", { name: "Remove certificate" }).click();
  await section.getByRole("button", { name: "Remove", exact: true }).click();
  await certificate.waitFor();
  assert.equal(await section.getByText(fingerprint).count(), 0);
  await assert.rejects(sdk.endpoint.getClientCertificate(app.id, endpoint.id), { status: 404 });
  assert.deepEqual(problems, []);
});

test("tenant: operational webhooks: add one, see it listed, reveal its secret, disable and delete it", async () => {
  const { page, key } = state;
  assert.ok(key, "needs the API key of the first test");
  const sdk = new Octohooks(key, { serverUrl: BASE });
  await page.getByRole("link", { name: "Operational webhooks" }).click();
  await page.getByRole("heading", { name: "Operational webhooks", level: 1 }).waitFor();
  await page.getByText("No operational endpoints yet").waitFor();

  // The form: a URL, a description, two of the eight event types.
  const opsUrl = receiverUrl.replace(/\/hook$/, "/ops");
  await page.getByRole("button", { name: "Add endpoint" }).click();
  await page.getByLabel("Endpoint URL").fill(opsUrl);
  await page.getByLabel("Description").fill("On-call <pager>");
  assert.equal(await page.getByRole("checkbox").count(), 8);
  await page.getByRole("checkbox", { name: "message.attempt.exhausted" }).check();
  await page.getByRole("checkbox", { name: "endpoint.disabled" }).check();
  await shoot(page, "operational-new");
  await page.getByRole("button", { name: "Create operational endpoint" }).click();

  // Listed, with its filter (in the catalog's order) and its state.
  const row = page.getByRole("row").filter({ hasText: opsUrl });
  await row.getByText("On-call <pager>", { exact: true }).waitFor();
  await row.getByText("endpoint.disabled", { exact: true }).waitFor();
  await row.getByText("message.attempt.exhausted", { exact: true }).waitFor();
  await row.getByText("enabled", { exact: true }).waitFor();
  const [created] = (await sdk.operationalWebhookEndpoint.list()).data;
  assert.equal(created?.url, opsUrl);
  assert.deepEqual(created.eventTypes, ["endpoint.disabled", "message.attempt.exhausted"]);
  await shoot(page, "operational");

  // Its page: the signing secret, revealed, verifies the event a customer's endpoint raises.
  await row.getByRole("link", { name: opsUrl }).click();
  await page.getByRole("heading", { name: opsUrl, level: 1 }).waitFor();
  await page.getByRole("button", { name: "Reveal secret" }).click();
  const secret = await page.getByRole("textbox", { name: "Signing secret" }).inputValue();
  assert.match(secret, /^whsec_/);
  assert.equal(secret, (await sdk.operationalWebhookEndpoint.getSecret(created.id)).key);
  // An application of its own: the portal steps count the first one's endpoints.
  const app = await sdk.application.create({ name: "Watched by the operators" });
  const watched = await sdk.endpoint.create(app.id, { url: "http://127.0.0.1:9/watched" });
  const before = received.length;
  await sdk.endpoint.patch(app.id, watched.id, { enabled: false });
  await waitForRequests(before + 1);
  const told = received[before];
  assert.equal(told.url, "/ops");
  const event = new Webhook(secret).verify(told.body, told.headers);
  assert.equal(event.type, "endpoint.disabled");
  assert.deepEqual([event.data.endpointId, event.data.trigger], [watched.id, "manual"]);
  // ...and its attempt is listed.
  const attempts = page.getByRole("region", { name: "Delivery attempts" });
  await eventually(
    async () => assert.equal(await attempts.getByRole("row").count(), 2),
    () => attempts.getByRole("button", { name: "Refresh" }).click(),
  );
  await attempts.getByRole("cell", { name: "200", exact: true }).waitFor();
  await attempts.getByText("success", { exact: true }).waitFor();
  await shoot(page, "operational-endpoint");

  // Disabled, after a confirmation: the page and the API say so.
  await page.getByRole("button", { name: "Disable endpoint" }).click();
  await page.getByRole("button", { name: "Disable", exact: true }).click();
  await page.getByRole("button", { name: "Enable endpoint" }).waitFor();
  await page.getByText("disabled", { exact: true }).waitFor();
  assert.equal((await sdk.operationalWebhookEndpoint.get(created.id)).enabled, false);

  // Deleted, after a confirmation: back to the list, empty again.
  await page.getByRole("button", { name: "Delete endpoint" }).click();
  await page.getByRole("button", { name: "Delete", exact: true }).click();
  await page.getByRole("heading", { name: "Operational webhooks", level: 1 }).waitFor();
  await page.getByText("No operational endpoints yet").waitFor();
  assert.deepEqual((await sdk.operationalWebhookEndpoint.list()).data, []);
  await sdk.application.delete(app.id);
  assert.deepEqual(problems, []);
});

test("portal: a link opens only its application, whose endpoint it edits", async () => {
  const { page, appId, appName } = state;
  assert.ok(appId, "needs the application of the previous test");
  await page.goto(`${BASE}/dashboard/#/apps/${encodeURIComponent(appId)}`);
  await page.getByRole("heading", { name: appName, level: 1 }).waitFor();
  await page.getByLabel("Link expires after").selectOption({ label: "1 hour" });
  await page.getByRole("button", { name: "Create portal link" }).click();
  const link = await page.getByLabel("Portal link").inputValue();
  assert.match(link, /\/portal\/.*#token=/);
  await shoot(page, "application");

  // With theming parameters before the fragment.
  const url = new URL(link, BASE);
  url.searchParams.set("primaryColor", "#ff6600");
  url.searchParams.set("dark", "1");
  url.searchParams.set("logo", "javascript:alert(4)");
  const portal = watch(await context.newPage(), "portal");
  await portal.goto(url.href);
  await portal.getByRole("heading", { name: `${appName}: webhooks`, level: 1 }).waitFor();
  assert.ok(!portal.url().includes("token="), "the token must leave the address bar");
  assert.ok(
    await portal.evaluate(() => Object.keys(sessionStorage).length === 1),
    "the token is kept in sessionStorage",
  );
  assert.equal(
    await portal.evaluate(() =>
      getComputedStyle(document.documentElement).getPropertyValue("--primary").trim(),
    ),
    "#ff6600",
  );
  assert.equal(await portal.locator("img").count(), 0, "a non-https logo must be ignored");
  // Nothing outside the application: no applications list, no event type editing, no
  // operational webhooks.
  assert.equal(await portal.getByRole("link", { name: "Applications" }).count(), 0);
  assert.equal(await portal.getByRole("link", { name: "Event types" }).count(), 0);
  assert.equal(await portal.getByRole("link", { name: "Operational webhooks" }).count(), 0);
  await shoot(portal, "portal");

  // Navigating elsewhere brings the portal back to its application.
  await portal.evaluate(() => {
    location.hash = "#/apps/another-app";
  });
  await portal.getByRole("heading", { name: `${appName}: webhooks`, level: 1 }).waitFor();
  assert.ok(portal.url().includes(encodeURIComponent(appId)));

  await portal.getByRole("link", { name: state.endpointUrl }).click();
  await portal.getByRole("heading", { name: state.endpointUrl, level: 1 }).waitFor();
  await portal.getByRole("button", { name: "Edit endpoint" }).click();
  await portal.getByLabel("Description").fill("Edited in the portal");
  await portal.getByRole("checkbox", { name: "invoice.voided" }).check();
  await portal.getByLabel("Rate limit (messages per second)").fill("25");
  await portal.getByRole("button", { name: "Save changes" }).click();
  await portal.getByText("Edited in the portal").waitFor();
  await portal.getByText("25 messages per second").waitFor();
  await portal.getByRole("definition").getByText("invoice.voided").waitFor();
  await shoot(portal, "portal-endpoint");

  await portal
    .getByRole("link", { name: `${appName}` })
    .first()
    .click();
  await portal.getByRole("link", { name: "Message log" }).click();
  await portal.getByRole("link", { name: "invoice.paid" }).click();
  const attempts = portal.getByRole("list", { name: "Delivery attempts" }).getByRole("listitem");
  await eventually(async () => assert.equal(await attempts.count(), 2));
  // The portal resends, but deleting a payload is for API keys only: it is not offered.
  await portal.getByRole("button", { name: `Resend to ${state.endpointUrl}` }).waitFor();
  assert.equal(await portal.getByRole("button", { name: "Delete payload" }).count(), 0);
  assert.equal(await portal.getByRole("region", { name: "Delete payload" }).count(), 0);
  await shoot(portal, "portal-message");

  const sdk = new Octohooks(state.key, { serverUrl: BASE });
  const ep = (await sdk.endpoint.list(appId)).data[0];
  assert.equal(ep.description, "Edited in the portal");
  assert.deepEqual([...ep.eventTypes].sort(), ["invoice.paid", "invoice.voided"]);
  assert.deepEqual(problems, []);
  state.portal = portal;
});

test("portal: the token opens no other application", async (t) => {
  const { portal, appId, key } = state;
  assert.ok(portal, "needs the portal page of the previous test");
  // Closed in any case: its message page refreshes itself, and a later step revokes its link.
  t.after(() => portal.close());
  const sdk = new Octohooks(key, { serverUrl: BASE });
  const other = await sdk.application.create({ name: "Another customer" });
  assert.notEqual(other.id, appId);

  const otherPath = `/api/v1/applications/${encodeURIComponent(other.id)}/endpoints`;
  expectFailure("portal", 403, otherPath);
  const refused = await portalFetch(portal, otherPath);
  assert.equal(refused.status, 403);
  assert.match(refused.type, /^application\/problem\+json/);
  assert.equal(refused.body.code, "forbidden");

  const own = await portalFetch(
    portal,
    `/api/v1/applications/${encodeURIComponent(appId)}/endpoints`,
  );
  assert.equal(own.status, 200);
  // Lists are JSON arrays (the next page is in a Link header).
  assert.deepEqual(
    own.body.map((e) => e.url),
    [state.endpointUrl],
  );
  assert.deepEqual(problems, []);
});

test("portal: an expired link shows so, and the API refuses it", async () => {
  const { appId, appName, envName } = state;
  assert.ok(appId && envName, "needs the environment and application of the previous tests");
  const admin = new Octohooks(ADMIN, { serverUrl: BASE });
  const env = (await admin.environment.list({ limit: 100 })).data.find((e) => e.name === envName);
  assert.ok(env, `environment ${envName} not listed`);
  const iat = Date.now() - 7_200_000;
  const claims = { v: 1, env: env.id, app: appId, iat, exp: Date.now() - 3_600_000, ro: false };
  const appPath = `/api/v1/applications/${encodeURIComponent(appId)}`;

  // The same claims with an exp ahead work: the minting is right.
  const valid = mintPortalToken({ ...claims, exp: Date.now() + 3_600_000 });
  const good = watch(await context.newPage(), "portal-minted");
  await good.goto(`${BASE}/portal/#token=${valid}`);
  await good.getByRole("heading", { name: `${appName}: webhooks`, level: 1 }).waitFor();
  assert.equal((await portalFetch(good, appPath)).status, 200);
  await good.close();

  const expired = mintPortalToken(claims);
  const page = watch(await context.newPage(), "portal-expired");
  expectFailure("portal-expired", 401, appPath);
  await page.goto(`${BASE}/portal/#token=${expired}`);
  await page.getByRole("alert").filter({ hasText: EXPIRED_TEXT }).waitFor();
  assert.ok(!page.url().includes("token="), "the token must leave the address bar");
  await shoot(page, "portal-expired");
  const refused = await portalFetch(page, appPath);
  assert.equal(refused.status, 401);
  assert.match(refused.type, /^application\/problem\+json/);
  await page.close();
  assert.deepEqual(problems, []);
});

test("portal: a revoked link shows as expired, and the API refuses it", async () => {
  const { appId, appName, key } = state;
  assert.ok(appId, "needs the application of the previous tests");
  const sdk = new Octohooks(key, { serverUrl: BASE });
  const access = await sdk.portalAccess.create(appId);
  const page = watch(await context.newPage(), "portal-revoked");
  await page.goto(new URL(access.url, BASE).href);
  await page.getByRole("heading", { name: `${appName}: webhooks`, level: 1 }).waitFor();
  await page.getByRole("link", { name: state.endpointUrl }).waitFor();

  await sdk.portalAccess.expireAll(appId);
  // From now on the page's own calls of its application are refused.
  const appPrefix = `/api/v1/applications/${encodeURIComponent(appId)}`;
  expectFailure("portal-revoked", 401, appPrefix);
  expectFailure("portal-revoked", 401, `${appPrefix}/`);

  // Navigating in the portal...
  await page.getByRole("link", { name: "Message log" }).click();
  await page.getByRole("alert").filter({ hasText: EXPIRED_TEXT }).waitFor();
  // ...and reloading it both show the link as expired, in the page's frame.
  await page.reload();
  await page.getByRole("alert").filter({ hasText: EXPIRED_TEXT }).waitFor();
  await page.getByRole("link", { name: "Webhooks" }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Try again" }).count(), 0);
  await shoot(page, "portal-revoked");

  const refused = await portalFetch(page, `${appPrefix}/endpoints`);
  assert.equal(refused.status, 401);
  assert.equal(refused.body.code, "unauthorized");
  await page.close();
  assert.deepEqual(problems, []);
});

test("keyboard: sign in with the keyboard only, with a visible focus", async () => {
  const { key } = state;
  assert.ok(key, "needs the API key of the first test");
  const page = watch(await context.newPage(), "keyboard");
  await page.goto(`${BASE}/dashboard/`);
  await page.getByRole("heading", { name: "Sign in to the console" }).waitFor();

  /** What has the focus, and whether it shows: an outline or a box shadow. */
  const focused = () =>
    page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      const style = getComputedStyle(el);
      const outline = style.outlineStyle !== "none" && Number.parseFloat(style.outlineWidth) > 0;
      const shadow = style.boxShadow !== "none" && style.boxShadow !== "";
      const box = el.getBoundingClientRect();
      return {
        label: el.labels?.[0]?.textContent ?? el.textContent ?? "",
        tag: el.tagName.toLowerCase(),
        visible: outline || shadow,
        onScreen: box.width > 0 && box.height > 0 && box.bottom > 0 && box.right > 0,
      };
    });

  // From the top of the page, Tab reaches the token field first.
  await page.keyboard.press("Tab");
  const field = await focused();
  assert.equal(field?.label, "API key or admin token");
  assert.ok(field.visible, "the focused token field shows no focus outline");
  await page.keyboard.type(key);
  // The button shows its focus too.
  await page.keyboard.press("Tab");
  const button = await focused();
  assert.equal(button?.label, "Sign in");
  assert.ok(button.visible, "the focused Sign in button shows no focus outline");
  await page.keyboard.press("Shift+Tab");
  assert.equal((await focused())?.label, "API key or admin token");
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Applications", level: 1 }).waitFor();

  // Signed in, the first Tab stop is the skip link, shown on screen with its focus.
  await page.keyboard.press("Tab");
  const skip = await focused();
  assert.equal(skip?.label, "Skip to content");
  assert.ok(skip.visible && skip.onScreen, "the focused skip link is not visible");
  await page.keyboard.press("Tab");
  const brand = await focused();
  assert.equal(brand?.tag, "a");
  assert.ok(brand.visible, "the focused brand link shows no focus outline");
  await shoot(page, "keyboard");
  await page.close();
  assert.deepEqual(problems, []);
});
