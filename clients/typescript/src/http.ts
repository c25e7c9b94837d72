// The one place that talks HTTP: authentication, JSON, per-attempt timeouts, retries with
// backoff, and idempotency keys on every POST so that retrying never does a thing twice.
import { ApiError, ConnectionError } from "./errors.js";

/** The parts of a `fetch` response the client reads; the global `Response` satisfies it. */
export interface FetchResponse {
  readonly status: number;
  readonly headers: {
    get(name: string): string | null;
    forEach(cb: (value: string, key: string) => void): void;
  };
  text(): Promise<string>;
}

/** What the client passes to `fetch`; any standard `fetch` accepts it. */
export interface FetchInit {
  method: string;
  headers: Record<string, string>;
  body?: string;
  signal?: unknown;
}

/** A `fetch` implementation: the global one by default, or one you inject. */
export type Fetch = (url: string, init: FetchInit) => Promise<FetchResponse>;

/** An `AbortSignal` (structurally, so that no DOM types are needed to use the client). */
export interface AbortSignalLike {
  readonly aborted: boolean;
  addEventListener(type: "abort", listener: () => void): void;
  removeEventListener(type: "abort", listener: () => void): void;
}

/** Options of one call. */
export interface RequestOptions {
  /** Cancels the call (and its retries). */
  signal?: AbortSignalLike;
  /** Overrides the client's `timeoutMs` for this call. */
  timeoutMs?: number;
  /** Overrides the client's `retries` for this call. */
  retries?: number;
}

/** Options of a POST: an idempotency key is generated when none is given. */
export interface PostOptions extends RequestOptions {
  /** Replays the first successful answer for this key for 48 hours (1 to 256 ASCII characters). */
  idempotencyKey?: string;
}

/** Settings of the HTTP core, resolved by the client. */
export interface HttpSettings {
  token: string;
  serverUrl: string;
  timeoutMs: number;
  retries: number;
  fetch: Fetch;
}

/** A request as the resources describe it. */
export interface HttpRequest {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  options?: PostOptions;
  /** Keep a successful answer's body as the text it is, not parsed. */
  rawBody?: boolean;
}

/** An answer as the resources read it. */
export interface HttpAnswer {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

const RETRIED_STATUSES = new Set([429, 502, 503, 504]);
const BACKOFF_BASE_MS = 200;
const BACKOFF_MAX_MS = 8_000;
const RETRY_AFTER_MAX_MS = 60_000;

/** Sends requests for every resource of one client. */
export class HttpClient {
  constructor(private readonly settings: HttpSettings) {}

  /** Sends `request`, retrying what is safe to retry, and returns the answer or throws. */
  async send(request: HttpRequest): Promise<HttpAnswer> {
    const options = request.options ?? {};
    const retries = options.retries ?? this.settings.retries;
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.settings.token}`,
      accept: "application/json",
    };
    if (request.body !== undefined) headers["content-type"] = "application/json";
    if (request.method === "POST") {
      headers["idempotency-key"] = options.idempotencyKey ?? newIdempotencyKey();
    }
    const url = this.url(request.path, request.query);
    const body = request.body === undefined ? undefined : JSON.stringify(request.body);
    for (let attempt = 0; ; attempt++) {
      let answer: HttpAnswer;
      try {
        answer = await this.once(
          url,
          { method: request.method, headers, body },
          options,
          request.rawBody ?? false,
        );
      } catch (error) {
        if (error instanceof ConnectionError && attempt < retries && !options.signal?.aborted) {
          await sleep(backoff(attempt), options.signal);
          continue;
        }
        throw error;
      }
      if (answer.status < 400) return answer;
      if (attempt < retries && isRetried(answer)) {
        await sleep(retryAfter(answer.headers["retry-after"]) ?? backoff(attempt), options.signal);
        continue;
      }
      throw new ApiError(answer.status, answer.body, answer.headers);
    }
  }

  private url(path: string, query: HttpRequest["query"]): string {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined) search.append(name, String(value));
    }
    const text = search.toString();
    return `${this.settings.serverUrl}${path}${text ? `?${text}` : ""}`;
  }

  private async once(
    url: string,
    init: FetchInit,
    options: RequestOptions,
    rawBody: boolean,
  ): Promise<HttpAnswer> {
    const timeoutMs = options.timeoutMs ?? this.settings.timeoutMs;
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    options.signal?.addEventListener("abort", onAbort);
    if (options.signal?.aborted) controller.abort();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const response = await this.settings.fetch(url, { ...init, signal: controller.signal });
      const text = await response.text();
      const headers: Record<string, string> = {};
      response.headers.forEach((value, key) => {
        headers[key.toLowerCase()] = value;
      });
      const raw = rawBody && response.status < 400;
      return { status: response.status, body: raw ? text : parseBody(text), headers };
    } catch (error) {
      if (options.signal?.aborted) throw error;
      const timedOut = controller.signal.aborted;
      const reason = timedOut ? `timed out after ${timeoutMs} ms` : "connection failed";
      throw new ConnectionError(`${init.method} ${url}: ${reason}`, timedOut, error);
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    }
  }
}

function isRetried(answer: HttpAnswer): boolean {
  if (RETRIED_STATUSES.has(answer.status)) return true;
  const code = (answer.body as { code?: unknown } | null)?.code;
  return answer.status === 409 && code === "idempotency_in_progress";
}

function parseBody(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Exponential backoff with jitter: half fixed, half random, so that clients spread out. */
function backoff(attempt: number): number {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** `Retry-After` in milliseconds (seconds or an HTTP date), capped; undefined when absent. */
function retryAfter(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  return Number.isNaN(ms) ? undefined : Math.min(Math.max(ms, 0), RETRY_AFTER_MAX_MS);
}

/** Waits `ms`, or less when `signal` aborts first; never rejects. */
export function sleep(ms: number, signal?: AbortSignalLike): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
  });
}

/** A random UUID v4; `crypto.randomUUID` where it exists (browsers, Node 19+). */
export function newIdempotencyKey(): string {
  const crypto = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (crypto?.randomUUID) return crypto.randomUUID();
  const hex = Array.from({ length: 32 }, () => Math.floor(Math.random() * 16).toString(16));
  hex[12] = "4";
  hex[16] = ((Number.parseInt(hex[16] ?? "0", 16) & 0x3) | 0x8).toString(16);
  const text = hex.join("");
  return `${text.slice(0, 8)}-${text.slice(8, 12)}-${text.slice(12, 16)}-${text.slice(16, 20)}-${text.slice(20)}`;
}
