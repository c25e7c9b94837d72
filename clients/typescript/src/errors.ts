// The two ways a call fails: the API answered with an error (`ApiError`, carrying the problem
// document), or no answer came at all (`ConnectionError`).
import type { Problem, ProblemCode } from "./models.js";

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

function asProblem(body: unknown): Pick<Problem, "code" | "detail"> | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const { code, detail } = body as Record<string, unknown>;
  if (typeof code !== "string") return undefined;
  return { code: code as ProblemCode, detail: typeof detail === "string" ? detail : "" };
}
