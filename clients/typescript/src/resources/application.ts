import type { PostOptions, RequestOptions } from "../http.js";
import type {
  ApplicationFilters,
  ApplicationIn,
  ApplicationOut,
  ApplicationPatch,
} from "../models.js";
import { allItems, type ListOptions, type ListResponse, toPage } from "../pagination.js";
import { listQuery, path, Resource } from "./resource.js";

/** Options of `application.list`: paging, and `search` in names and uids. */
export type ApplicationListOptions = ListOptions & ApplicationFilters;

/** Applications: one per customer of yours, addressed by id or by your own uid. */
export class Application extends Resource {
  /** One page of the environment's applications, oldest first. */
  async list(options: ApplicationListOptions = {}): Promise<ListResponse<ApplicationOut>> {
    const answer = await this.http.send({
      method: "GET",
      path: path("applications"),
      query: listQuery(options, { search: options.search }),
      options,
    });
    return toPage(answer);
  }

  /** Every application, page after page: `for await (const app of application.listAll())`. */
  listAll(options: ApplicationListOptions = {}): AsyncGenerator<ApplicationOut, void, undefined> {
    return allItems((page) => this.list(page), options);
  }

  /** Creates an application. */
  async create(body: ApplicationIn, options?: PostOptions): Promise<ApplicationOut> {
    const answer = await this.http.send({
      method: "POST",
      path: path("applications"),
      body,
      options,
    });
    return answer.body as ApplicationOut;
  }

  /** The application with this id or uid. */
  async get(appId: string, options?: RequestOptions): Promise<ApplicationOut> {
    const answer = await this.http.send({
      method: "GET",
      path: path("applications", appId),
      options,
    });
    return answer.body as ApplicationOut;
  }

  /** Renames the application (a uid left out is kept). */
  async update(
    appId: string,
    body: ApplicationIn,
    options?: RequestOptions,
  ): Promise<ApplicationOut> {
    const answer = await this.http.send({
      method: "PUT",
      path: path("applications", appId),
      body,
      options,
    });
    return answer.body as ApplicationOut;
  }

  /** Deletes the application with its endpoints, messages and attempts; answers what it was. */
  async delete(appId: string, options?: RequestOptions): Promise<ApplicationOut> {
    const answer = await this.http.send({
      method: "DELETE",
      path: path("applications", appId),
      options,
    });
    return answer.body as ApplicationOut;
  }

  /**
   * Changes only the fields given (a JSON Merge Patch): `{ uid: null }` removes the uid, a name
   * left out is kept.
   */
  async patch(
    appId: string,
    body: ApplicationPatch,
    options?: RequestOptions,
  ): Promise<ApplicationOut> {
    const answer = await this.http.send({
      method: "PATCH",
      path: path("applications", appId),
      body,
      options,
    });
    return answer.body as ApplicationOut;
  }
}
