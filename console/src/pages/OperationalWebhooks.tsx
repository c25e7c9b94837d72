// Operational webhooks: the environment's own endpoints, told when its customers' endpoints are
// created, changed, disabled or deleted and when deliveries to them keep failing. The list with
// its form, and one endpoint's page: enable or disable, signing secret, attempts, deletion.
import { type EndpointOut, OPERATIONAL_EVENT_TYPES, type OperationalEventType } from "octohooks";
import { type FormEvent, useId, useState } from "react";
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
  Section,
  StatusBadge,
  Time,
} from "../components";
import { useSession } from "../context";
import { TextField, useAction } from "../forms";
import { useAsync, usePaged } from "../hooks";
import { href, navigate } from "../router";
import { SecretSection } from "./Endpoint";

/** What each event tells, as the form's checkboxes describe it. */
const EVENT_DESCRIPTIONS: Record<OperationalEventType, string> = {
  "endpoint.created": "A customer's endpoint was created.",
  "endpoint.updated": "An endpoint's settings changed.",
  "endpoint.deleted": "An endpoint was deleted, alone or with its application.",
  "endpoint.enabled": "A disabled endpoint was enabled again.",
  "endpoint.disabled": "An endpoint was disabled, by hand or because it kept failing.",
  "message.attempt.failing": "A message failed 4 attempts in a row to an endpoint.",
  "message.attempt.exhausted": "A message failed its last retry: it is not sent again.",
  "message.attempt.recovered": "A message was delivered after failing 4 times or more.",
};

const LIST = href("operational-webhooks");

export function OperationalWebhooksPage() {
  const { client, announce } = useSession();
  const [adding, setAdding] = useState(false);
  const paged = usePaged(
    (iterator) => client.operationalWebhookEndpoint.list({ limit: 20, iterator }),
    [client],
  );
  return (
    <>
      <PageHeader title="Operational webhooks">
        <button
          type="button"
          className="btn btn-primary"
          aria-expanded={adding}
          onClick={() => setAdding((a) => !a)}
        >
          Add endpoint
        </button>
      </PageHeader>
      <p className="lead">
        Webhooks for you, not your customers: your own endpoints are told when your customers'
        endpoints are created, changed, disabled or deleted, and when deliveries to them keep
        failing. They are signed like every webhook; verify them with the endpoint's secret.
      </p>
      {adding ? (
        <CreateOperationalEndpoint
          onDone={(created) => {
            setAdding(false);
            if (created) {
              announce("Operational endpoint created");
              paged.reset();
            }
          }}
        />
      ) : null}
      <Section title="Endpoints" actions={<RefreshButton onClick={paged.reload} />}>
        <PagedTable
          paged={paged}
          label="Operational endpoints"
          columns={["URL", "Event types", "State", "Created"]}
          empty={
            <Empty title="No operational endpoints yet">
              Add one to hear when your customers' endpoints are disabled or their deliveries keep
              failing.
            </Empty>
          }
        >
          {paged.items.map((ep) => (
            <tr key={ep.id}>
              <td className="cell-wide">
                <a href={href("operational-webhooks", ep.id)} className="mono strong break">
                  {ep.url}
                </a>
                {ep.description ? <div className="muted small">{ep.description}</div> : null}
              </td>
              <td>
                <EventTypeTags eventTypes={ep.eventTypes} />
              </td>
              <td>
                <EnabledBadge enabled={ep.enabled} />
              </td>
              <td className="nowrap">
                <Time ms={ep.created} />
              </td>
            </tr>
          ))}
        </PagedTable>
      </Section>
    </>
  );
}

function EventTypeTags({ eventTypes }: { eventTypes: string[] }) {
  if (eventTypes.length === 0) return <span className="muted">All events</span>;
  return (
    <span className="tags">
      {eventTypes.map((t) => (
        <span className="tag mono" key={t}>
          {t}
        </span>
      ))}
    </span>
  );
}

function EnabledBadge({ enabled }: { enabled: boolean }) {
  return enabled ? (
    <span className="badge badge-ok">enabled</span>
  ) : (
    <span className="badge badge-bad">disabled</span>
  );
}

function CreateOperationalEndpoint({ onDone }: { onDone: (created: EndpointOut | null) => void }) {
  const { client } = useSession();
  const id = useId();
  const [url, setUrl] = useState("");
  const [description, setDescription] = useState("");
  const [eventTypes, setEventTypes] = useState<OperationalEventType[]>([]);
  const { busy, error, run } = useAction();

  const toggle = (name: OperationalEventType, on: boolean) =>
    setEventTypes((chosen) =>
      // In the catalog's order, whatever the order of the clicks.
      OPERATIONAL_EVENT_TYPES.filter((t) => (t === name ? on : chosen.includes(t))),
    );
  const submit = (e: FormEvent) => {
    e.preventDefault();
    run(
      () =>
        client.operationalWebhookEndpoint.create({
          url: url.trim(),
          description: description.trim(),
          eventTypes,
        }),
      onDone,
    );
  };

  return (
    <Section title="New operational endpoint">
      <form className="form" onSubmit={submit} aria-busy={busy}>
        <fieldset disabled={busy}>
          <TextField
            label="Endpoint URL"
            type="url"
            required
            placeholder="https://ops.example.com/octohooks"
            value={url}
            onChange={setUrl}
          />
          <TextField
            label="Description"
            placeholder="On-call pager"
            hint="Optional: who reads these events."
            value={description}
            onChange={setDescription}
          />
          <fieldset className="field subfieldset">
            <legend>Event types</legend>
            <p className="hint">Leave all unchecked to receive every event.</p>
            <div className="checkbox-grid checkbox-grid-wide">
              {OPERATIONAL_EVENT_TYPES.map((t) => (
                <div key={t}>
                  <label className="checkbox">
                    <input
                      type="checkbox"
                      checked={eventTypes.includes(t)}
                      aria-describedby={`${id}-${t}`}
                      onChange={(e) => toggle(t, e.target.checked)}
                    />
                    <span className="mono">{t}</span>
                  </label>
                  <p className="hint checkbox-hint" id={`${id}-${t}`}>
                    {EVENT_DESCRIPTIONS[t]}
                  </p>
                </div>
              ))}
            </div>
          </fieldset>
          <FormError error={error} />
          <div className="actions">
            <button type="submit" className="btn btn-primary">
              {busy ? "Creating…" : "Create operational endpoint"}
            </button>
            <button type="button" className="btn" onClick={() => onDone(null)}>
              Cancel
            </button>
          </div>
        </fieldset>
      </form>
    </Section>
  );
}

export function OperationalEndpointPage({ endpointId }: { endpointId: string }) {
  const { client, announce } = useSession();
  const endpoint = useAsync(
    () => client.operationalWebhookEndpoint.get(endpointId),
    [client, endpointId],
  );
  const [error, setError] = useState<unknown>(null);

  if (endpoint.status === "loading") return <Loading />;
  if (endpoint.status === "error")
    return <ErrorBox error={endpoint.error} onRetry={endpoint.reload} />;
  const ep = endpoint.value;

  const setEnabled = async (enabled: boolean) => {
    setError(null);
    try {
      endpoint.setValue(await client.operationalWebhookEndpoint.patch(ep.id, { enabled }));
      announce(enabled ? "Operational endpoint enabled" : "Operational endpoint disabled");
    } catch (err) {
      setError(err);
    }
  };

  return (
    <>
      <PageHeader
        title={<span className="break">{ep.url}</span>}
        crumbs={[{ label: "Operational webhooks", href: LIST }]}
      >
        <EnabledBadge enabled={ep.enabled} />
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
          ep.enabled ? (
            <ConfirmButton
              label="Disable endpoint"
              question="Stop sending operational events to this endpoint?"
              confirmLabel="Disable"
              onConfirm={() => setEnabled(false)}
            />
          ) : (
            <button type="button" className="btn" onClick={() => setEnabled(true)}>
              Enable endpoint
            </button>
          )
        }
      >
        <Details
          kind="details"
          items={[
            { term: "URL", value: ep.url, className: "mono break" },
            { term: "Description", value: ep.description || <span className="muted">—</span> },
            { term: "Event types", value: <EventTypeTags eventTypes={ep.eventTypes} /> },
            { term: "ID", value: ep.id, className: "mono" },
            ep.uid ? { term: "UID", value: ep.uid, className: "mono" } : null,
            { term: "Created", value: <Time ms={ep.created} /> },
            { term: "Updated", value: <Time ms={ep.updated} /> },
          ]}
        />
      </Section>
      <SecretSection
        getSecret={() => client.operationalWebhookEndpoint.getSecret(ep.id)}
        rotateSecret={() => client.operationalWebhookEndpoint.rotateSecret(ep.id)}
      />
      <OperationalAttempts endpointId={ep.id} />
      <Section title="Delete endpoint">
        <p className="muted">Events waiting for it are dropped, with its attempts.</p>
        <ConfirmButton
          label="Delete endpoint"
          question="Delete this operational endpoint for good?"
          confirmLabel="Delete"
          onConfirm={async () => {
            try {
              await client.operationalWebhookEndpoint.delete(ep.id);
              announce("Operational endpoint deleted");
              navigate(LIST);
            } catch (err) {
              setError(err);
            }
          }}
        />
      </Section>
    </>
  );
}

/** The attempts to send operational events to the endpoint, newest first. */
function OperationalAttempts({ endpointId }: { endpointId: string }) {
  const { client } = useSession();
  const paged = usePaged(
    (iterator) =>
      client.operationalWebhookEndpoint.listAttempts(endpointId, { limit: 25, iterator }),
    [client, endpointId],
  );
  return (
    <Section title="Delivery attempts" actions={<RefreshButton onClick={paged.reload} />}>
      <PagedTable
        paged={paged}
        label="Attempts"
        columns={["Time", "Status", "Response", "Duration", "Trigger"]}
        empty={
          <Empty title="No attempts yet">
            Attempts appear here once an operational event is sent to this endpoint.
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
          </tr>
        ))}
      </PagedTable>
    </Section>
  );
}
