import type { PostOptions } from "../http.js";
import type { PortalAccessIn, PortalAccessOut } from "../models.js";
import { path, Resource } from "./resource.js";

/** Consumer portal links: a page of your customer's own endpoints and messages, for a while. */
export class PortalAccess extends Resource {
  /** A link (`url`, the token in its fragment) to the portal of one application. */
  async create(
    appId: string,
    body: PortalAccessIn = {},
    options?: PostOptions,
  ): Promise<PortalAccessOut> {
    const answer = await this.http.send({
      method: "POST",
      path: path("applications", appId, "portal-access"),
      body,
      options,
    });
    return answer.body as PortalAccessOut;
  }

  /** Revokes every portal link of the application made until now. */
  async expireAll(appId: string, options?: PostOptions): Promise<void> {
    await this.http.send({
      method: "POST",
      path: path("applications", appId, "portal-access", "expire-all"),
      options,
    });
  }
}
