import type { PostOptions, RequestOptions } from "../http.js";
import type {
  EndpointOut,
  EndpointSecretOut,
  EndpointSecretRotateIn,
  MessageAttemptOut,
  OperationalWebhookEndpointIn,
  OperationalWebhookEndpointPatch,
  OperationalWebhookEndpointUpdate,
} from "../models.js";
import { allItems, type ListOptions, type ListResponse, toPage } from "../pagination.js";
import { listQuery, path, Resource } from "./resource.js";

/**
 * Operational webhooks: the environment's own endpoints, where Octohooks tells you (not your
 * customers) when customers' endpoints are created, changed, enabled, disabled or deleted, and
 * when deliveries keep failing (`OperationalEvent`). They are signed like every webhook, so
 * `Webhook` verifies them with the secret of `getSecret`. API key only: a portal token is refused.
 */
export class OperationalWebhookEndpoint extends Resource {
  /** One page of the environment's operational endpoints, oldest first. */
  async list(options: ListOptions = {}): Promise<ListResponse<EndpointOut>> {
    const answer = await this.http.send({
      method: "GET",
      path: path("operational-webhooks", "endpoints"),
      query: listQuery(options),
      options,
    });
    return toPage(answer);
  }

  /** Every operational endpoint, page after page. */
  listAll(options: ListOptions = {}): AsyncGenerator<EndpointOut, void, undefined> {
    return allItems((page) => this.list(page), options);
  }

  /**
   * Creates an operational endpoint; a signing secret is generated unless one is given. An
   * `eventTypes` filter that names anything but operational event types, or any `channels`,
   * answers `422 validation_error` naming the field, and nothing is created.
   */
  async create(body: OperationalWebhookEndpointIn, options?: PostOptions): Promise<EndpointOut> {
    const answer = await this.http.send({
      method: "POST",
      path: path("operational-webhooks", "endpoints"),
      body,
      options,
    });
    return answer.body as EndpointOut;
  }

  /** The operational endpoint with this id or uid. */
  async get(endpointId: string, options?: RequestOptions): Promise<EndpointOut> {
    const answer = await this.http.send({
      method: "GET",
      path: path("operational-webhooks", "endpoints", endpointId),
      options,
    });
    return answer.body as EndpointOut;
  }

  /** Changes the operational endpoint: `url` is required, fields left out keep their value. */
  async update(
    endpointId: string,
    body: OperationalWebhookEndpointUpdate,
    options?: RequestOptions,
  ): Promise<EndpointOut> {
    const answer = await this.http.send({
      method: "PUT",
      path: path("operational-webhooks", "endpoints", endpointId),
      body,
      options,
    });
    return answer.body as EndpointOut;
  }

  /**
   * Changes only the fields given (a JSON Merge Patch): `headers` merge key by key (a header set
   * to `null` is removed), `null` clears `rateLimit`, `uid`, the event type filter.
   */
  async patch(
    endpointId: string,
    body: OperationalWebhookEndpointPatch,
    options?: RequestOptions,
  ): Promise<EndpointOut> {
    const answer = await this.http.send({
      method: "PATCH",
      path: path("operational-webhooks", "endpoints", endpointId),
      body,
      options,
    });
    return answer.body as EndpointOut;
  }

  /** Deletes the operational endpoint (events waiting for it are dropped); answers what it was. */
  async delete(endpointId: string, options?: RequestOptions): Promise<EndpointOut> {
    const answer = await this.http.send({
      method: "DELETE",
      path: path("operational-webhooks", "endpoints", endpointId),
      options,
    });
    return answer.body as EndpointOut;
  }

  /** The current signing secret (`whsec_…`), to verify operational webhooks with `Webhook`. */
  async getSecret(endpointId: string, options?: RequestOptions): Promise<EndpointSecretOut> {
    const answer = await this.http.send({
      method: "GET",
      path: path("operational-webhooks", "endpoints", endpointId, "secret"),
      options,
    });
    return answer.body as EndpointSecretOut;
  }

  /** Makes a new secret current (generated unless given); the old one signs for 24 more hours. */
  async rotateSecret(
    endpointId: string,
    body: EndpointSecretRotateIn = {},
    options?: PostOptions,
  ): Promise<void> {
    await this.http.send({
      method: "POST",
      path: path("operational-webhooks", "endpoints", endpointId, "secret", "rotate"),
      body,
      options,
    });
  }

  /**
   * One page of the attempts to deliver operational events to the endpoint, newest first: how
   * its receiver answered. `messageId` is the event's `webhook-id`.
   */
  async listAttempts(
    endpointId: string,
    options: ListOptions = {},
  ): Promise<ListResponse<MessageAttemptOut>> {
    const answer = await this.http.send({
      method: "GET",
      path: path("operational-webhooks", "endpoints", endpointId, "attempts"),
      query: listQuery(options),
      options,
    });
    return toPage(answer);
  }

  /** Every attempt to deliver operational events to the endpoint, page after page. */
  listAllAttempts(
    endpointId: string,
    options: ListOptions = {},
  ): AsyncGenerator<MessageAttemptOut, void, undefined> {
    return allItems((page) => this.listAttempts(endpointId, page), options);
  }
}
