import type { EndpointOut, EndpointSecretOut, EventTypeOut } from "octohooks";
import { type FormEvent, useState } from "react";
import {
  ConfirmButton,
  Details,
  Empty,
  ErrorBox,
  FormError,
  Loading,
  PagedTable,
  PageHeader,
  RefreshButton,
  SecretField,
  Section,
  StatusBadge,
  shortId,
  Time,
} from "../components";
import { useSession } from "../context";
import { useAction } from "../forms";
import { useAsync, usePaged } from "../hooks";
import { href, navigate } from "../router";
import { appCrumbs, useApplication } from "./Application";
import { EndpointClientCertificate } from "./EndpointClientCertificate";
import { EndpointForm } from "./EndpointForm";
import { EndpointRecovery } from "./EndpointRecovery";
import { EndpointStats } from "./EndpointStats";

export function EndpointPage({ appId, endpointId }: { appId: string; endpointId: string }) {
  const session = useSession();
  const { client, readOnly, announce } = session;
  const app = useApplication(appId);
  const endpoint = useAsync(
    () => client.endpoint.get(appId, endpointId),
    [client, appId, endpointId],
  );
  const [editing, setEditing] = useState(false);
  const [error, setError] = useState<unknown>(null);

  if (endpoint.status === "loading") return <Loading />;
  if (endpoint.status === "error")
    return <ErrorBox error={endpoint.error} onRetry={endpoint.reload} />;
  const ep = endpoint.value;
  const crumbs = appCrumbs(session.mode, app.value, appId);

  const setEnabled = async (enabled: boolean) => {
    setError(null);
    try {
      const updated = await client.endpoint.update(appId, ep.id, { url: ep.url, enabled });
      endpoint.setValue(updated);
      announce(enabled ? "Endpoint enabled" : "Endpoint disabled");
    } catch (err) {
      setError(err);
    }
  };

  return (
    <>
      <PageHeader title={<span className="break">{ep.url}</span>} crumbs={crumbs}>
        {ep.enabled ? (
          <span className="badge badge-ok">enabled</span>
        ) : (
          <span className="badge badge-bad">disabled</span>
        )}
      </PageHeader>
      {!ep.enabled && ep.disabledReason ? (
        <div className="notice notice-warn" role="note">
          Disabled automatically: {ep.disabledReason}. Enable it again once the receiver works.
        </div>
      ) : null}
      <FormError error={error} />
      <Section
        title="Settings"
        actions={
          !readOnly ? (
            <>
              {ep.enabled ? (
                <ConfirmButton
                  label="Disable endpoint"
                  question="Stop deliveries to this endpoint?"
                  confirmLabel="Disable"
                  onConfirm={() => setEnabled(false)}
                />
              ) : (
                <button type="button" className="btn" onClick={() => setEnabled(true)}>
                  Enable endpoint
                </button>
              )}
              <button
                type="button"
                className="btn"
                aria-expanded={editing}
                onClick={() => setEditing((e) => !e)}
              >
                {editing ? "Close editor" : "Edit endpoint"}
              </button>
            </>
          ) : null
        }
      >
        {editing ? (
          <EndpointForm
            initial={ep}
            submitLabel="Save changes"
            onCancel={() => setEditing(false)}
            onSubmit={async (v) => {
              const updated = await client.endpoint.update(appId, ep.id, {
                url: v.url,
                description: v.description,
                eventTypes: v.eventTypes,
                channels: v.channels,
                headers: v.headers,
                rateLimit: v.rateLimit,
              });
              endpoint.setValue(updated);
              setEditing(false);
              announce("Endpoint saved");
            }}
          />
        ) : (
          <EndpointDetails ep={ep} />
        )}
      </Section>
      <EndpointStats appId={appId} endpointId={ep.id} />
      <SecretSection
        getSecret={() => client.endpoint.getSecret(appId, ep.id)}
        rotateSecret={() => client.endpoint.rotateSecret(appId, ep.id)}
      />
      <EndpointClientCertificate appId={appId} endpointId={ep.id} />
      {!readOnly ? <SendExample appId={appId} endpoint={ep} /> : null}
      {!readOnly ? <EndpointRecovery appId={appId} endpoint={ep} /> : null}
      <EndpointAttempts appId={appId} endpointId={ep.id} />
      {!readOnly ? (
        <Section title="Delete endpoint">
          <p className="muted">Pending deliveries to it are dropped, with its attempts.</p>
          <ConfirmButton
            label="Delete endpoint"
            question="Delete this endpoint for good?"
            onConfirm={async () => {
              try {
                await client.endpoint.delete(appId, ep.id);
                announce("Endpoint deleted");
                navigate(href("apps", appId));
              } catch (err) {
                setError(err);
              }
            }}
          />
        </Section>
      ) : null}
    </>
  );
}

function EndpointDetails({ ep }: { ep: EndpointOut }) {
  const headers = Object.entries(ep.headers);
  return (
    <Details
      kind="details"
      items={[
        { term: "URL", value: ep.url, className: "mono break" },
        { term: "Description", value: ep.description || <span className="muted">—</span> },
        {
          term: "Event types",
          value:
            ep.eventTypes.length === 0 ? (
              <span className="muted">All event types</span>
            ) : (
              <span className="tags">
                {ep.eventTypes.map((t) => (
                  <span key={t} className="tag mono">
                    {t}
                  </span>
                ))}
              </span>
            ),
        },
        {
          term: "Rate limit",
          value:
            ep.rateLimit == null ? (
              <span className="muted">No limit</span>
            ) : (
              `${ep.rateLimit} messages per second`
            ),
        },
        {
          term: "Channels",
          value:
            ep.channels.length === 0 ? (
              <span className="muted">All channels</span>
            ) : (
              <span className="tags">
                {ep.channels.map((c) => (
                  <span key={c} className="tag mono">
                    {c}
                  </span>
                ))}
              </span>
            ),
        },
        {
          term: "Custom headers",
          value:
            headers.length === 0 ? (
              <span className="muted">None</span>
            ) : (
              <ul className="plain mono">
                {headers.map(([k, v]) => (
                  <li key={k} className="break">
                    {k}: {v}
                  </li>
                ))}
              </ul>
            ),
        },
        { term: "ID", value: ep.id, className: "mono" },
        { term: "Created", value: <Time ms={ep.created} /> },
        { term: "Updated", value: <Time ms={ep.updated} /> },
      ]}
    />
  );
}

/**
 * An endpoint's signing secret, hidden until revealed, and its rotation: for customers'
 * endpoints and operational ones alike, through the two calls given.
 */
export function SecretSection({
  getSecret,
  rotateSecret,
}: {
  getSecret: () => Promise<EndpointSecretOut>;
  rotateSecret: () => Promise<void>;
}) {
  const { readOnly, announce } = useSession();
  const [secret, setSecret] = useState<EndpointSecretOut | null>(null);
  const { busy, error, setError, run } = useAction();
  const reveal = () => run(getSecret, (out) => setSecret(out));
  return (
    <Section title="Signing secret">
      <p className="muted">
        Verify the <code>webhook-signature</code> header of every delivery with this secret. After a
        rotation the previous secret keeps signing for 24 hours.
      </p>
      {secret ? <SecretField label="Signing secret" value={secret.key} /> : null}
      {secret?.publicKey ? (
        <>
          <p className="muted">
            An ed25519 key: deliveries carry <code>v1a</code> signatures. Give the receiver the
            public key only; it verifies webhooks but cannot sign them.
          </p>
          <SecretField label="Public key" value={secret.publicKey} />
        </>
      ) : null}
      <FormError error={error} />
      <div className="actions">
        {secret ? (
          <button type="button" className="btn" onClick={() => setSecret(null)}>
            Hide secret
          </button>
        ) : (
          <button type="button" className="btn" disabled={busy} onClick={reveal}>
            Reveal secret
          </button>
        )}
        {!readOnly ? (
          <ConfirmButton
            label="Rotate secret"
            question="Make a new secret current? The old one keeps signing for 24 hours."
            confirmLabel="Rotate"
            onConfirm={async () => {
              try {
                await rotateSecret();
                announce("Secret rotated");
                if (secret) await reveal();
              } catch (err) {
                setError(err);
              }
            }}
          />
        ) : null}
      </div>
    </Section>
  );
}

function EndpointAttempts({ appId, endpointId }: { appId: string; endpointId: string }) {
  const { client } = useSession();
  const paged = usePaged(
    (iterator) => client.messageAttempt.listByEndpoint(appId, endpointId, { limit: 25, iterator }),
    [client, appId, endpointId],
  );
  return (
    <Section title="Delivery attempts" actions={<RefreshButton onClick={paged.reload} />}>
      <PagedTable
        paged={paged}
        label="Attempts"
        columns={["Time", "Status", "Response", "Duration", "Trigger", "Message"]}
        empty={
          <Empty title="No attempts yet">
            Attempts appear here once a message is sent to this endpoint.
          </Empty>
        }
      >
        {paged.items.map((a) => (
          <tr key={a.id}>
            <td className="nowrap">
              <Time ms={a.created} />
            </td>
            <td>
              <StatusBadge status={a.status} />
            </td>
            <td className="mono">{a.responseStatusCode || "—"}</td>
            <td className="nowrap">{a.responseDurationMs} ms</td>
            <td>{a.triggerType.toLowerCase()}</td>
            <td>
              <a className="mono" href={href("apps", appId, "messages", a.messageId)}>
                {shortId(a.messageId)}
              </a>
            </td>
          </tr>
        ))}
      </PagedTable>
    </Section>
  );
}

/** Whether the type has an example to send: `examples[0]` of version 1 or of the latest. */
function hasExample(type: EventTypeOut): boolean {
  const versions = Object.entries(type.schemas ?? {});
  return versions.some(([, schema]) => {
    const examples = (schema as { examples?: unknown } | null)?.examples;
    return Array.isArray(examples) && examples.length > 0;
  });
}

/** Sends an event type's example to this endpoint only, as a real message. */
function SendExample({ appId, endpoint }: { appId: string; endpoint: EndpointOut }) {
  const { client, announce } = useSession();
  const types = useAsync(() => client.eventType.list({ limit: 250 }), [client]);
  const [eventType, setEventType] = useState("");
  const { busy, error, run } = useAction();
  const withExamples =
    types.status === "ready" ? types.value.data.filter((t) => !t.archived && hasExample(t)) : [];
  const chosen = eventType || withExamples[0]?.name || "";
  const send = (e: FormEvent) => {
    e.preventDefault();
    run(
      () => client.endpoint.sendExample(appId, endpoint.id, { eventType: chosen }),
      (message) => {
        announce(`Example of ${message.eventType} sent`);
        navigate(href("apps", appId, "messages", message.id));
      },
    );
  };
  return (
    <Section title="Send an example">
      {types.status === "loading" ? (
        <Loading />
      ) : withExamples.length === 0 ? (
        <p className="muted">
          No event type has an example yet. Give one in its schema (<code>examples</code>) on the
          Event types page to send it here.
        </p>
      ) : (
        <form className="form form-row" onSubmit={send}>
          <div className="field">
            <label htmlFor="example-type">Example event type</label>
            <select
              id="example-type"
              className="input mono"
              value={chosen}
              onChange={(e) => setEventType(e.target.value)}
            >
              {withExamples.map((t) => (
                <option key={t.name} value={t.name}>
                  {t.name}
                </option>
              ))}
            </select>
          </div>
          <div className="actions">
            <button type="submit" className="btn" disabled={busy || !endpoint.enabled}>
              {busy ? "Sending…" : "Send example"}
            </button>
          </div>
          {!endpoint.enabled ? (
            <p className="hint">Enable the endpoint to send it an example.</p>
          ) : null}
          <FormError error={error} />
        </form>
      )}
    </Section>
  );
}
