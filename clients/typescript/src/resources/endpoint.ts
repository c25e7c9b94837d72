import type { PostOptions, RequestOptions } from "../http.js";
import type {
  BackgroundTaskOut,
  ClientCertificateIn,
  ClientCertificateOut,
  EndpointIn,
  EndpointOut,
  EndpointPatch,
  EndpointSecretOut,
  EndpointSecretRotateIn,
  EndpointStatsOut,
  EndpointStatsWindow,
  EndpointUpdate,
  MessageOut,
  RecoverIn,
  SendExampleIn,
} from "../models.js";
import { allItems, type ListOptions, type ListResponse, toPage } from "../pagination.js";
import { listQuery, path, Resource, time } from "./resource.js";

/**
 * Endpoints: the URLs of an application that receive its messages, their secrets and client
 * certificates.
 */
export class Endpoint extends Resource {
  /** One page of the application's endpoints, oldest first. */
  async list(appId: string, options: ListOptions = {}): Promise<ListResponse<EndpointOut>> {
    const answer = await this.http.send({
      method: "GET",
      path: path("applications", appId, "endpoints"),
      query: listQuery(options),
      options,
    });
    return toPage(answer);
  }

  /** Every endpoint of the application, page after page. */
  listAll(appId: string, options: ListOptions = {}): AsyncGenerator<EndpointOut, void, undefined> {
    return allItems((page) => this.list(appId, page), options);
  }

  /** Creates an endpoint; a signing secret is generated unless one is given. */
  async create(appId: string, body: EndpointIn, options?: PostOptions): Promise<EndpointOut> {
    const answer = await this.http.send({
      method: "POST",
      path: path("applications", appId, "endpoints"),
      body,
      options,
    });
    return answer.body as EndpointOut;
  }

  /** The endpoint with this id or uid. */
  async get(appId: string, endpointId: string, options?: RequestOptions): Promise<EndpointOut> {
    const answer = await this.http.send({
      method: "GET",
      path: path("applications", appId, "endpoints", endpointId),
      options,
    });
    return answer.body as EndpointOut;
  }

  /** Changes the endpoint: `url` is required, fields left out keep their value. */
  async update(
    appId: string,
    endpointId: string,
    body: EndpointUpdate,
    options?: RequestOptions,
  ): Promise<EndpointOut> {
    const answer = await this.http.send({
      method: "PUT",
      path: path("applications", appId, "endpoints", endpointId),
      body,
      options,
    });
    return answer.body as EndpointOut;
  }

  /** Deletes the endpoint (its pending deliveries are dropped); answers what it was. */
  async delete(appId: string, endpointId: string, options?: RequestOptions): Promise<EndpointOut> {
    const answer = await this.http.send({
      method: "DELETE",
      path: path("applications", appId, "endpoints", endpointId),
      options,
    });
    return answer.body as EndpointOut;
  }

  /** The current signing secret (`whsec_…`), to verify webhooks with `Webhook`. */
  async getSecret(
    appId: string,
    endpointId: string,
    options?: RequestOptions,
  ): Promise<EndpointSecretOut> {
    const answer = await this.http.send({
      method: "GET",
      path: path("applications", appId, "endpoints", endpointId, "secret"),
      options,
    });
    return answer.body as EndpointSecretOut;
  }

  /** Makes a new secret current (generated unless given); the old one signs for 24 more hours. */
  async rotateSecret(
    appId: string,
    endpointId: string,
    body: EndpointSecretRotateIn = {},
    options?: PostOptions,
  ): Promise<void> {
    await this.http.send({
      method: "POST",
      path: path("applications", appId, "endpoints", endpointId, "secret", "rotate"),
      body,
      options,
    });
  }

  /**
   * The client certificate that deliveries to this endpoint present for mutual TLS (the PEM chain)
   * and its SHA-256 fingerprint; `404 not_found` when the endpoint has none. The key is never
   * answered.
   */
  async getClientCertificate(
    appId: string,
    endpointId: string,
    options?: RequestOptions,
  ): Promise<ClientCertificateOut> {
    const answer = await this.http.send({
      method: "GET",
      path: path("applications", appId, "endpoints", endpointId, "client-certificate"),
      options,
    });
    return answer.body as ClientCertificateOut;
  }

  /**
   * Sets the client certificate (PEM chain, the client's certificate first) and its private key
   * (PEM), replacing any earlier one; deliveries present it to receivers that ask for one. A
   * certificate or key that does not parse, or a key that is not the first certificate's, answers
   * `422 validation_error` naming the field, and nothing changes. The key is stored sealed and
   * never shown again.
   */
  async setClientCertificate(
    appId: string,
    endpointId: string,
    body: ClientCertificateIn,
    options?: RequestOptions,
  ): Promise<ClientCertificateOut> {
    const answer = await this.http.send({
      method: "PUT",
      path: path("applications", appId, "endpoints", endpointId, "client-certificate"),
      body,
      options,
    });
    return answer.body as ClientCertificateOut;
  }

  /** Removes the client certificate and its key: deliveries present none from now on. */
  async deleteClientCertificate(
    appId: string,
    endpointId: string,
    options?: RequestOptions,
  ): Promise<void> {
    await this.http.send({
      method: "DELETE",
      path: path("applications", appId, "endpoints", endpointId, "client-certificate"),
      options,
    });
  }

  /**
   * Sends the event type's example (`schemas["1"].examples[0]`) to this endpoint only, whatever
   * its filters, as a real message: stored, signed, retried and recorded like any other.
   */
  async sendExample(
    appId: string,
    endpointId: string,
    body: SendExampleIn,
    options?: PostOptions,
  ): Promise<MessageOut> {
    const answer = await this.http.send({
      method: "POST",
      path: path("applications", appId, "endpoints", endpointId, "send-example"),
      body,
      options,
    });
    return answer.body as MessageOut;
  }

  /**
   * Changes only the fields given (a JSON Merge Patch): `headers` merge key by key (a header set
   * to `null` is removed), `null` clears `rateLimit`, `uid`, the filters.
   */
  async patch(
    appId: string,
    endpointId: string,
    body: EndpointPatch,
    options?: RequestOptions,
  ): Promise<EndpointOut> {
    const answer = await this.http.send({
      method: "PATCH",
      path: path("applications", appId, "endpoints", endpointId),
      body,
      options,
    });
    return answer.body as EndpointOut;
  }

  /**
   * Resends every message created in the window whose delivery to this endpoint failed for good,
   * each once, as a manual attempt. Runs in the background: the answer is the task, `running`;
   * `backgroundTask.waitFor(task.id)` waits for its end. A disabled endpoint answers `409`.
   */
  async recover(
    appId: string,
    endpointId: string,
    body: RecoverIn,
    options?: PostOptions,
  ): Promise<BackgroundTaskOut> {
    return this.startTask(appId, endpointId, "recover", body, options);
  }

  /**
   * Sends this endpoint the messages created in the window that it never got (sent before it
   * existed or while it was disabled) and that its event type and channel filters take, each
   * once, with the usual retries. Runs in the background like `recover`; a disabled endpoint
   * answers `409`.
   */
  async replayMissing(
    appId: string,
    endpointId: string,
    body: RecoverIn,
    options?: PostOptions,
  ): Promise<BackgroundTaskOut> {
    return this.startTask(appId, endpointId, "replay-missing", body, options);
  }

  /**
   * Attempts to the endpoint in a window (successes, failures, the last of each), by default the
   * last 7 days, rounded out to whole hours; and the deliveries that wait now (`pending` for a
   * later attempt, `inFlight` due or being sent).
   */
  async stats(
    appId: string,
    endpointId: string,
    window: EndpointStatsWindow = {},
    options?: RequestOptions,
  ): Promise<EndpointStatsOut> {
    const answer = await this.http.send({
      method: "GET",
      path: path("applications", appId, "endpoints", endpointId, "stats"),
      query: { since: time(window.since), until: time(window.until) },
      options,
    });
    return answer.body as EndpointStatsOut;
  }

  private async startTask(
    appId: string,
    endpointId: string,
    route: "recover" | "replay-missing",
    body: RecoverIn,
    options: PostOptions | undefined,
  ): Promise<BackgroundTaskOut> {
    const answer = await this.http.send({
      method: "POST",
      path: path("applications", appId, "endpoints", endpointId, route),
      body: { since: time(body.since), until: time(body.until) },
      options,
    });
    return answer.body as BackgroundTaskOut;
  }
}
