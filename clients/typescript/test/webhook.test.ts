// Tests of the webhook verifier against node:crypto and the reference `standardwebhooks`
// package, used as an oracle: for every input, both must agree on the signature and on
// whether the message is accepted.
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { createServer, type IncomingHttpHeaders, request } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import {
  WebhookVerificationError as OracleVerificationError,
  Webhook as OracleWebhook,
} from "standardwebhooks";
import { hmacSha256, sha256 } from "../src/sha256.js";
import { Webhook, type WebhookHeaders, WebhookVerificationError } from "../src/webhook.js";

// Deterministic PRNG (mulberry32) so that any failure is reproducible.
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(0x5eed);
const int = (min: number, max: number): number => min + Math.floor(random() * (max - min + 1));
const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => int(0, 255));
const pick = <T>(items: readonly T[]): T => {
  const item = items[int(0, items.length - 1)];
  assert(item !== undefined);
  return item;
};

// Code point ranges mixing ASCII (quotes, backslashes, controls), 2-, 3- and 4-byte UTF-8.
const RANGES: readonly (readonly [number, number])[] = [
  [0x20, 0x7e],
  [0x00, 0x1f],
  [0xa0, 0x7ff],
  [0x4e00, 0x9fff],
  [0xe000, 0xfffd],
  [0x1f300, 0x1faff],
  [0x10000, 0x10ffff],
];
function text(length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) {
    const [lo, hi] = pick(RANGES);
    out += String.fromCodePoint(int(lo, hi));
  }
  return out;
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const hex = (data: Uint8Array): string => Buffer.from(data).toString("hex");
const toBase64 = (data: Uint8Array): string => Buffer.from(data).toString("base64");

interface Message {
  id: string;
  timestamp: number;
  payload: string;
}

function randomMessage(large = false): Message {
  const body = {
    type: pick(["message.created", "endpoint.updated", "ünïcødé.事件", "emoji.🎉"]),
    text: text(large ? int(100_000, 300_000) : int(0, 200)),
    n: int(-1e6, 1e6),
    nested: { ok: random() < 0.5, list: [1, "two", null, { three: text(5) }] },
  };
  return {
    id: `msg_${toBase64(bytes(int(1, 24))).replace(/[+/=]/g, "")}`,
    timestamp: nowSeconds() + int(-250, 250),
    payload: JSON.stringify(body),
  };
}

const headersOf = (m: Message, signature: string): Record<string, string> => ({
  "webhook-id": m.id,
  "webhook-timestamp": String(m.timestamp),
  "webhook-signature": signature,
});

/** Both implementations must refuse; ours with a WebhookVerificationError carrying `message`. */
function assertBothRefuse(
  secret: string,
  payload: string,
  headers: Record<string, string>,
  message: string,
): void {
  assert.throws(
    () => new Webhook(secret).verify(payload, headers),
    (err: unknown) => {
      assert(err instanceof WebhookVerificationError);
      assert.equal(err.name, "WebhookVerificationError");
      assert.equal(err.message, message);
      return true;
    },
  );
  assert.throws(() => new OracleWebhook(secret).verify(payload, headers), OracleVerificationError);
}

describe("sha256", () => {
  test("matches node:crypto for every length from 0 to 300 bytes", () => {
    for (let n = 0; n <= 300; n++) {
      const data = bytes(n);
      assert.equal(hex(sha256(data)), createHash("sha256").update(data).digest("hex"), `n=${n}`);
    }
  });

  test("matches node:crypto around block boundaries, on views, and on large inputs", () => {
    const lengths = [55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 65_536, 1_000_003];
    for (const n of lengths) {
      const backing = bytes(n + 7);
      const view = backing.subarray(3, 3 + n); // non-zero byteOffset
      assert.equal(hex(sha256(view)), createHash("sha256").update(view).digest("hex"), `n=${n}`);
    }
  });

  test("known answer vectors", () => {
    const enc = new TextEncoder();
    assert.equal(
      hex(sha256(new Uint8Array(0))),
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
    assert.equal(
      hex(sha256(enc.encode("abc"))),
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
    // RFC 4231 test case 2.
    assert.equal(
      hex(hmacSha256(enc.encode("Jefe"), enc.encode("what do ya want for nothing?"))),
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    );
  });
});

describe("hmacSha256", () => {
  test("matches node:crypto for key lengths 0..200 (incl. 64, 65, 128) and random data", () => {
    for (let keyLength = 0; keyLength <= 200; keyLength++) {
      const key = bytes(keyLength);
      const data = bytes(int(0, 300));
      const expected = createHmac("sha256", key).update(data).digest("hex");
      assert.equal(hex(hmacSha256(key, data)), expected, `key=${keyLength}`);
    }
  });

  test("does not modify its inputs", () => {
    const key = bytes(100);
    const data = bytes(100);
    const [keyCopy, dataCopy] = [key.slice(), data.slice()];
    hmacSha256(key, data);
    assert.deepEqual(key, keyCopy);
    assert.deepEqual(data, dataCopy);
  });
});

describe("Webhook agrees with the standardwebhooks oracle", () => {
  test("sign() gives the same header value for random secrets, ids, timestamps and payloads", () => {
    for (let i = 0; i < 300; i++) {
      const key = bytes(int(1, 100));
      const secret = (random() < 0.5 ? "whsec_" : "") + toBase64(key);
      const id = random() < 0.2 ? text(int(0, 40)) : `msg_${i}`;
      const seconds = int(0, 4_000_000_000);
      // Arbitrary strings, including unpaired surrogates, not only JSON.
      const payload = random() < 0.5 ? text(int(0, 500)) : `${text(3)}\ud800${text(3)}`;
      const oracle = new OracleWebhook(secret).sign(id, new Date(seconds * 1000), payload);
      const ours = new Webhook(secret);
      assert.equal(ours.sign(id, new Date(seconds * 1000 + int(0, 999)), payload), oracle);
      assert.equal(ours.sign(id, seconds, payload), oracle);
      assert.equal(new Webhook(key).sign(id, seconds, payload), oracle, "raw key bytes");
      const payloadBytes = new TextEncoder().encode(payload);
      assert.equal(ours.sign(id, seconds, payloadBytes), oracle, "payload as bytes");
    }
  });

  test("messages signed by either verify with both, to the same object", () => {
    for (let i = 0; i < 150; i++) {
      const secret = `whsec_${toBase64(bytes(int(16, 64)))}`;
      const m = randomMessage(i % 25 === 0);
      const ours = new Webhook(secret);
      const oracle = new OracleWebhook(secret);
      const expected: unknown = JSON.parse(m.payload);

      const oracleSigned = headersOf(m, oracle.sign(m.id, new Date(m.timestamp * 1000), m.payload));
      assert.deepEqual(ours.verify(m.payload, oracleSigned), expected);
      assert.deepEqual(ours.verify(Buffer.from(m.payload), oracleSigned), expected);
      assert.deepEqual(ours.verify(new TextEncoder().encode(m.payload), oracleSigned), expected);

      const oursSigned = headersOf(m, ours.sign(m.id, m.timestamp, m.payload));
      assert.deepEqual(oursSigned, oracleSigned);
      assert.deepEqual(oracle.verify(m.payload, oursSigned), expected);
      assert.deepEqual(oracle.verify(Buffer.from(m.payload), oursSigned), expected);
    }
  });

  test("verifying bytes uses them as they are", () => {
    const secret = `whsec_${toBase64(bytes(32))}`;
    const m = randomMessage();
    const body = new TextEncoder().encode(m.payload);
    const headers = headersOf(m, new Webhook(secret).sign(m.id, m.timestamp, body));
    assert.deepEqual(new Webhook(secret).verify(body, headers), JSON.parse(m.payload));
    assert.deepEqual(new OracleWebhook(secret).verify(m.payload, headers), JSON.parse(m.payload));
  });

  test("an empty body verifies to undefined, as in the oracle", () => {
    const secret = `whsec_${toBase64(bytes(32))}`;
    const m = { ...randomMessage(), payload: "" };
    const headers = headersOf(m, new Webhook(secret).sign(m.id, m.timestamp, ""));
    assert.equal(new Webhook(secret).verify("", headers), undefined);
    assert.equal(new OracleWebhook(secret).verify("", headers), undefined);
  });
});

describe("Webhook header handling", () => {
  const secret = `whsec_${toBase64(bytes(32))}`;
  const wh = new Webhook(secret);
  const m = randomMessage();
  const signature = wh.sign(m.id, m.timestamp, m.payload);
  const expected: unknown = JSON.parse(m.payload);

  test("header names in any case", () => {
    const upper = {
      "WEBHOOK-ID": m.id,
      "WEBHOOK-TIMESTAMP": String(m.timestamp),
      "WEBHOOK-SIGNATURE": signature,
    };
    const mixed = {
      "Webhook-Id": m.id,
      "webhook-Timestamp": String(m.timestamp),
      "WebHook-SIGNATURE": signature,
      "Content-Type": "application/json",
    };
    assert.deepEqual(wh.verify(m.payload, upper), expected);
    assert.deepEqual(wh.verify(m.payload, mixed), expected);
    assert.deepEqual(new OracleWebhook(secret).verify(m.payload, upper), expected);
  });

  test("fetch Headers object, whatever the case used to build it", () => {
    const headers = new Headers({
      "Webhook-ID": m.id,
      "WEBHOOK-TIMESTAMP": String(m.timestamp),
      "webhook-signature": signature,
    });
    assert.deepEqual(wh.verify(m.payload, headers), expected);
    // Repeated headers are joined by fetch with ", ".
    const repeated = new Headers(headersOf(m, `v1,${toBase64(bytes(32))}`));
    repeated.append("webhook-signature", signature);
    assert.deepEqual(wh.verify(m.payload, repeated), expected);
  });

  test("custom get()-style objects, including Map", () => {
    const map = new Map(Object.entries(headersOf(m, signature)));
    assert.deepEqual(wh.verify(m.payload, map), expected);
    const getter: WebhookHeaders = { get: (name) => headersOf(m, signature)[name] ?? null };
    assert.deepEqual(wh.verify(m.payload, getter), expected);
  });

  test("Node-style object with array values", () => {
    const headers: IncomingHttpHeaders = {
      host: "example.com",
      "webhook-id": [m.id],
      "webhook-timestamp": String(m.timestamp),
      "webhook-signature": [`v1,${toBase64(bytes(32))}`, signature],
      "x-undefined": undefined,
    };
    assert.deepEqual(wh.verify(m.payload, headers), expected);
    assert.throws(
      () => wh.verify(m.payload, { ...headers, "webhook-signature": [] }),
      new WebhookVerificationError("Missing required headers"),
    );
  });

  test("a real node:http request, with the signature header sent twice", async () => {
    const received = new Promise<{ headers: IncomingHttpHeaders; body: Buffer }>((resolve) => {
      const server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (chunk: Buffer) => chunks.push(chunk));
        req.on("end", () => {
          res.end();
          server.close();
          resolve({ headers: req.headers, body: Buffer.concat(chunks) });
        });
      });
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo;
        const req = request({ port, host: "127.0.0.1", method: "POST", path: "/" });
        req.setHeader("Webhook-Id", m.id);
        req.setHeader("Webhook-Timestamp", String(m.timestamp));
        req.setHeader("Webhook-Signature", [`v1a,${toBase64(bytes(32))}`, signature]);
        req.end(m.payload);
      });
    });
    const { headers, body } = await received;
    assert.deepEqual(wh.verify(body, headers), expected);
    assert.deepEqual(wh.verify(body.toString("utf8"), headers), expected);
  });
});

describe("Webhook refusals (the oracle must refuse too)", () => {
  const key = bytes(32);
  const secret = `whsec_${toBase64(key)}`;
  const wh = new Webhook(secret);
  const m = randomMessage();
  const signature = wh.sign(m.id, m.timestamp, m.payload);
  const good = headersOf(m, signature);

  test("the untouched message is accepted by both", () => {
    assert.deepEqual(wh.verify(m.payload, good), JSON.parse(m.payload));
    assert.deepEqual(new OracleWebhook(secret).verify(m.payload, good), JSON.parse(m.payload));
  });

  test("tampered body", () => {
    const tampered = JSON.stringify({ ...JSON.parse(m.payload), n: 42 });
    assertBothRefuse(secret, tampered, good, "No matching signature found");
    assertBothRefuse(secret, `${m.payload} `, good, "No matching signature found");
  });

  test("tampered id or timestamp", () => {
    const otherId = { ...good, "webhook-id": `${m.id}x` };
    assertBothRefuse(secret, m.payload, otherId, "No matching signature found");
    const otherTs = { ...good, "webhook-timestamp": String(m.timestamp + 1) };
    assertBothRefuse(secret, m.payload, otherTs, "No matching signature found");
  });

  test("wrong secret", () => {
    const other = `whsec_${toBase64(bytes(32))}`;
    assertBothRefuse(other, m.payload, good, "No matching signature found");
  });

  for (const name of ["webhook-id", "webhook-timestamp", "webhook-signature"]) {
    test(`missing ${name}`, () => {
      const headers: Record<string, string> = { ...good };
      delete headers[name];
      assertBothRefuse(secret, m.payload, headers, "Missing required headers");
      assertBothRefuse(secret, m.payload, { ...good, [name]: "" }, "Missing required headers");
    });
  }

  test("timestamp 6 minutes old or 6 minutes ahead, even when correctly signed", () => {
    for (const [offset, message] of [
      [-360, "Message timestamp too old"],
      [360, "Message timestamp too new"],
    ] as const) {
      const stale = { ...m, timestamp: nowSeconds() + offset };
      const headers = headersOf(stale, wh.sign(stale.id, stale.timestamp, stale.payload));
      assertBothRefuse(secret, m.payload, headers, message);
    }
  });

  test("timestamp that is not an integer", () => {
    for (const bad of ["", "abc", " ", "1e9", "-1", "-0", String(m.timestamp - 400)]) {
      const headers = { ...good, "webhook-timestamp": bad };
      const message = bad === "" ? "Missing required headers" : "Message timestamp too old";
      assertBothRefuse(secret, m.payload, headers, message);
    }
  });

  test("known disagreement: the oracle parseInt()s the timestamp, we require digits only", () => {
    // The oracle reads "<ts>.5" or "<ts>abc" as <ts> and accepts the signature made for <ts>;
    // we refuse a header that is not a plain integer.
    for (const bad of [`${m.timestamp}.5`, `${m.timestamp}abc`, ` ${m.timestamp}`]) {
      const headers = { ...good, "webhook-timestamp": bad };
      assert.throws(
        () => wh.verify(m.payload, headers),
        new WebhookVerificationError("Message timestamp too old"),
      );
      assert.deepEqual(new OracleWebhook(secret).verify(m.payload, headers), JSON.parse(m.payload));
    }
    // Leading zeros denote the same integer in both, and are accepted by both.
    const zeros = { ...good, "webhook-timestamp": `00${m.timestamp}` };
    assert.deepEqual(wh.verify(m.payload, zeros), JSON.parse(m.payload));
    assert.deepEqual(new OracleWebhook(secret).verify(m.payload, zeros), JSON.parse(m.payload));
  });

  test("garbage signatures", () => {
    // A 32-byte value's last base64 digit carries 2 zero padding bits; setting one gives a
    // non-canonical spelling that lenient decoders (atob) map to the same bytes.
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const flipPaddingBit = (digit = ""): string => alphabet[alphabet.indexOf(digit) ^ 1] ?? "";
    const valid = signature.slice(3);
    const garbage = [
      "garbage",
      "v1,",
      "v1,!!!!",
      "v1,not base64 at all",
      `v1,${toBase64(bytes(32))}`,
      `v1,${toBase64(bytes(31))}`,
      `v1,${valid.slice(0, -1)}`, // unpadded
      `v1,${valid.slice(0, -2)}${flipPaddingBit(valid.at(-2))}=`, // same bytes under atob
      `V1,${valid}`,
      `v1;${valid}`,
    ];
    for (const bad of garbage) {
      assertBothRefuse(
        secret,
        m.payload,
        { ...good, "webhook-signature": bad },
        "No matching signature found",
      );
    }
  });

  test("signatures of other versions only", () => {
    const valid = signature.slice(3);
    for (const bad of [`v2,${valid}`, `v1a,${valid}`, `v2,${valid} v1a,${valid}`]) {
      assertBothRefuse(
        secret,
        m.payload,
        { ...good, "webhook-signature": bad },
        "No matching signature found",
      );
    }
  });

  test("several signatures where one is valid pass in both", () => {
    const other = `v1,${toBase64(bytes(32))}`;
    for (const list of [
      `${other} ${signature}`,
      `${signature} ${other}`,
      `v1a,${toBase64(bytes(32))} ${other} ${signature} v2,abc`,
    ]) {
      const headers = { ...good, "webhook-signature": list };
      assert.deepEqual(wh.verify(m.payload, headers), JSON.parse(m.payload));
      assert.deepEqual(new OracleWebhook(secret).verify(m.payload, headers), JSON.parse(m.payload));
    }
  });

  test("secret with and without the whsec_ prefix, or as raw bytes, are the same key", () => {
    for (const variant of [secret, secret.slice("whsec_".length)]) {
      assert.deepEqual(new Webhook(variant).verify(m.payload, good), JSON.parse(m.payload));
      assert.deepEqual(new OracleWebhook(variant).verify(m.payload, good), JSON.parse(m.payload));
      assertBothRefuse(variant, `${m.payload} `, good, "No matching signature found");
    }
    assert.deepEqual(new Webhook(key).verify(m.payload, good), JSON.parse(m.payload));
  });
});

describe("Webhook construction and options", () => {
  test("an invalid or empty secret throws at construction, like the oracle", () => {
    for (const bad of ["whsec_not base64!", "whsec_@@@@", "whsec_", ""]) {
      assert.throws(() => new Webhook(bad), Error, bad);
      assert.throws(() => new OracleWebhook(bad), Error, bad);
    }
    assert.throws(() => new Webhook(new Uint8Array(0)), Error);
  });

  test("raw key bytes are copied", () => {
    const key = bytes(32);
    const wh = new Webhook(key);
    const before = wh.sign("msg", 1, "{}");
    key.fill(0);
    assert.equal(wh.sign("msg", 1, "{}"), before);
  });

  test("toleranceSeconds widens or narrows the accepted window", () => {
    const secret = toBase64(bytes(32));
    const m = { ...randomMessage(), timestamp: nowSeconds() - 3600 };
    const headers = headersOf(m, new Webhook(secret).sign(m.id, m.timestamp, m.payload));
    assert.throws(
      () => new Webhook(secret).verify(m.payload, headers),
      new WebhookVerificationError("Message timestamp too old"),
    );
    const lenient = new Webhook(secret, { toleranceSeconds: 7200 });
    assert.deepEqual(lenient.verify(m.payload, headers), JSON.parse(m.payload));

    const fresh = { ...m, timestamp: nowSeconds() + 30 };
    const strict = new Webhook(secret, { toleranceSeconds: 10 });
    assert.throws(
      () =>
        strict.verify(m.payload, headersOf(fresh, strict.sign(m.id, fresh.timestamp, m.payload))),
      new WebhookVerificationError("Message timestamp too new"),
    );
    assert.throws(() => new Webhook(secret, { toleranceSeconds: -1 }), RangeError);
    assert.throws(() => new Webhook(secret, { toleranceSeconds: Number.NaN }), RangeError);
  });

  test("a parsed (non-raw) payload is a TypeError, not a silent mismatch", () => {
    const wh = new Webhook(toBase64(bytes(32)));
    const m = randomMessage();
    const headers = headersOf(m, wh.sign(m.id, m.timestamp, m.payload));
    const parsed = JSON.parse(m.payload) as unknown as string;
    assert.throws(() => wh.verify(parsed, headers), TypeError);
    assert.throws(() => wh.sign(m.id, Number.NaN, m.payload), RangeError);
  });

  test("errors are proper Error subclasses", () => {
    const err = new WebhookVerificationError("x");
    assert(err instanceof Error);
    assert(err instanceof WebhookVerificationError);
    assert.equal(err.name, "WebhookVerificationError");
    assert.equal(err.message, "x");
    assert.match(String(err.stack), /WebhookVerificationError: x/);
  });
});
