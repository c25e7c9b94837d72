// Lists: the API answers a JSON array and announces the next page in an RFC 8288 `Link` header;
// the client turns that into `{ data, iterator, done }` pages and async iterators over all items.
import type { HttpAnswer, RequestOptions } from "./http.js";

/** Paging options of every list. */
export interface ListOptions extends RequestOptions {
  /** Items per page, 1 to 250 (default 50). */
  limit?: number;
  /** The `iterator` of the previous page, to get the page after it. */
  iterator?: string | null;
}

/** One page of a list. */
export interface ListResponse<T> {
  /** The items of this page. */
  data: T[];
  /** Pass as `iterator` to get the next page; `null` when this is the last page. */
  iterator: string | null;
  /** True when no page follows. */
  done: boolean;
}

/** A page from an answer: its array and the cursor of the `rel="next"` link, if any. */
export function toPage<T>(answer: HttpAnswer): ListResponse<T> {
  const iterator = nextIterator(answer.headers.link);
  return { data: answer.body as T[], iterator, done: iterator === null };
}

/** The `iterator` query parameter of the `rel="next"` target of a `Link` header. */
export function nextIterator(link: string | undefined): string | null {
  if (!link) return null;
  for (const part of link.split(",")) {
    const match = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (!match || !/;\s*rel="?next"?/i.test(match[2] ?? "")) continue;
    return new URL(match[1] ?? "", "http://link.invalid").searchParams.get("iterator");
  }
  return null;
}

/** Every item of every page, fetched one page at a time as the loop asks for more. */
export async function* allItems<T, O extends ListOptions>(
  list: (options: O) => Promise<ListResponse<T>>,
  options: O,
): AsyncGenerator<T, void, undefined> {
  let iterator = options.iterator ?? null;
  for (;;) {
    const page = await list({ ...options, iterator });
    yield* page.data;
    if (page.done) return;
    iterator = page.iterator;
  }
}
