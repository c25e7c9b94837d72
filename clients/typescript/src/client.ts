// The client: one object per token, with the API's resources as properties.
import { type Fetch, HttpClient } from "./http.js";
import { Application } from "./resources/application.js";
import { BackgroundTask } from "./resources/backgroundTask.js";
import { Endpoint } from "./resources/endpoint.js";
import { Environment } from "./resources/environment.js";
import { EventType } from "./resources/eventType.js";
import { Message } from "./resources/message.js";
import { MessageAttempt } from "./resources/messageAttempt.js";
import { OperationalWebhookEndpoint } from "./resources/operationalWebhookEndpoint.js";
import { PortalAccess } from "./resources/portalAccess.js";

/** Where the client finds the API when `serverUrl` is not given and no variable names one. */
export const DEFAULT_SERVER_URL = "http://127.0.0.1:8080";

/** Options of `new Octohooks(token, options)`. */
export interface OctohooksOptions {
  /**
   * Base URL of the API. Default: `OCTOHOOKS_SERVER_URL` from the environment when running in
   * Node, else `http://127.0.0.1:8080`.
   */
  serverUrl?: string;
  /** How long one attempt of a call may take, in milliseconds (default 30 000). */
  timeoutMs?: number;
  /**
   * How many times a call is retried after a network error, a timeout, `429`, `502`, `503`,
   * `504` or `409 idempotency_in_progress` (default 3). Other errors are never retried.
   */
  retries?: number;
  /** A `fetch` to use instead of the global one (for proxies, tests, or older runtimes). */
  fetch?: Fetch;
}

/**
 * The Octohooks API. Made with an environment's API key for everything but environments, with
 * the admin token for `environment`, or with a portal token for one application's endpoints,
 * messages and attempts.
 *
 * ```ts
 * const octohooks = new Octohooks("AUTH_TOKEN");
 * const app = await octohooks.application.create({ name: "Acme", uid: "acme" });
 * ```
 */
export class Octohooks {
  /** Applications: one per customer of yours. */
  readonly application: Application;
  /** Endpoints of an application, their signing secrets, statistics and recovery. */
  readonly endpoint: Endpoint;
  /** Messages sent to an application. */
  readonly message: Message;
  /** Delivery attempts, per-endpoint delivery status, resends. */
  readonly messageAttempt: MessageAttempt;
  /** The event type catalog. */
  readonly eventType: EventType;
  /** Environments and API keys (admin token only). */
  readonly environment: Environment;
  /** Consumer portal links of an application. */
  readonly portalAccess: PortalAccess;
  /** Background tasks (`endpoint.recover`, `endpoint.replayMissing`) and how far they got. */
  readonly backgroundTask: BackgroundTask;
  /**
   * The environment's own endpoints for operational webhooks: told when customers' endpoints
   * change or their deliveries keep failing (see `OperationalEvent`).
   */
  readonly operationalWebhookEndpoint: OperationalWebhookEndpoint;

  constructor(token: string, options: OctohooksOptions = {}) {
    if (typeof token !== "string" || token === "") {
      throw new TypeError("Octohooks: a token (an API key or the admin token) is required");
    }
    const fetch = options.fetch ?? globalFetch();
    const http = new HttpClient({
      token,
      serverUrl: (options.serverUrl ?? environmentServerUrl() ?? DEFAULT_SERVER_URL).replace(
        /\/+$/,
        "",
      ),
      timeoutMs: options.timeoutMs ?? 30_000,
      retries: Math.max(0, options.retries ?? 3),
      fetch,
    });
    this.application = new Application(http);
    this.endpoint = new Endpoint(http);
    this.message = new Message(http);
    this.messageAttempt = new MessageAttempt(http);
    this.eventType = new EventType(http);
    this.environment = new Environment(http);
    this.portalAccess = new PortalAccess(http);
    this.backgroundTask = new BackgroundTask(http);
    this.operationalWebhookEndpoint = new OperationalWebhookEndpoint(http);
  }
}

function environmentServerUrl(): string | undefined {
  const process = (globalThis as { process?: { env?: Record<string, string | undefined> } })
    .process;
  return process?.env?.OCTOHOOKS_SERVER_URL || undefined;
}

function globalFetch(): Fetch {
  const fetch = (globalThis as { fetch?: Fetch }).fetch;
  if (typeof fetch !== "function") {
    throw new TypeError("Octohooks: no global fetch; pass one as the `fetch` option");
  }
  return (url, init) => fetch(url, init);
}
