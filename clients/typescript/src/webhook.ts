/**
 * Receiver-side verification of Standard Webhooks (https://www.standardwebhooks.com),
 * the signing scheme Octohooks uses for every delivery.
 *
 * Behaviour follows the spec and the reference `standardwebhooks` npm package, but
 * this module is synchronous and has no runtime dependency: it runs unchanged in
 * browsers, edge runtimes and Node >= 18 (no `Buffer`, no `node:crypto`, no WebCrypto,
 * whose API is async-only and which Node 18 does not expose globally).
 */

import { hmacSha256 } from "./sha256.js";

// The few host globals used here, typed locally so that the emitted declarations and
// this file depend on neither DOM nor @types/node. All exist in browsers and Node >= 16.
interface HostGlobals {
  atob(data: string): string;
  btoa(data: string): string;
  TextEncoder: new () => { encode(input: string): Uint8Array };
  TextDecoder: new () => { decode(input: Uint8Array): string };
}
const host = globalThis as unknown as HostGlobals;
const utf8Encoder = new host.TextEncoder();
const utf8Decoder = new host.TextDecoder();

const SECRET_PREFIX = "whsec_";
const DEFAULT_TOLERANCE_SECONDS = 5 * 60;
const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Thrown when a webhook must be rejected (missing headers, stale timestamp, bad signature),
 * so receivers can tell "answer 400" apart from bugs in their own handler.
 */
export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WebhookVerificationError";
    // Keeps `instanceof` working when compiled to targets older than ES2015 classes.
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

/**
 * Anything with a `get(name)` lookup, such as fetch's `Headers` (which is
 * case-insensitive). Declared structurally so that no DOM type leaks into the API.
 */
export interface HeaderGetter {
  get(name: string): string | null | undefined;
}

/**
 * The request headers, as whatever the receiver's framework hands over: a plain object
 * with header names in any case (Node's `IncomingHttpHeaders`, Express, Lambda, ...)
 * or a fetch-style `Headers` object (Fetch API, Next.js, Deno, Bun, Workers).
 */
export type WebhookHeaders = Record<string, string | string[] | undefined> | HeaderGetter;

/** Options of {@link Webhook}; kept as an object so that more can be added compatibly. */
export interface WebhookOptions {
  /** How far, in seconds, a message timestamp may lie from the local clock (default 300). */
  toleranceSeconds?: number;
}

/**
 * Verifies (and, for tests, signs) Standard Webhooks messages with an endpoint's secret.
 * Create one per secret and reuse it: the secret is decoded once, at construction.
 */
export class Webhook {
  readonly #key: Uint8Array;
  readonly #toleranceSeconds: number;

  /**
   * Takes the endpoint secret as shown by Octohooks (`whsec_` + base64; the prefix is
   * optional) or as raw key bytes, and fails fast on a malformed one rather than
   * rejecting every later webhook.
   */
  constructor(secret: string | Uint8Array, options?: WebhookOptions) {
    if (typeof secret === "string") {
      this.#key = decodeSecret(
        secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret,
      );
    } else if (secret instanceof Uint8Array) {
      this.#key = secret.slice();
    } else {
      throw new TypeError("Webhook secret must be a string or a Uint8Array");
    }
    if (this.#key.length === 0) {
      throw new Error("Webhook secret must not be empty");
    }

    const tolerance = options?.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
    if (!Number.isFinite(tolerance) || tolerance < 0) {
      throw new RangeError("toleranceSeconds must be a finite, non-negative number");
    }
    this.#toleranceSeconds = tolerance;
  }

  /**
   * Checks that `payload` was signed with this secret, recently, and returns the parsed
   * JSON body; throws {@link WebhookVerificationError} otherwise. Pass the raw body exactly
   * as received (string or bytes): re-serialised JSON will not match the signature.
   */
  verify(payload: string | Uint8Array, headers: WebhookHeaders): unknown {
    const msgId = readHeader(headers, "webhook-id");
    const msgTimestamp = readHeader(headers, "webhook-timestamp");
    const msgSignature = readHeader(headers, "webhook-signature");
    if (!msgId || !msgTimestamp || !msgSignature) {
      throw new WebhookVerificationError("Missing required headers");
    }

    const timestamp = this.#verifyTimestamp(msgTimestamp);
    const expected = this.#signature(msgId, timestamp, payload);

    for (const versioned of msgSignature.split(" ")) {
      const [version, signature] = versioned.split(",");
      if (version !== "v1" || signature === undefined) {
        continue;
      }
      const candidate = decodeBase64Strict(signature);
      if (candidate !== undefined && constantTimeEqual(candidate, expected)) {
        const text = typeof payload === "string" ? payload : utf8Decoder.decode(payload);
        // Like the reference implementation: an empty body verifies to `undefined`.
        return text === "" ? undefined : JSON.parse(text);
      }
    }
    throw new WebhookVerificationError("No matching signature found");
  }

  /**
   * Produces the `webhook-signature` header value (`v1,<base64>`) for a message, e.g. to
   * build fixtures when testing a receiver. `timestamp` is a Date or Unix seconds.
   */
  sign(msgId: string, timestamp: Date | number, payload: string | Uint8Array): string {
    const millis = timestamp instanceof Date ? timestamp.getTime() : timestamp * 1000;
    if (!Number.isFinite(millis)) {
      throw new RangeError("Webhook timestamp must be a valid date or a finite number of seconds");
    }
    return `v1,${encodeBase64(this.#signature(msgId, Math.floor(millis / 1000), payload))}`;
  }

  #signature(msgId: string, timestamp: number, payload: string | Uint8Array): Uint8Array {
    let content: Uint8Array;
    if (typeof payload === "string") {
      content = utf8Encoder.encode(`${msgId}.${timestamp}.${payload}`);
    } else if (!(payload instanceof Uint8Array)) {
      // Typically a body that a framework already parsed: its signature cannot be checked.
      throw new TypeError("Webhook payload must be the raw body, as a string or a Uint8Array");
    } else {
      const prefix = utf8Encoder.encode(`${msgId}.${timestamp}.`);
      content = new Uint8Array(prefix.length + payload.length);
      content.set(prefix);
      content.set(payload, prefix.length);
    }
    return hmacSha256(this.#key, content);
  }

  /** Returns the header's timestamp in Unix seconds, or throws if outside the tolerance. */
  #verifyTimestamp(header: string): number {
    const now = Math.floor(Date.now() / 1000);
    const timestamp = /^\d+$/.test(header) ? Number(header) : Number.NaN;
    if (Number.isNaN(timestamp) || now - timestamp > this.#toleranceSeconds) {
      throw new WebhookVerificationError("Message timestamp too old");
    }
    if (timestamp - now > this.#toleranceSeconds) {
      throw new WebhookVerificationError("Message timestamp too new");
    }
    return timestamp;
  }
}

/** Looks a header up by case-insensitive name; repeated signature headers are merged. */
function readHeader(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof headers.get === "function") {
    return (headers as HeaderGetter).get(name) ?? undefined;
  }
  const record = headers as Record<string, string | string[] | undefined>;
  for (const key of Object.keys(record)) {
    if (key.toLowerCase() !== name) {
      continue;
    }
    const value = record[key];
    if (typeof value === "string") {
      return value;
    }
    if (Array.isArray(value) && value.length > 0) {
      return name === "webhook-signature" ? value.join(" ") : value[0];
    }
  }
  return undefined;
}

function decodeSecret(base64: string): Uint8Array {
  // Tolerates missing padding, as the reference implementation does.
  const bytes = BASE64_CHARS.test(base64) ? decodeBase64(base64) : undefined;
  if (bytes === undefined) {
    throw new Error("Webhook secret must be base64, optionally prefixed with 'whsec_'");
  }
  return bytes;
}

/** Decodes canonical base64 only, so that one signature has exactly one accepted spelling. */
function decodeBase64Strict(base64: string): Uint8Array | undefined {
  if (base64.length % 4 !== 0 || !BASE64_CHARS.test(base64)) {
    return undefined;
  }
  const bytes = decodeBase64(base64);
  // Rejects non-zero trailing bits, which `atob` silently drops. This compares the
  // sender's own input with itself, so it leaks nothing about the expected signature.
  return bytes !== undefined && encodeBase64(bytes) === base64 ? bytes : undefined;
}

function decodeBase64(base64: string): Uint8Array | undefined {
  let binary: string;
  try {
    binary = host.atob(base64);
  } catch {
    return undefined;
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) {
    bytes[i] = binary.charCodeAt(i);
  }
  return bytes;
}

function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) {
    binary += String.fromCharCode(byte);
  }
  return host.btoa(binary);
}

/** Compares in time independent of where the inputs differ (the length is not secret). */
function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) {
    return false;
  }
  let diff = 0;
  for (const [i, byte] of a.entries()) {
    diff |= byte ^ (b[i] ?? 0);
  }
  return diff === 0;
}
