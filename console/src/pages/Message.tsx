import type { EndpointOut, MessageDestinationOut, MessageOut, Octohooks } from "octohooks";
import { useEffect, useState } from "react";
import {
  ConfirmButton,
  CopyButton,
  Details,
  Empty,
  ErrorBox,
  ExpungedBadge,
  FormError,
  ListState,
  Loading,
  PagedTable,
  PageHeader,
  Pager,
  RefreshButton,
  Section,
  StatusBadge,
  shortId,
  Time,
} from "../components";
import { useSession } from "../context";
import { useAction } from "../forms";
import { useAsync, usePaged } from "../hooks";
import { href } from "../router";
import { appCrumbs, useApplication } from "./Application";

export function MessagePage({ appId, msgId }: { appId: string; msgId: string }) {
  const session = useSession();
  const { client } = session;
  const app = useApplication(appId);
  const message = useAsync(() => client.message.get(appId, msgId), [client, appId, msgId]);
  // The payload byte for byte as sent, for the copy button: parsing and re-serialising it could
  // change spacing and numbers beyond double precision.
  const rawPayload = useAsync(
    () => client.message.getPayload(appId, msgId),
    [client, appId, msgId],
  );
  const destinations = usePaged(
    (iterator) => client.messageAttempt.listDestinations(appId, msgId, { limit: 25, iterator }),
    [client, appId, msgId],
  );
  const attempts = usePaged(
    (iterator) => client.messageAttempt.listByMessage(appId, msgId, { limit: 20, iterator }),
    [client, appId, msgId],
  );
  // After a resend: refresh until a new attempt shows up (at most ~15 s).
  const [poll, setPoll] = useState<{ firstId: string | null; left: number } | null>(null);
  const firstId = attempts.items[0]?.id ?? null;
  const { announce } = session;
  const reloadAttempts = attempts.reload;
  const reloadDestinations = destinations.reload;
  useEffect(() => {
    if (!poll) return;
    if (firstId !== poll.firstId) {
      setPoll(null);
      reloadDestinations();
      announce("A new delivery attempt was recorded");
      return;
    }
    if (poll.left <= 0) {
      setPoll(null);
      return;
    }
    const t = window.setTimeout(
      () => {
        reloadAttempts();
        reloadDestinations();
        setPoll({ ...poll, left: poll.left - 1 });
      },
      poll.left > 10 ? 500 : 1500,
    );
    return () => window.clearTimeout(t);
  }, [poll, firstId, announce, reloadAttempts, reloadDestinations]);

  if (message.status === "loading") return <Loading />;
  if (message.status === "error")
    return <ErrorBox error={message.error} onRetry={message.reload} />;
  const m = message.value;
  const pretty = JSON.stringify(m.payload, null, 2);
  const exact = rawPayload.status === "ready" ? rawPayload.value : JSON.stringify(m.payload);
  // An expunged message has nothing left to send: no resend, in the dashboard or the portal.
  const canResend = !session.readOnly && !m.expunged;

  return (
    <>
      <PageHeader
        title={<span className="mono">{m.eventType}</span>}
        crumbs={[
          ...appCrumbs(session.mode, app.value, appId),
          { label: "Message log", href: href("apps", appId, "messages") },
        ]}
      >
        {m.expunged ? <ExpungedBadge /> : null}
      </PageHeader>
      <Details
        items={[
          { term: "Message ID", value: m.id, className: "mono" },
          m.uid ? { term: "UID", value: m.uid, className: "mono" } : null,
          {
            term: "Channels",
            value: m.channels.length ? m.channels.join(", ") : "—",
            className: "mono",
          },
          { term: "Sent", value: <Time ms={m.created} /> },
        ]}
      />
      <Section
        title="Payload"
        actions={m.expunged ? null : <CopyButton text={exact} label="Copy payload" />}
      >
        {m.expunged ? (
          <div className="notice notice-expunged" role="note">
            <p className="strong">Payload deleted</p>
            <p>
              This message's payload was deleted, on request or by the retention policy, and cannot
              be recovered. Its destinations and delivery attempts are kept.
            </p>
          </div>
        ) : (
          <pre className="code">{pretty}</pre>
        )}
      </Section>
      <Section title="Destinations" actions={<RefreshButton onClick={destinations.reload} />}>
        {m.expunged && !session.readOnly ? (
          <p className="hint resend-note">
            This message can no longer be resent: it has no payload left to send.
          </p>
        ) : null}
        <PagedTable
          paged={destinations}
          label="Destinations"
          columns={["Endpoint", "State", "Attempts", "Next attempt", "Updated"]}
          actions={canResend}
          empty={
            <Empty title="Sent nowhere">
              No endpoint of this application matched this message when it was sent.
            </Empty>
          }
        >
          {destinations.items.map((d) => (
            <DestinationRow
              key={d.endpointId}
              appId={appId}
              msgId={msgId}
              d={d}
              canResend={canResend}
              onResent={() => {
                setPoll({ firstId, left: 16 });
                reloadAttempts();
              }}
            />
          ))}
        </PagedTable>
      </Section>
      <Section title="Attempts" actions={<RefreshButton onClick={attempts.reload} />}>
        {poll ? (
          <p className="hint" role="status">
            Waiting for the new attempt…
          </p>
        ) : null}
        <ListState
          paged={attempts}
          empty={
            <Empty title="No attempts yet">
              Deliveries are attempted within seconds; refresh in a moment.
            </Empty>
          }
        >
          <ol className="attempts" aria-label="Delivery attempts">
            {attempts.items.map((a) => (
              <li key={a.id} className="attempt">
                <div className="attempt-head">
                  <StatusBadge status={a.status} />
                  <span className="mono">HTTP {a.responseStatusCode || "—"}</span>
                  <span>{a.responseDurationMs} ms</span>
                  <span className="muted">{a.triggerType.toLowerCase()}</span>
                  <Time ms={a.created} />
                </div>
                <div className="attempt-url mono break">
                  <a href={href("apps", appId, "endpoints", a.endpointId)}>{a.url}</a>
                </div>
                <p className="attempt-label">
                  {a.responseStatusCode === 0 ? "Error (no response)" : "Response body"}
                </p>
                <pre className="code code-small">{a.response === "" ? "(empty)" : a.response}</pre>
              </li>
            ))}
          </ol>
          <Pager paged={attempts} label="Attempts" />
        </ListState>
      </Section>
      {session.mode === "dashboard" && !m.expunged ? (
        <DeletePayload
          appId={appId}
          message={m}
          onDeleted={(read) => {
            message.setValue(read);
            rawPayload.reload();
            reloadDestinations();
          }}
        />
      ) : null}
    </>
  );
}

/** The danger zone: expunges the payload (API keys only, so never in the portal). */
function DeletePayload({
  appId,
  message,
  onDeleted,
}: {
  appId: string;
  message: MessageOut;
  onDeleted: (read: MessageOut) => void;
}) {
  const { client, announce } = useSession();
  const [error, setError] = useState<unknown>(null);
  return (
    <Section title="Delete payload">
      <p className="muted">
        Removes the payload of this message now, for example personal data you must not keep. The
        message, its destinations and its delivery attempts stay.
      </p>
      <FormError error={error} />
      <ConfirmButton
        label="Delete payload"
        question="Delete the payload for good? The message can no longer be resent, and deliveries still waiting stop."
        confirmLabel="Delete"
        onConfirm={async () => {
          try {
            setError(null);
            await client.message.expungeContent(appId, message.id);
            onDeleted(await client.message.get(appId, message.id));
            announce("Payload deleted");
          } catch (err) {
            setError(err);
          }
        }}
      />
    </Section>
  );
}

const endpointCache = new WeakMap<Octohooks, Map<string, Promise<EndpointOut>>>();

function useEndpoint(appId: string, endpointId: string) {
  const { client } = useSession();
  return useAsync(() => {
    let perClient = endpointCache.get(client);
    if (!perClient) {
      perClient = new Map();
      endpointCache.set(client, perClient);
    }
    const key = `${appId}/${endpointId}`;
    let p = perClient.get(key);
    if (!p) {
      p = client.endpoint.get(appId, endpointId);
      p.catch(() => perClient?.delete(key));
      perClient.set(key, p);
    }
    return p;
  }, [client, appId, endpointId]);
}

function DestinationRow({
  appId,
  msgId,
  d,
  canResend,
  onResent,
}: {
  appId: string;
  msgId: string;
  d: MessageDestinationOut;
  canResend: boolean;
  onResent: () => void;
}) {
  const { client, announce } = useSession();
  const ep = useEndpoint(appId, d.endpointId);
  const { busy, error, run } = useAction();
  const label = ep.value?.url ?? shortId(d.endpointId);
  return (
    <tr>
      <td className="cell-wide">
        <a className="mono break" href={href("apps", appId, "endpoints", d.endpointId)}>
          {label}
        </a>
        <FormError error={error} />
      </td>
      <td>
        <StatusBadge status={d.status} />
      </td>
      <td>{d.attempts}</td>
      <td className="nowrap">
        <Time ms={d.nextAttempt} />
      </td>
      <td className="nowrap">
        <Time ms={d.updated} />
      </td>
      {canResend ? (
        <td className="row-actions">
          <button
            type="button"
            className="btn btn-small"
            disabled={busy}
            aria-label={`Resend to ${label}`}
            onClick={() =>
              run(
                () => client.messageAttempt.resend(appId, msgId, d.endpointId),
                () => {
                  announce("Resend queued");
                  onResent();
                },
              )
            }
          >
            {busy ? "Resending…" : "Resend"}
          </button>
        </td>
      ) : null}
    </tr>
  );
}
