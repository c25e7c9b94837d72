import type { PostOptions, RequestOptions } from "../http.js";
import type { MessageAttemptOut, MessageDestinationOut, ResendOut } from "../models.js";
import { allItems, type ListOptions, type ListResponse, toPage } from "../pagination.js";
import { listQuery, path, Resource } from "./resource.js";

/** Attempts: every delivery attempt of a message, where each delivery stands, and resends. */
export class MessageAttempt extends Resource {
  /** One page of the message's attempts, newest first. */
  async listByMessage(
    appId: string,
    msgId: string,
    options: ListOptions = {},
  ): Promise<ListResponse<MessageAttemptOut>> {
    const answer = await this.http.send({
      method: "GET",
      path: path("applications", appId, "messages", msgId, "attempts"),
      query: listQuery(options),
      options,
    });
    return toPage(answer);
  }

  /** Every attempt of the message, page after page. */
  listAllByMessage(
    appId: string,
    msgId: string,
    options: ListOptions = {},
  ): AsyncGenerator<MessageAttemptOut, void, undefined> {
    return allItems((page) => this.listByMessage(appId, msgId, page), options);
  }

  /** One page of the attempts made to an endpoint, across messages, newest first. */
  async listByEndpoint(
    appId: string,
    endpointId: string,
    options: ListOptions = {},
  ): Promise<ListResponse<MessageAttemptOut>> {
    const answer = await this.http.send({
      method: "GET",
      path: path("applications", appId, "endpoints", endpointId, "attempts"),
      query: listQuery(options),
      options,
    });
    return toPage(answer);
  }

  /** Every attempt made to the endpoint, page after page. */
  listAllByEndpoint(
    appId: string,
    endpointId: string,
    options: ListOptions = {},
  ): AsyncGenerator<MessageAttemptOut, void, undefined> {
    return allItems((page) => this.listByEndpoint(appId, endpointId, page), options);
  }

  /** One attempt of the message. */
  async get(
    appId: string,
    msgId: string,
    attemptId: string,
    options?: RequestOptions,
  ): Promise<MessageAttemptOut> {
    const answer = await this.http.send({
      method: "GET",
      path: path("applications", appId, "messages", msgId, "attempts", attemptId),
      options,
    });
    return answer.body as MessageAttemptOut;
  }

  /**
   * Sends the message to the endpoint once more, now; that attempt is not retried. A message
   * whose payload was expunged throws `ApiError` `409 message_expunged`: nothing is left to send.
   */
  async resend(
    appId: string,
    msgId: string,
    endpointId: string,
    options?: PostOptions,
  ): Promise<ResendOut> {
    const answer = await this.http.send({
      method: "POST",
      path: path("applications", appId, "messages", msgId, "endpoints", endpointId, "resend"),
      options,
    });
    return answer.body as ResendOut;
  }

  /** One page of where the message's delivery stands per endpoint, by endpoint id. */
  async listDestinations(
    appId: string,
    msgId: string,
    options: ListOptions = {},
  ): Promise<ListResponse<MessageDestinationOut>> {
    const answer = await this.http.send({
      method: "GET",
      path: path("applications", appId, "messages", msgId, "endpoints"),
      query: listQuery(options),
      options,
    });
    return toPage(answer);
  }

  /** Every destination of the message, page after page. */
  listAllDestinations(
    appId: string,
    msgId: string,
    options: ListOptions = {},
  ): AsyncGenerator<MessageDestinationOut, void, undefined> {
    return allItems((page) => this.listDestinations(appId, msgId, page), options);
  }
}
