// What every resource shares: the HTTP core and path building.
import type { HttpClient } from "../http.js";
import type { ListOptions } from "../pagination.js";

/** Base of the resources: each id or uid becomes one encoded path segment. */
export abstract class Resource {
  constructor(protected readonly http: HttpClient) {}
}

/** `/api/v1/` followed by the segments, each URI-encoded (uids and event type names included). */
export function path(...segments: string[]): string {
  return `/api/v1/${segments.map((segment) => encodeURIComponent(segment)).join("/")}`;
}

/** The query of a list: paging plus the given filters (undefined ones are left out). */
export function listQuery(
  options: ListOptions,
  filters: Record<string, string | number | undefined> = {},
): Record<string, string | number | undefined> {
  return { limit: options.limit, iterator: options.iterator ?? undefined, ...filters };
}
