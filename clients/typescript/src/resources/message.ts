import type { PostOptions, RequestOptions } from "../http.js";
import type { MessageFilters, MessageIn, MessageOut } from "../models.js";
import { allItems, type ListOptions, type ListResponse, toPage } from "../pagination.js";
import { listQuery, path, Resource, time } from "./resource.js";

/** Options of `message.list`: paging and filters. */
export type MessageListOptions = ListOptions & MessageFilters;

/** Messages: the webhooks you send, fanned out to every matching endpoint of an application. */
export class Message extends Resource {
  /** One page of the application's messages, newest first, filtered. */
  async list(appId: string, options: MessageListOptions = {}): Promise<ListResponse<MessageOut>> {
    const answer = await this.http.send({
      method: "GET",
      path: path("applications", appId, "messages"),
      query: listQuery(options, {
        eventType:
          typeof options.eventType === "string" ? options.eventType : options.eventType?.join(","),
        channel: options.channel,
        before: time(options.before),
        after: time(options.after),
        status: options.status,
        withContent: options.withContent === undefined ? undefined : String(options.withContent),
      }),
      options,
    });
    return toPage(answer);
  }

  /** Every message of the application that matches the filters, page after page. */
  listAll(
    appId: string,
    options: MessageListOptions = {},
  ): AsyncGenerator<MessageOut, void, undefined> {
    return allItems((page) => this.list(appId, page), options);
  }

  /**
   * Sends a message to every endpoint of the application that it matches (answered `202`).
   * With `payloadRetentionPeriod` (days, 1 to 3650) its payload is expunged that many days
   * after it was sent (once no delivery of it is pending), sooner than the server's retention.
   */
  async create(appId: string, body: MessageIn, options?: PostOptions): Promise<MessageOut> {
    const answer = await this.http.send({
      method: "POST",
      path: path("applications", appId, "messages"),
      body: body.deliverAt instanceof Date ? { ...body, deliverAt: time(body.deliverAt) } : body,
      options,
    });
    return answer.body as MessageOut;
  }

  /**
   * The message's payload as the JSON text it was sent as, byte for byte (what receivers get
   * and signatures cover); `get` parses it, which may change spacing and large numbers.
   */
  async getPayload(appId: string, msgId: string, options?: RequestOptions): Promise<string> {
    const answer = await this.http.send({
      method: "GET",
      path: path("applications", appId, "messages", msgId, "payload"),
      options,
      rawBody: true,
    });
    return answer.body as string;
  }

  /** The message with this id or uid. */
  async get(appId: string, msgId: string, options?: RequestOptions): Promise<MessageOut> {
    const answer = await this.http.send({
      method: "GET",
      path: path("applications", appId, "messages", msgId),
      options,
    });
    return answer.body as MessageOut;
  }

  /**
   * Removes the message's payload now, for good (answered `204`): the message then reads
   * `payload: {}` and `expunged: true`. Its destinations and attempts are kept; deliveries of it
   * still waiting are marked `failed`, and `messageAttempt.resend` throws `ApiError`
   * `409 message_expunged` from then on. API keys only (a portal token gets `403`).
   */
  async expungeContent(appId: string, msgId: string, options?: RequestOptions): Promise<void> {
    await this.http.send({
      method: "DELETE",
      path: path("applications", appId, "messages", msgId, "content"),
      options,
    });
  }
}
