import type { PostOptions, RequestOptions } from "../http.js";
import type {
  EventTypeImportOpenApiIn,
  EventTypeImportOpenApiOut,
  EventTypeIn,
  EventTypeOut,
  EventTypePatch,
  EventTypeUpdate,
} from "../models.js";
import { allItems, type ListOptions, type ListResponse, toPage } from "../pagination.js";
import { listQuery, path, Resource } from "./resource.js";

/** Event types: the catalog of the kinds of message you send, addressed by name. */
export class EventType extends Resource {
  /** One page of the catalog, by name. */
  async list(options: ListOptions = {}): Promise<ListResponse<EventTypeOut>> {
    const answer = await this.http.send({
      method: "GET",
      path: path("event-types"),
      query: listQuery(options),
      options,
    });
    return toPage(answer);
  }

  /** Every event type, page after page. */
  listAll(options: ListOptions = {}): AsyncGenerator<EventTypeOut, void, undefined> {
    return allItems((page) => this.list(page), options);
  }

  /** Adds an event type to the catalog. */
  async create(body: EventTypeIn, options?: PostOptions): Promise<EventTypeOut> {
    const answer = await this.http.send({
      method: "POST",
      path: path("event-types"),
      body,
      options,
    });
    return answer.body as EventTypeOut;
  }

  /** The event type with this name. */
  async get(name: string, options?: RequestOptions): Promise<EventTypeOut> {
    const answer = await this.http.send({
      method: "GET",
      path: path("event-types", name),
      options,
    });
    return answer.body as EventTypeOut;
  }

  /**
   * Changes an event type: fields left out keep their value, `null` clears `groupName` or
   * `schemas`. Setting `schemaValidation: "enforce"` makes the API refuse messages of this type
   * whose payload does not match the latest schema.
   */
  async update(
    name: string,
    body: EventTypeUpdate,
    options?: RequestOptions,
  ): Promise<EventTypeOut> {
    const answer = await this.http.send({
      method: "PUT",
      path: path("event-types", name),
      body,
      options,
    });
    return answer.body as EventTypeOut;
  }

  /** Removes the event type from the catalog; answers what it was. */
  async delete(name: string, options?: RequestOptions): Promise<EventTypeOut> {
    const answer = await this.http.send({
      method: "DELETE",
      path: path("event-types", name),
      options,
    });
    return answer.body as EventTypeOut;
  }

  /**
   * Creates or updates event types from the `webhooks` of an OpenAPI 3.1 document (`spec`, or
   * `specRaw` as JSON text): name, description, the body's schema as version 1 and its example.
   * All or nothing.
   */
  async importOpenApi(
    body: EventTypeImportOpenApiIn,
    options?: PostOptions,
  ): Promise<EventTypeImportOpenApiOut> {
    const answer = await this.http.send({
      method: "POST",
      path: path("event-types", "import-openapi"),
      body,
      options,
    });
    return answer.body as EventTypeImportOpenApiOut;
  }

  /**
   * Changes only the fields given (a JSON Merge Patch): `schemas` merge by version
   * (`{ "2": {…} }` adds version 2, `{ "1": null }` removes version 1), `null` clears.
   */
  async patch(name: string, body: EventTypePatch, options?: RequestOptions): Promise<EventTypeOut> {
    const answer = await this.http.send({
      method: "PATCH",
      path: path("event-types", name),
      body,
      options,
    });
    return answer.body as EventTypeOut;
  }
}
