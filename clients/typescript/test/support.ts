// What the server-backed tests share: the running API they were pointed at (by the Rust test
// harness, which starts the real API and dispatcher), webhook receivers and a fault-injecting
// proxy, all real HTTP servers on 127.0.0.1.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Octohooks, type OctohooksOptions } from "../src/index.js";

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: these tests run against a live API, started by ` +
        "`cargo test -p octohooks-tests --test sdk_typescript` (part of `make test`)",
    );
  }
  return value;
}

/** The API under test. */
export const serverUrl = required("OCTOHOOKS_SERVER_URL");
/** An API key of the test environment. */
export const apiKey = required("OCTOHOOKS_TEST_API_KEY");
/** The admin token of the API under test. */
export const adminToken = required("OCTOHOOKS_TEST_ADMIN_TOKEN");

/** A client of the test environment. */
export function client(options: OctohooksOptions = {}): Octohooks {
  return new Octohooks(apiKey, { serverUrl, ...options });
}

/** A uid no other test uses. */
export function uniqueUid(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** Polls `check` every 50 ms for up to `ms`; returns its last value. */
export async function eventually<T>(check: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not true within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    });
  });
}

function close(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function readBody(req: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** One webhook as a receiver got it. */
export interface ReceivedWebhook {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A running webhook receiver; set `status` to change what it answers from now on. */
export interface Receiver {
  url: string;
  received: ReceivedWebhook[];
  status: number;
  close: () => Promise<void>;
}

/** A webhook receiver that records every request and answers 204 (or its `status`). */
export async function startReceiver(): Promise<Receiver> {
  const received: ReceivedWebhook[] = [];
  const server = createServer(async (req, res) => {
    const body = (await readBody(req)).toString("utf8");
    received.push({ path: req.url ?? "", headers: req.headers, body });
    res.writeHead(receiver.status).end();
  });
  const receiver: Receiver = { url: "", received, status: 204, close: () => close(server) };
  receiver.url = await listen(server);
  return receiver;
}

/** What the proxy does with one request. */
export type Fault =
  /** Forward it to the API. */
  | "pass"
  /** Close the connection without an answer. */
  | "drop"
  /** Answer this without forwarding; with `forward`, forward first and throw the answer away. */
  | { status: number; headers?: Record<string, string>; body?: unknown; forward?: boolean }
  /** Forward it after this long. */
  | { delayMs: number };

/** A request as the proxy saw it. */
export interface ProxiedRequest {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
  at: number;
}

/**
 * A proxy in front of the API that applies one scripted fault per request, in order, then
 * passes everything through; it records every request it got.
 */
export async function startFaultProxy(faults: Fault[]): Promise<{
  url: string;
  requests: ProxiedRequest[];
  close: () => Promise<void>;
}> {
  const requests: ProxiedRequest[] = [];
  const script = [...faults];
  const server = createServer(async (req, res) => {
    const body = await readBody(req);
    const key = req.headers["idempotency-key"];
    requests.push({
      method: req.method ?? "",
      path: req.url ?? "",
      idempotencyKey: Array.isArray(key) ? key[0] : key,
      at: Date.now(),
    });
    const fault = script.shift() ?? "pass";
    const forward = async () => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (typeof value === "string" && !["host", "connection", "content-length"].includes(name))
          headers[name] = value;
      }
      return fetch(`${serverUrl}${req.url}`, {
        method: req.method ?? "GET",
        headers,
        body: body.length > 0 ? body.toString("utf8") : undefined,
      });
    };
    try {
      if (fault === "drop") {
        req.socket.destroy();
        return;
      }
      if (fault !== "pass" && "delayMs" in fault) {
        await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
      } else if (fault !== "pass") {
        if (fault.forward) await (await forward()).arrayBuffer();
        res.writeHead(fault.status, { "content-type": "application/json", ...fault.headers });
        res.end(fault.body === undefined ? "" : JSON.stringify(fault.body));
        return;
      }
      if (res.destroyed) return;
      const answer = await forward();
      const headers: Record<string, string> = {};
      answer.headers.forEach((value, name) => {
        if (!["content-length", "transfer-encoding", "connection"].includes(name))
          headers[name] = value;
      });
      const text = Buffer.from(await answer.arrayBuffer());
      if (res.destroyed) return;
      res.writeHead(answer.status, headers).end(text);
    } catch {
      res.destroy();
    }
  });
  const url = await listen(server);
  return { url, requests, close: () => close(server) };
}
