// The API client of the console, token storage, and the SDK methods that are newer than the
// installed SDK (typed here against their announced signatures; see `compat`).
import { ApiError, ConnectionError, Octohooks } from "octohooks";

export type Mode = "dashboard" | "portal";

/** Which console this page is: `/portal…` is the consumer portal, anything else the dashboard. */
export function currentMode(): Mode {
  return location.pathname.startsWith("/portal") ? "portal" : "dashboard";
}

const TOKEN_KEYS: Record<Mode, string> = {
  dashboard: "octohooks.console.token",
  portal: "octohooks.portal.token",
};

export function loadToken(mode: Mode): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEYS[mode]);
  } catch {
    return null;
  }
}

export function saveToken(mode: Mode, token: string | null): void {
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEYS[mode]);
    else sessionStorage.setItem(TOKEN_KEYS[mode], token);
  } catch {
    // Storage disabled: the session lasts as long as the page.
  }
}

/** Environment API keys start with `ohk_`; anything else is the admin token. */
export function tokenKind(token: string): "apiKey" | "admin" | "portal" {
  if (token.startsWith("ohk_")) return "apiKey";
  if (token.startsWith("ohp_")) return "portal";
  return "admin";
}

export function makeClient(token: string): Octohooks {
  return new Octohooks(token, { serverUrl: location.origin, retries: 2 });
}

// ---- Portal tokens -----------------------------------------------------------------------

export interface PortalClaims {
  app: string;
  readOnly: boolean;
  exp: number | null;
}

/** Reads `ohp_<base64url JSON>.<sig>` without verifying it (the API does that). */
export function decodePortalToken(token: string): PortalClaims | null {
  if (!token.startsWith("ohp_")) return null;
  const body = token.slice(4).split(".")[0] ?? "";
  try {
    const b64 = body.replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const json: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof json !== "object" || json === null) return null;
    const claims = json as Record<string, unknown>;
    if (typeof claims.app !== "string" || claims.app === "") return null;
    return {
      app: claims.app,
      readOnly: claims.ro === true,
      exp: typeof claims.exp === "number" ? claims.exp : null,
    };
  } catch {
    return null;
  }
}

// ---- Errors ----------------------------------------------------------------------------------

export interface ErrorInfo {
  title: string;
  detail: string;
  code: string | null;
  status: number | null;
}

export function describeError(error: unknown): ErrorInfo {
  if (error instanceof ApiError) {
    return {
      title: titleFor(error.status),
      detail: error.detail,
      code: error.code,
      status: error.status,
    };
  }
  if (error instanceof ConnectionError) {
    return {
      title: error.timedOut ? "The API did not answer in time" : "Could not reach the API",
      detail: error.message,
      code: null,
      status: null,
    };
  }
  if (error instanceof Error) {
    return { title: "Something went wrong", detail: error.message, code: null, status: null };
  }
  return { title: "Something went wrong", detail: String(error), code: null, status: null };
}

function titleFor(status: number): string {
  if (status === 401) return "Not signed in, or the token was revoked";
  if (status === 403) return "Not allowed";
  if (status === 404) return "Not found";
  if (status === 409) return "Conflict";
  if (status === 413) return "Too large";
  if (status === 422) return "Invalid input";
  if (status === 429) return "Too many requests";
  if (status >= 500) return "The server had a problem";
  return "Request failed";
}

export function isUnauthorized(error: unknown): boolean {
  return error instanceof ApiError && error.status === 401;
}
