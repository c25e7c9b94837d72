// Shared pieces: states (loading, empty, error), copy and confirm buttons, paging, tables,
// term/value grids, times.
import { type ReactNode, useEffect, useId, useRef, useState } from "react";
import { describeError, isUnauthorized } from "./api";
import { useSession } from "./context";
import type { Paged } from "./hooks";

export function Loading({ what = "Loading…" }: { what?: string }) {
  return (
    <div className="state state-loading" role="status">
      <span className="spinner" aria-hidden="true" />
      {what}
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="state state-empty">
      <p className="state-title">{title}</p>
      {children ? <div className="state-body">{children}</div> : null}
    </div>
  );
}

export function ErrorBox({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const session = useSession();
  const info = describeError(error);
  const unauthorized = isUnauthorized(error);
  return (
    <div className="state state-error" role="alert">
      <p className="state-title">
        {session.mode === "portal" && unauthorized
          ? "This link has expired, ask for a new one"
          : info.title}
      </p>
      <p className="state-body">
        {info.detail}
        {info.code ? (
          <>
            {" "}
            <code className="error-code">{info.code}</code>
          </>
        ) : null}
        {info.status ? <span className="muted"> (HTTP {info.status})</span> : null}
      </p>
      <div className="actions">
        {onRetry && !unauthorized ? (
          <button type="button" className="btn" onClick={onRetry}>
            Try again
          </button>
        ) : null}
        {unauthorized && session.mode === "dashboard" ? (
          <button type="button" className="btn" onClick={session.signOut}>
            Sign in again
          </button>
        ) : null}
      </div>
    </div>
  );
}

/** An inline error for a form, shown under it. */
export function FormError({ error }: { error: unknown }) {
  if (error === null || error === undefined) return null;
  const info = describeError(error);
  return (
    <p className="form-error" role="alert">
      {info.title}: {info.detail}
      {info.code ? (
        <>
          {" "}
          <code className="error-code">{info.code}</code>
        </>
      ) : null}
    </p>
  );
}

async function copyText(text: string): Promise<void> {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "offscreen";
  document.body.appendChild(area);
  area.select();
  try {
    document.execCommand("copy");
  } finally {
    area.remove();
  }
}

export function CopyButton({ text, label = "Copy" }: { text: string; label?: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  const session = useSession();
  useEffect(() => {
    if (state === "idle") return;
    const t = window.setTimeout(() => setState("idle"), 2000);
    return () => window.clearTimeout(t);
  }, [state]);
  return (
    <button
      type="button"
      className="btn btn-small"
      onClick={() => {
        copyText(text).then(
          () => {
            setState("copied");
            session.announce("Copied to the clipboard");
          },
          () => setState("failed"),
        );
      }}
    >
      {state === "copied" ? "Copied" : state === "failed" ? "Copy failed" : label}
    </button>
  );
}

/** A secret shown with a copy button, in a read-only field that selects on focus. */
export function SecretField({ label, value }: { label: string; value: string }) {
  const id = useId();
  return (
    <div className="secret">
      <label htmlFor={id}>{label}</label>
      <div className="secret-row">
        <input
          id={id}
          className="input mono"
          readOnly
          value={value}
          onFocus={(e) => e.currentTarget.select()}
        />
        <CopyButton text={value} />
      </div>
    </div>
  );
}

/** A button that asks "are you sure?" inline (no browser dialogs) before acting. */
export function ConfirmButton({
  label,
  question,
  confirmLabel,
  onConfirm,
  danger = true,
  disabled = false,
  small = false,
}: {
  label: string;
  question: string;
  confirmLabel?: string;
  onConfirm: () => Promise<void> | void;
  danger?: boolean;
  disabled?: boolean;
  small?: boolean;
}) {
  const size = small ? " btn-small" : "";
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const confirmRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (asking) confirmRef.current?.focus();
  }, [asking]);
  if (!asking) {
    return (
      <button
        type="button"
        className={`${danger ? "btn btn-danger-outline" : "btn"}${size}`}
        disabled={disabled}
        onClick={() => setAsking(true)}
      >
        {label}
      </button>
    );
  }
  return (
    // biome-ignore lint/a11y/useSemanticElements: an inline confirmation, not a dialog or fieldset
    <span className="confirm" role="group" aria-label={question}>
      <span className="confirm-question">{question}</span>
      <button
        ref={confirmRef}
        type="button"
        className={`${danger ? "btn btn-danger" : "btn btn-primary"}${size}`}
        disabled={busy}
        onClick={() => {
          setBusy(true);
          Promise.resolve(onConfirm()).finally(() => {
            setBusy(false);
            setAsking(false);
          });
        }}
      >
        {busy ? "Working…" : (confirmLabel ?? label)}
      </button>
      <button
        type="button"
        className={`btn${size}`}
        disabled={busy}
        onClick={() => setAsking(false)}
      >
        Cancel
      </button>
    </span>
  );
}

export function Pager<T>({ paged, label }: { paged: Paged<T>; label: string }) {
  if (!paged.hasNext && !paged.hasPrevious) return null;
  return (
    <nav className="pager" aria-label={`${label} pages`}>
      <button
        type="button"
        className="btn btn-small"
        disabled={!paged.hasPrevious}
        onClick={paged.previous}
      >
        ← Previous
      </button>
      <span className="muted">Page {paged.page}</span>
      <button
        type="button"
        className="btn btn-small"
        disabled={!paged.hasNext}
        onClick={paged.next}
      >
        Next →
      </button>
    </nav>
  );
}

/** A list region: loading, error or empty states, else its table. */
export function ListState<T>({
  paged,
  empty,
  children,
}: {
  paged: Paged<T>;
  empty: ReactNode;
  children: ReactNode;
}) {
  if (paged.status === "loading" && paged.items.length === 0) return <Loading />;
  if (paged.status === "error") return <ErrorBox error={paged.error} onRetry={paged.reload} />;
  if (paged.items.length === 0) return <>{empty}</>;
  return <>{children}</>;
}

/** A paged list shown as a table (`columns` head it, then an unlabelled Actions column if
 * `actions`; `children` are its rows), with its Pager; or its loading, error or empty state. */
export function PagedTable<T>({
  paged,
  label,
  empty,
  columns,
  actions = false,
  children,
}: {
  paged: Paged<T>;
  label: string;
  empty: ReactNode;
  columns: string[];
  actions?: boolean;
  children: ReactNode;
}) {
  return (
    <ListState paged={paged} empty={empty}>
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              {columns.map((c) => (
                <th key={c} scope="col">
                  {c}
                </th>
              ))}
              {actions ? (
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              ) : null}
            </tr>
          </thead>
          <tbody>{children}</tbody>
        </table>
      </div>
      <Pager paged={paged} label={label} />
    </ListState>
  );
}

export function RefreshButton({ onClick }: { onClick: () => void }) {
  return (
    <button type="button" className="btn btn-small" onClick={onClick}>
      Refresh
    </button>
  );
}

/** One term of a `Details` list (`className` goes on its value); false or null: left out. */
export type Detail = { term: string; value: ReactNode; className?: string } | false | null;

/** A term/value grid: `meta` (a strip under a page header) or `details` (inside a card). */
export function Details({ kind = "meta", items }: { kind?: "meta" | "details"; items: Detail[] }) {
  return (
    <dl className={kind}>
      {items.map((d) =>
        d ? (
          <div key={d.term}>
            <dt>{d.term}</dt>
            <dd className={d.className}>{d.value}</dd>
          </div>
        ) : null,
      )}
    </dl>
  );
}

const dateFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

export function Time({ ms }: { ms: number | null | undefined }) {
  if (ms === null || ms === undefined) return <span className="muted">—</span>;
  const date = new Date(ms);
  return <time dateTime={date.toISOString()}>{dateFormat.format(date)}</time>;
}

export function StatusBadge({ status }: { status: string }) {
  const s = status.toLowerCase();
  const tone = s === "success" ? "ok" : s === "failed" ? "bad" : s === "pending" ? "warn" : "info";
  return <span className={`badge badge-${tone}`}>{s}</span>;
}

/** Marks a message whose payload was expunged (deleted on request or by retention). */
export function ExpungedBadge() {
  return (
    <span className="badge badge-muted" title="The payload was deleted">
      expunged
    </span>
  );
}

export function PageHeader({
  title,
  crumbs,
  children,
}: {
  title: ReactNode;
  crumbs?: { label: string; href: string }[];
  children?: ReactNode;
}) {
  return (
    <header className="page-header">
      {crumbs && crumbs.length > 0 ? (
        <nav aria-label="Breadcrumb" className="crumbs">
          <ol>
            {crumbs.map((c) => (
              <li key={c.href}>
                <a href={c.href}>{c.label}</a>
              </li>
            ))}
          </ol>
        </nav>
      ) : null}
      <div className="page-header-row">
        <h1>{title}</h1>
        {children ? <div className="actions">{children}</div> : null}
      </div>
    </header>
  );
}

export function Section({
  title,
  actions,
  children,
}: {
  title: string;
  actions?: ReactNode;
  children: ReactNode;
}) {
  const id = useId();
  return (
    <section className="card" aria-labelledby={id}>
      <div className="card-header">
        <h2 id={id}>{title}</h2>
        {actions ? <div className="actions">{actions}</div> : null}
      </div>
      {children}
    </section>
  );
}

export function shortId(id: string): string {
  return id.length > 13 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id;
}
