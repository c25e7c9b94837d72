import { WaitTimeoutError } from "../errors.js";
import { type AbortSignalLike, type RequestOptions, sleep } from "../http.js";
import type { BackgroundTaskFilters, BackgroundTaskOut } from "../models.js";
import { allItems, type ListOptions, type ListResponse, toPage } from "../pagination.js";
import { listQuery, path, Resource } from "./resource.js";

/** Options of `backgroundTask.list`: paging and filters. */
export type BackgroundTaskListOptions = ListOptions & BackgroundTaskFilters;

/** Options of `backgroundTask.waitFor`. */
export interface WaitForOptions {
  /** How long to wait in all before giving up with `WaitTimeoutError` (default 300 000 ms). */
  timeoutMs?: number;
  /** Pause between two reads of the task (default 1 000 ms). */
  intervalMs?: number;
  /** Called with the task after every read, finished or not: progress for a display. */
  onProgress?: (task: BackgroundTaskOut) => void;
  /** Stops waiting: the next read throws as an aborted call does. */
  signal?: AbortSignalLike;
}

/**
 * Background tasks: the work `endpoint.recover` and `endpoint.replayMissing` start, run by the
 * dispatchers batch by batch; read them to follow their progress.
 */
export class BackgroundTask extends Resource {
  /** The task with this id: its status and how many messages it scanned and queued so far. */
  async get(taskId: string, options?: RequestOptions): Promise<BackgroundTaskOut> {
    const answer = await this.http.send({
      method: "GET",
      path: path("background-tasks", taskId),
      options,
    });
    return answer.body as BackgroundTaskOut;
  }

  /** One page of the tasks, newest first, filtered by endpoint (`endpointId`) and `status`. */
  async list(options: BackgroundTaskListOptions = {}): Promise<ListResponse<BackgroundTaskOut>> {
    const answer = await this.http.send({
      method: "GET",
      path: path("background-tasks"),
      query: listQuery(options, { endpointId: options.endpointId, status: options.status }),
      options,
    });
    return toPage(answer);
  }

  /** Every task that matches the filters, page after page. */
  listAll(
    options: BackgroundTaskListOptions = {},
  ): AsyncGenerator<BackgroundTaskOut, void, undefined> {
    return allItems((page) => this.list(page), options);
  }

  /**
   * Reads the task every `intervalMs` until it is no longer `running` and answers it, `finished`
   * or `failed` (a failed task is answered, not thrown: its reason is in `failure`). Throws
   * `WaitTimeoutError`, with the task as last read, when `timeoutMs` runs out first.
   */
  async waitFor(taskId: string, options: WaitForOptions = {}): Promise<BackgroundTaskOut> {
    const deadline = Date.now() + (options.timeoutMs ?? 300_000);
    const intervalMs = options.intervalMs ?? 1_000;
    for (;;) {
      const task = await this.get(taskId, { signal: options.signal });
      options.onProgress?.(task);
      if (task.status !== "running") return task;
      const left = deadline - Date.now();
      if (left <= 0) throw new WaitTimeoutError(task);
      await sleep(Math.min(intervalMs, left), options.signal);
    }
  }
}
