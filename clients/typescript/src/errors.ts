// The two ways a call fails: the API answered with an error (`ApiError`, carrying the problem
// document), or no answer came at all (`ConnectionError`); and `WaitTimeoutError`, when a
// background task is still running after `backgroundTask.waitFor` stopped waiting.
import type { BackgroundTaskOut, Problem, ProblemCode, SchemaViolation } from "./models.js";

/**
 * An error answer of the API. `code` is the stable machine-readable kind of the problem document
 * (see `ProblemCode`), so callers branch on `e.code`, never on the text of `detail`.
 */
export class ApiError extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** The problem's `code`, e.g. `"conflict"`; `"unknown"` when the body was not a problem. */
  readonly code: ProblemCode | "unknown";
  /** What went wrong, for humans; names the field at fault where there is one. */
  readonly detail: string;
  /** The parsed body (a `Problem` for every error the API itself produces). */
  readonly body: unknown;
  /** The response headers, lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * With `schema_violation`: where the payload breaks its event type's schema (JSON Pointer and
   * reason, at most five); empty for every other code.
   */
  readonly errors: readonly SchemaViolation[];

  constructor(status: number, body: unknown, headers: Record<string, string>) {
    const problem = asProblem(body);
    const detail = problem?.detail ?? `HTTP ${status}`;
    super(`${status} ${problem?.code ?? "unknown"}: ${detail}`);
    this.name = "ApiError";
    this.status = status;
    this.code = problem?.code ?? "unknown";
    this.detail = detail;
    this.body = body;
    this.headers = headers;
    this.errors = problem?.errors ?? [];
  }
}

/** No answer came: the connection failed or the call timed out, after every retry. */
export class ConnectionError extends Error {
  /** True when the call ran out of time (`timeoutMs`), false for a network failure. */
  readonly timedOut: boolean;

  constructor(message: string, timedOut: boolean, cause?: unknown) {
    super(message, { cause });
    this.name = "ConnectionError";
    this.timedOut = timedOut;
  }
}

/** `backgroundTask.waitFor` ran out of time; the task goes on, as `task` last showed it. */
export class WaitTimeoutError extends Error {
  /** The task as last read: still `running`. */
  readonly task: BackgroundTaskOut;

  constructor(task: BackgroundTaskOut) {
    super(
      `background task ${task.id} still running (${task.messagesScanned} messages scanned, ${task.messagesQueued} queued)`,
    );
    this.name = "WaitTimeoutError";
    this.task = task;
  }
}

type ProblemFields = Pick<Problem, "code" | "detail"> & { errors: SchemaViolation[] };

function asProblem(body: unknown): ProblemFields | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const { code, detail, errors } = body as Record<string, unknown>;
  if (typeof code !== "string") return undefined;
  return {
    code: code as ProblemCode,
    detail: typeof detail === "string" ? detail : "",
    errors: Array.isArray(errors) ? (errors as SchemaViolation[]) : [],
  };
}
