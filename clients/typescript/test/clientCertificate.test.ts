// Endpoint client certificates (mutual TLS) against the real API: a self-signed certificate and
// its key made by `openssl` for each run, a second key of the same kind that does not belong.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ApiError, Octohooks } from "../src/index.js";
import { client, serverUrl, uniqueUid } from "./support.js";

const octohooks = client();

/** A self-signed P-256 certificate for `CN=client.example`, valid for a day, and its key. */
function selfSigned(): { certificate: string; privateKey: string } {
  const dir = mkdtempSync(join(tmpdir(), "octohooks-mtls-"));
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

/** Another P-256 key in PKCS#8 PEM: valid, but not the key of any certificate here. */
function otherKey(): string {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return privateKey.export({ type: "pkcs8", format: "pem" }).toString();
}

async function failure(call: Promise<unknown>): Promise<ApiError> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof ApiError, `not an ApiError: ${error}`);
    return error;
  }
  assert.fail("the call succeeded");
}

describe("endpoint client certificate", () => {
  let appId = "";
  before(async () => {
    appId = (await octohooks.application.create({ name: "mTLS", uid: uniqueUid("mtls") })).id;
  });
  after(() => octohooks.application.delete(appId));

  test("set, get, refused pairs, delete", async () => {
    const endpoint = await octohooks.endpoint.create(appId, { url: "https://127.0.0.1:9/mtls" });
    const pair = selfSigned();
    const fingerprint = new X509Certificate(pair.certificate).fingerprint256;

    const none = await failure(octohooks.endpoint.getClientCertificate(appId, endpoint.id));
    assert.equal(none.status, 404);
    assert.equal(none.code, "not_found");

    const mismatched = await failure(
      octohooks.endpoint.setClientCertificate(appId, endpoint.id, {
        certificate: pair.certificate,
        privateKey: otherKey(),
      }),
    );
    assert.equal(mismatched.status, 422);
    assert.equal(mismatched.code, "validation_error");
    assert.match(mismatched.detail ?? "", /^privateKey\b/);

    const notACertificate = await failure(
      octohooks.endpoint.setClientCertificate(appId, endpoint.id, {
        certificate: pair.privateKey,
        privateKey: pair.privateKey,
      }),
    );
    assert.equal(notACertificate.status, 422);
    assert.match(notACertificate.detail ?? "", /^certificate\b/);
    await assert.rejects(octohooks.endpoint.getClientCertificate(appId, endpoint.id), {
      status: 404,
    });

    const set = await octohooks.endpoint.setClientCertificate(appId, endpoint.id, pair);
    assert.equal(set.fingerprintSha256, fingerprint);
    assert.equal(new X509Certificate(set.certificate).fingerprint256, fingerprint);
    assert.equal(Object.keys(set).includes("privateKey"), false, "the key is never answered");

    const read = await octohooks.endpoint.getClientCertificate(appId, endpoint.id);
    assert.deepEqual(read, set);

    await octohooks.endpoint.deleteClientCertificate(appId, endpoint.id);
    await assert.rejects(octohooks.endpoint.getClientCertificate(appId, endpoint.id), {
      status: 404,
      code: "not_found",
    });
  });

  test("a portal link reads it; only one that may change things sets or removes it", async () => {
    const endpoint = await octohooks.endpoint.create(appId, { url: "https://127.0.0.1:9/portal" });
    const pair = selfSigned();
    const { token } = await octohooks.portalAccess.create(appId, { expiry: 600 });
    const portal = new Octohooks(token, { serverUrl });
    const set = await portal.endpoint.setClientCertificate(appId, endpoint.id, pair);
    assert.equal(set.fingerprintSha256, new X509Certificate(pair.certificate).fingerprint256);

    const readOnly = await octohooks.portalAccess.create(appId, { expiry: 600, readOnly: true });
    const viewer = new Octohooks(readOnly.token, { serverUrl });
    assert.deepEqual(await viewer.endpoint.getClientCertificate(appId, endpoint.id), set);
    await assert.rejects(viewer.endpoint.deleteClientCertificate(appId, endpoint.id), {
      status: 403,
      code: "forbidden",
    });
    await assert.rejects(viewer.endpoint.setClientCertificate(appId, endpoint.id, pair), {
      status: 403,
      code: "forbidden",
    });

    await portal.endpoint.deleteClientCertificate(appId, endpoint.id);
    await assert.rejects(viewer.endpoint.getClientCertificate(appId, endpoint.id), {
      status: 404,
    });
  });
});
