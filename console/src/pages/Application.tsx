import type { ApplicationOut, EndpointOut, PortalAccessOut } from "octohooks";
import { useId, useState } from "react";
import {
  ConfirmButton,
  Details,
  Empty,
  ErrorBox,
  FormError,
  Loading,
  PagedTable,
  PageHeader,
  SecretField,
  Section,
  Time,
} from "../components";
import { useSession } from "../context";
import { InlineForm, TextField, useAction } from "../forms";
import { useAsync, usePaged } from "../hooks";
import { href, navigate } from "../router";
import { EndpointForm } from "./EndpointForm";

export function useApplication(appId: string) {
  const { client } = useSession();
  return useAsync(() => client.application.get(appId), [client, appId]);
}

export function appCrumbs(
  mode: "dashboard" | "portal",
  app?: ApplicationOut | null,
  appId?: string,
): { label: string; href: string }[] {
  const crumbs = mode === "dashboard" ? [{ label: "Applications", href: href("apps") }] : [];
  if (appId) crumbs.push({ label: app?.name ?? "Application", href: href("apps", appId) });
  return crumbs;
}

export function ApplicationPage({ appId }: { appId: string }) {
  const session = useSession();
  const app = useApplication(appId);
  const [renaming, setRenaming] = useState(false);

  if (app.status === "loading") return <Loading />;
  if (app.status === "error") return <ErrorBox error={app.error} onRetry={app.reload} />;
  const a = app.value;
  const portal = session.mode === "portal";

  return (
    <>
      <PageHeader
        title={portal ? `${a.name}: webhooks` : a.name}
        crumbs={portal ? [] : appCrumbs(session.mode)}
      >
        <a className="btn" href={href("apps", a.id, "messages")}>
          Message log
        </a>
        {!portal ? (
          <button
            type="button"
            className="btn"
            aria-expanded={renaming}
            onClick={() => setRenaming((r) => !r)}
          >
            Rename
          </button>
        ) : null}
      </PageHeader>
      {!portal ? (
        <Details
          items={[
            { term: "ID", value: a.id, className: "mono" },
            { term: "UID", value: a.uid ?? "—", className: "mono" },
            { term: "Created", value: <Time ms={a.created} /> },
          ]}
        />
      ) : null}
      {renaming ? (
        <RenameApplication
          app={a}
          onDone={(updated) => {
            setRenaming(false);
            if (updated) {
              app.setValue(updated);
              session.announce(`Renamed to ${updated.name}`);
            }
          }}
        />
      ) : null}
      <EndpointsSection appId={a.id} />
      {!portal ? <PortalLinks appId={a.id} /> : null}
      {!portal ? <DangerZone app={a} /> : null}
    </>
  );
}

function RenameApplication({
  app,
  onDone,
}: {
  app: ApplicationOut;
  onDone: (app: ApplicationOut | null) => void;
}) {
  const { client } = useSession();
  const [name, setName] = useState(app.name);
  const { busy, error, run } = useAction();
  // A failed try's error stays up while the next one runs.
  const submit = () =>
    run(() => client.application.update(app.id, { name: name.trim() }), onDone, true);
  return (
    <Section title="Rename application">
      <InlineForm
        onSubmit={submit}
        busy={busy}
        error={error}
        submitLabel="Save name"
        onCancel={() => onDone(null)}
      >
        <TextField label="New name" required value={name} onChange={setName} />
      </InlineForm>
    </Section>
  );
}

function EndpointsSection({ appId }: { appId: string }) {
  const { client, readOnly, announce } = useSession();
  const [adding, setAdding] = useState(false);
  const paged = usePaged(
    (iterator) => client.endpoint.list(appId, { limit: 20, iterator }),
    [client, appId],
  );
  return (
    <Section
      title="Endpoints"
      actions={
        !readOnly ? (
          <button
            type="button"
            className="btn btn-primary"
            aria-expanded={adding}
            onClick={() => setAdding((a) => !a)}
          >
            Add endpoint
          </button>
        ) : null
      }
    >
      {adding ? (
        <div className="inset">
          <h3>New endpoint</h3>
          <EndpointForm
            submitLabel="Create endpoint"
            onCancel={() => setAdding(false)}
            onSubmit={async (v) => {
              const ep = await client.endpoint.create(appId, {
                url: v.url,
                description: v.description,
                eventTypes: v.eventTypes,
                channels: v.channels,
                headers: v.headers,
                rateLimit: v.rateLimit,
              });
              setAdding(false);
              announce("Endpoint created");
              navigate(href("apps", appId, "endpoints", ep.id));
            }}
          />
        </div>
      ) : null}
      <PagedTable
        paged={paged}
        label="Endpoints"
        columns={["URL", "Event types", "State", "Created"]}
        empty={
          <Empty title="No endpoints yet">
            {readOnly
              ? "No endpoint receives this application's messages."
              : "Add one to start receiving messages."}
          </Empty>
        }
      >
        {paged.items.map((ep) => (
          <EndpointRow key={ep.id} appId={appId} ep={ep} />
        ))}
      </PagedTable>
    </Section>
  );
}

function EndpointRow({ appId, ep }: { appId: string; ep: EndpointOut }) {
  return (
    <tr>
      <td className="cell-wide">
        <a href={href("apps", appId, "endpoints", ep.id)} className="mono strong break">
          {ep.url}
        </a>
        {ep.description ? <div className="muted small">{ep.description}</div> : null}
      </td>
      <td>
        {ep.eventTypes.length === 0 ? (
          <span className="muted">All</span>
        ) : (
          <span className="tags">
            {ep.eventTypes.map((t) => (
              <span className="tag mono" key={t}>
                {t}
              </span>
            ))}
          </span>
        )}
      </td>
      <td>
        {ep.enabled ? (
          <span className="badge badge-ok">enabled</span>
        ) : (
          <span className="badge badge-bad">disabled</span>
        )}
      </td>
      <td className="nowrap">
        <Time ms={ep.created} />
      </td>
    </tr>
  );
}

const EXPIRIES: { label: string; seconds: number }[] = [
  { label: "1 hour", seconds: 3600 },
  { label: "1 day", seconds: 86_400 },
  { label: "7 days", seconds: 7 * 86_400 },
  { label: "30 days", seconds: 30 * 86_400 },
];

function PortalLinks({ appId }: { appId: string }) {
  const { client, announce } = useSession();
  const id = useId();
  const [expiry, setExpiry] = useState(String(EXPIRIES[1]?.seconds ?? 86_400));
  const [readOnly, setReadOnly] = useState(false);
  const [link, setLink] = useState<PortalAccessOut | null>(null);
  const { busy, error, setError, run } = useAction();

  const create = () =>
    run(
      () => client.portalAccess.create(appId, { expiry: Number(expiry), readOnly }),
      (out) => {
        setLink(out);
        announce("Portal link created");
      },
    );

  return (
    <Section title="Consumer portal">
      <p className="muted">
        A portal link lets your customer manage this application's endpoints and see its messages
        themselves, without an account. Anyone with the link has access until it expires.
      </p>
      <InlineForm
        onSubmit={create}
        busy={busy}
        error={error}
        submitLabel="Create portal link"
        busyLabel="Creating…"
        actions={
          <ConfirmButton
            label="Revoke all portal links"
            question="Revoke every portal link of this application?"
            confirmLabel="Revoke all"
            onConfirm={async () => {
              try {
                await client.portalAccess.expireAll(appId);
                setLink(null);
                announce("Every portal link of this application was revoked");
              } catch (err) {
                setError(err);
              }
            }}
          />
        }
      >
        <div className="field">
          <label htmlFor={`${id}-expiry`}>Link expires after</label>
          <select
            id={`${id}-expiry`}
            className="input"
            value={expiry}
            onChange={(e) => setExpiry(e.target.value)}
          >
            {EXPIRIES.map((x) => (
              <option key={x.seconds} value={x.seconds}>
                {x.label}
              </option>
            ))}
          </select>
        </div>
        <label className="checkbox">
          <input
            type="checkbox"
            checked={readOnly}
            onChange={(e) => setReadOnly(e.target.checked)}
          />
          Read-only (no endpoint changes, no resends)
        </label>
      </InlineForm>
      {link ? (
        <div className="notice">
          <SecretField label="Portal link" value={link.url} />
          <p className="hint">
            Expires <Time ms={link.expiresAt} />.{" "}
            <a href={link.url} target="_blank" rel="noopener noreferrer">
              Open the portal
            </a>
          </p>
        </div>
      ) : null}
    </Section>
  );
}

function DangerZone({ app }: { app: ApplicationOut }) {
  const { client, announce } = useSession();
  const [error, setError] = useState<unknown>(null);
  return (
    <Section title="Delete application">
      <p className="muted">
        Deletes the application with its endpoints, messages and delivery attempts.
      </p>
      <FormError error={error} />
      <ConfirmButton
        label="Delete application"
        question={`Delete ${app.name} for good?`}
        onConfirm={async () => {
          try {
            await client.application.delete(app.id);
            announce(`Application ${app.name} deleted`);
            navigate(href("apps"));
          } catch (err) {
            setError(err);
          }
        }}
      />
    </Section>
  );
}
