import { type ReactNode, useCallback, useEffect, useMemo, useRef, useState } from "react";
import {
  currentMode,
  decodePortalToken,
  loadToken,
  makeClient,
  type PortalClaims,
  saveToken,
  tokenKind,
} from "./api";
import { Empty } from "./components";
import { type Session, SessionContext } from "./context";
import { EnvironmentPage, EnvironmentsPage } from "./pages/Admin";
import { ApplicationPage } from "./pages/Application";
import { ApplicationsPage } from "./pages/Applications";
import { EndpointPage } from "./pages/Endpoint";
import { EventTypesPage } from "./pages/EventTypes";
import { MessagePage } from "./pages/Message";
import { MessagesPage } from "./pages/Messages";
import { Admin404, NotFound } from "./pages/NotFound";
import { OperationalEndpointPage, OperationalWebhooksPage } from "./pages/OperationalWebhooks";
import { SignInPage } from "./pages/SignIn";
import { href, navigate, type Route, useRoute } from "./router";

export function App() {
  return currentMode() === "portal" ? <PortalApp /> : <DashboardApp />;
}

/** The aria-live status line, shared by every page. */
function useAnnouncer(): [string, (message: string) => void] {
  const [message, setMessage] = useState("");
  const timer = useRef<number | undefined>(undefined);
  const announce = useCallback((text: string) => {
    setMessage(text);
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(() => setMessage(""), 3500);
  }, []);
  return [message, announce];
}

function Announcer({ message }: { message: string }) {
  return (
    <div className="toast-region" aria-live="polite" aria-atomic="true">
      {message ? (
        <div className="toast" role="status">
          {message}
        </div>
      ) : null}
    </div>
  );
}

// ---- Dashboard -------------------------------------------------------------------------------

function DashboardApp() {
  const [token, setToken] = useState(() => loadToken("dashboard"));
  const [message, announce] = useAnnouncer();
  const route = useRoute();

  const signIn = useCallback((t: string) => {
    saveToken("dashboard", t);
    setToken(t);
    navigate(tokenKind(t) === "admin" ? href("environments") : href("apps"));
  }, []);
  const signOut = useCallback(() => {
    saveToken("dashboard", null);
    setToken(null);
    history.replaceState(null, "", location.pathname + location.search);
  }, []);

  const session = useMemo<Session | null>(
    () =>
      token
        ? {
            client: makeClient(token),
            mode: "dashboard",
            portalApp: null,
            readOnly: false,
            announce,
            signOut,
            signInWith: signIn,
          }
        : null,
    [token, announce, signOut, signIn],
  );

  useEffect(() => {
    document.title = "Octohooks";
  }, []);

  if (!session || !token) {
    return (
      <>
        <SignInPage onSignIn={signIn} />
        <Announcer message={message} />
      </>
    );
  }
  const kind = tokenKind(token);
  const nav =
    kind === "admin"
      ? [{ label: "Environments", href: href("environments"), match: "environments" }]
      : [
          { label: "Applications", href: href("apps"), match: "apps" },
          { label: "Event types", href: href("event-types"), match: "event-types" },
          {
            label: "Operational webhooks",
            href: href("operational-webhooks"),
            match: "operational-webhooks",
          },
        ];
  const current = route.segments[0] ?? (kind === "admin" ? "environments" : "apps");

  return (
    <SessionContext.Provider value={session}>
      <button type="button" className="skip-link" onClick={focusMain}>
        Skip to content
      </button>
      <div className="layout">
        <header className="topbar">
          <a className="brand" href={nav[0]?.href ?? "#/"}>
            <span className="brand-mark" aria-hidden="true">
              ◆
            </span>
            Octohooks
          </a>
          <span className="topbar-badge">{kind === "admin" ? "Admin" : "Environment"}</span>
          <button type="button" className="btn btn-small topbar-signout" onClick={signOut}>
            Sign out
          </button>
        </header>
        <nav className="sidenav" aria-label="Main">
          <ul>
            {nav.map((n) => (
              <li key={n.href}>
                <a
                  href={n.href}
                  aria-current={current === n.match ? "page" : undefined}
                  className={current === n.match ? "active" : undefined}
                >
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <main id="main" className="content" tabIndex={-1}>
          {kind === "admin" ? <AdminRoutes route={route} /> : <TenantRoutes route={route} />}
        </main>
      </div>
      <Announcer message={message} />
    </SessionContext.Provider>
  );
}

function focusMain() {
  document.getElementById("main")?.focus();
}

function AdminRoutes({ route }: { route: Route }) {
  const [first, envId] = route.segments;
  if (first === undefined || (first === "environments" && envId === undefined))
    return <EnvironmentsPage />;
  if (first === "environments" && envId !== undefined)
    return <EnvironmentPage key={envId} envId={envId} name={route.query.get("name")} />;
  return <Admin404 />;
}

function TenantRoutes({ route }: { route: Route }) {
  const s = route.segments;
  if (s.length === 0 || (s[0] === "apps" && s.length === 1)) return <ApplicationsPage />;
  if (s[0] === "event-types" && s.length === 1) return <EventTypesPage />;
  if (s[0] === "operational-webhooks" && s.length === 1) return <OperationalWebhooksPage />;
  if (s[0] === "operational-webhooks" && s[1] !== undefined && s.length === 2)
    return <OperationalEndpointPage key={s[1]} endpointId={s[1]} />;
  if (s[0] === "apps" && s[1] !== undefined) return <AppRoutes appId={s[1]} route={route} />;
  return <NotFound />;
}

/** The pages of one application: shared by the dashboard and the portal. */
function AppRoutes({ appId, route }: { appId: string; route: Route }) {
  const [, , kind, id] = route.segments;
  const extra = route.segments.length;
  let page: ReactNode;
  if (kind === undefined) page = <ApplicationPage appId={appId} />;
  else if (kind === "endpoints" && id !== undefined && extra === 4)
    page = <EndpointPage appId={appId} endpointId={id} />;
  else if (kind === "messages" && id === undefined)
    page = <MessagesPage appId={appId} query={route.query} />;
  else if (kind === "messages" && id !== undefined && extra === 4)
    page = <MessagePage appId={appId} msgId={id} />;
  else page = <NotFound />;
  // A key per page, so that each page starts with fresh state.
  return <PageKey k={`${route.segments.join("/")}`}>{page}</PageKey>;
}

function PageKey({ k, children }: { k: string; children: ReactNode }) {
  return <div key={k}>{children}</div>;
}

// ---- Portal ----------------------------------------------------------------------------------

/** Takes the token out of `#token=…` into sessionStorage, and out of the address bar. */
export function takePortalTokenFromUrl(): void {
  const hash = location.hash.replace(/^#/, "");
  const params = new URLSearchParams(hash);
  const token = params.get("token");
  if (token) {
    saveToken("portal", token);
    history.replaceState(null, "", `${location.pathname}${location.search}#/`);
  }
}

const HEX_COLOUR = /^#(?:[0-9a-f]{3}|[0-9a-f]{4}|[0-9a-f]{6}|[0-9a-f]{8})$/i;

interface Theme {
  logo: string | null;
  dark: boolean;
}

function applyPortalTheme(): Theme {
  const q = new URLSearchParams(location.search);
  const primary = q.get("primaryColor");
  if (primary && HEX_COLOUR.test(primary)) {
    document.documentElement.style.setProperty("--primary", primary);
    document.documentElement.style.setProperty("--primary-strong", primary);
  }
  const dark = q.get("dark") === "1" || q.get("dark") === "true";
  document.documentElement.classList.toggle("dark", dark);
  let logo: string | null = null;
  const raw = q.get("logo");
  if (raw) {
    try {
      const url = new URL(raw);
      if (url.protocol === "https:") logo = url.href;
    } catch {
      // Not a URL: no logo.
    }
  }
  return { logo, dark };
}

function PortalApp() {
  const [theme] = useState(applyPortalTheme);
  const [token] = useState(() => loadToken("portal"));
  const [message, announce] = useAnnouncer();
  const route = useRoute();
  const claims: PortalClaims | null = token ? decodePortalToken(token) : null;
  const session = useMemo<Session | null>(
    () =>
      token && claims
        ? {
            client: makeClient(token),
            mode: "portal",
            portalApp: claims.app,
            readOnly: claims.readOnly,
            announce,
            signOut: () => saveToken("portal", null),
            signInWith: () => {},
          }
        : null,
    [token, claims?.app, claims?.readOnly, announce, claims],
  );

  const expired = claims?.exp != null && claims.exp < Date.now();
  const appId = claims?.app;
  const segs = route.segments;
  const inScope = appId !== undefined && segs[0] === "apps" && segs[1] === appId;
  useEffect(() => {
    if (appId !== undefined && !inScope) {
      history.replaceState(
        null,
        "",
        `${location.pathname}${location.search}${href("apps", appId)}`,
      );
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    }
  }, [appId, inScope]);

  let body: ReactNode;
  if (!session || !appId) {
    body = (
      <Empty title="This page needs a portal link">
        Open the link you were given. If it no longer works, ask for a new one.
      </Empty>
    );
  } else if (expired) {
    body = (
      <div className="state state-error" role="alert">
        <p className="state-title">This link has expired, ask for a new one</p>
      </div>
    );
  } else if (!inScope) {
    body = null;
  } else {
    body = <AppRoutes appId={appId} route={route} />;
  }

  const content = (
    <div className={`layout layout-portal${theme.dark ? " dark" : ""}`}>
      <header className="topbar">
        <a className="brand" href={appId ? href("apps", appId) : "#/"}>
          {theme.logo ? (
            <img className="brand-logo" src={theme.logo} alt="" referrerPolicy="no-referrer" />
          ) : null}
          Webhooks
        </a>
        {claims?.readOnly ? <span className="topbar-badge">Read-only</span> : null}
      </header>
      <main id="main" className="content" tabIndex={-1}>
        {body}
      </main>
    </div>
  );
  return session ? (
    <SessionContext.Provider value={session}>
      {content}
      <Announcer message={message} />
    </SessionContext.Provider>
  ) : (
    content
  );
}
