import type { PostOptions, RequestOptions } from "../http.js";
import type { ApiKeyInfoOut, ApiKeyOut, EnvironmentIn, EnvironmentOut } from "../models.js";
import { allItems, type ListOptions, type ListResponse, toPage } from "../pagination.js";
import { listQuery, path, Resource } from "./resource.js";

/** Environments and their API keys: the admin routes, for a client made with the admin token. */
export class Environment extends Resource {
  /** One page of the environments, oldest first. */
  async list(options: ListOptions = {}): Promise<ListResponse<EnvironmentOut>> {
    const answer = await this.http.send({
      method: "GET",
      path: path("environments"),
      query: listQuery(options),
      options,
    });
    return toPage(answer);
  }

  /** Every environment, page after page. */
  listAll(options: ListOptions = {}): AsyncGenerator<EnvironmentOut, void, undefined> {
    return allItems((page) => this.list(page), options);
  }

  /** Creates an environment; its first API key is in `apiKey`, shown only here. */
  async create(body: EnvironmentIn, options?: PostOptions): Promise<EnvironmentOut> {
    const answer = await this.http.send({
      method: "POST",
      path: path("environments"),
      body,
      options,
    });
    return answer.body as EnvironmentOut;
  }

  /** Deletes the environment with its keys and all its data; answers what it was. */
  async delete(envId: string, options?: RequestOptions): Promise<EnvironmentOut> {
    const answer = await this.http.send({
      method: "DELETE",
      path: path("environments", envId),
      options,
    });
    return answer.body as EnvironmentOut;
  }

  /** Adds an API key to the environment; the key is in `apiKey`, shown only here. */
  async createApiKey(envId: string, options?: PostOptions): Promise<ApiKeyOut> {
    const answer = await this.http.send({
      method: "POST",
      path: path("environments", envId, "api-keys"),
      options,
    });
    return answer.body as ApiKeyOut;
  }

  /** One page of the environment's API keys, oldest first: prefixes and last use, never keys. */
  async listApiKeys(
    envId: string,
    options: ListOptions = {},
  ): Promise<ListResponse<ApiKeyInfoOut>> {
    const answer = await this.http.send({
      method: "GET",
      path: path("environments", envId, "api-keys"),
      query: listQuery(options),
      options,
    });
    return toPage(answer);
  }

  /** Every API key of the environment, page after page. */
  listAllApiKeys(
    envId: string,
    options: ListOptions = {},
  ): AsyncGenerator<ApiKeyInfoOut, void, undefined> {
    return allItems((page) => this.listApiKeys(envId, page), options);
  }

  /** Revokes an API key; it stops working at once. */
  async deleteApiKey(envId: string, keyId: string, options?: RequestOptions): Promise<ApiKeyOut> {
    const answer = await this.http.send({
      method: "DELETE",
      path: path("environments", envId, "api-keys", keyId),
      options,
    });
    return answer.body as ApiKeyOut;
  }
}
