import type { Octohooks } from "octohooks";
import { createContext, useContext } from "react";
import type { Mode } from "./api";

export interface Session {
  client: Octohooks;
  mode: Mode;
  /** In the portal: the one application it opens. */
  portalApp: string | null;
  /** In a read-only portal: no changes at all (no endpoint edits, no resends). */
  readOnly: boolean;
  /** Announces a status message to everyone (aria-live). */
  announce: (message: string) => void;
  signOut: () => void;
  /** Dashboard: replaces the session's token (e.g. open an environment with a new key). */
  signInWith: (token: string) => void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside of a session");
  return session;
}
