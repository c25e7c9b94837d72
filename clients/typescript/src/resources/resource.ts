// What every resource shares: the HTTP core, path building, and times as the API reads them.
import type { HttpClient } from "../http.js";
import type { TimeFilter } from "../models.js";
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

/** A time as the API reads it: a `Date` becomes epoch milliseconds, anything else is as given. */
export function time<T extends TimeFilter | null | undefined>(value: T): Exclude<T, Date> | number {
  return value instanceof Date ? value.getTime() : (value as Exclude<T, Date>);
}
