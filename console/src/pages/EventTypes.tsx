import type { EventTypeOut } from "octohooks";
import { type FormEvent, useId, useState } from "react";
import {
  ConfirmButton,
  Empty,
  FormError,
  ListState,
  PageHeader,
  Pager,
  Section,
  Time,
} from "../components";
import { useSession } from "../context";
import { usePaged } from "../hooks";

export function EventTypesPage() {
  const { client, announce } = useSession();
  const [creating, setCreating] = useState(false);
  const paged = usePaged((iterator) => client.eventType.list({ limit: 50, iterator }), [client]);
  return (
    <>
      <PageHeader title="Event types">
        <button
          type="button"
          className="btn btn-primary"
          aria-expanded={creating}
          onClick={() => setCreating((c) => !c)}
        >
          New event type
        </button>
      </PageHeader>
      <p className="lead">
        The catalog of the kinds of message you send. Endpoints pick from it; messages are not
        checked against it.
      </p>
      {creating ? (
        <CreateEventType
          onDone={(t) => {
            setCreating(false);
            if (t) {
              announce(`Event type ${t.name} created`);
              paged.reset();
            }
          }}
        />
      ) : null}
      <Section title="Catalog">
        <ListState
          paged={paged}
          empty={
            <Empty title="No event types yet">
              Add the event types you send (for example <code>invoice.paid</code>) so that endpoints
              can subscribe to them.
            </Empty>
          }
        >
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Description</th>
                  <th scope="col">State</th>
                  <th scope="col">Updated</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {paged.items.map((t) => (
                  <EventTypeRow key={t.name} type={t} onChanged={paged.reload} />
                ))}
              </tbody>
            </table>
          </div>
          <Pager paged={paged} label="Event types" />
        </ListState>
      </Section>
    </>
  );
}

function EventTypeRow({ type, onChanged }: { type: EventTypeOut; onChanged: () => void }) {
  const { client, announce } = useSession();
  const id = useId();
  const [editing, setEditing] = useState(false);
  const [description, setDescription] = useState(type.description);
  const [archived, setArchived] = useState(type.archived);
  const [error, setError] = useState<unknown>(null);
  const save = (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    client.eventType.update(type.name, { description, archived }).then(
      () => {
        setEditing(false);
        announce(`Event type ${type.name} saved`);
        onChanged();
      },
      (err: unknown) => setError(err),
    );
  };
  if (editing) {
    return (
      <tr>
        <td className="mono strong">{type.name}</td>
        <td colSpan={4}>
          <form className="form form-row" onSubmit={save}>
            <div className="field">
              <label htmlFor={`${id}-d`}>Description of {type.name}</label>
              <input
                id={`${id}-d`}
                className="input"
                value={description}
                onChange={(e) => setDescription(e.target.value)}
              />
            </div>
            <label className="checkbox">
              <input
                type="checkbox"
                checked={archived}
                onChange={(e) => setArchived(e.target.checked)}
              />
              Archived
            </label>
            <div className="actions">
              <button type="submit" className="btn btn-primary btn-small">
                Save
              </button>
              <button type="button" className="btn btn-small" onClick={() => setEditing(false)}>
                Cancel
              </button>
            </div>
            <FormError error={error} />
          </form>
        </td>
      </tr>
    );
  }
  return (
    <tr>
      <td className="mono strong">{type.name}</td>
      <td>{type.description || <span className="muted">—</span>}</td>
      <td>
        {type.archived ? (
          <span className="badge badge-info">archived</span>
        ) : (
          <span className="badge badge-ok">active</span>
        )}
      </td>
      <td className="nowrap">
        <Time ms={type.updated} />
      </td>
      <td className="row-actions">
        <button
          type="button"
          className="btn btn-small"
          aria-label={`Edit ${type.name}`}
          onClick={() => setEditing(true)}
        >
          Edit
        </button>
        <ConfirmButton
          small
          label="Delete"
          question={`Delete ${type.name}?`}
          onConfirm={async () => {
            try {
              await client.eventType.delete(type.name);
              announce(`Event type ${type.name} deleted`);
              onChanged();
            } catch (err) {
              setError(err);
            }
          }}
        />
        <FormError error={error} />
      </td>
    </tr>
  );
}

function CreateEventType({ onDone }: { onDone: (t: EventTypeOut | null) => void }) {
  const { client } = useSession();
  const id = useId();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    client.eventType.create({ name: name.trim(), description }).then(
      (t) => {
        setBusy(false);
        onDone(t);
      },
      (err: unknown) => {
        setBusy(false);
        setError(err);
      },
    );
  };
  return (
    <Section title="New event type">
      <form className="form form-inline" onSubmit={submit}>
        <fieldset disabled={busy}>
          <div className="field">
            <label htmlFor={`${id}-name`}>Event type name</label>
            <input
              id={`${id}-name`}
              className="input mono"
              required
              placeholder="invoice.paid"
              pattern="[a-zA-Z0-9_.\-]{1,256}"
              value={name}
              onChange={(e) => setName(e.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor={`${id}-desc`}>Description</label>
            <input
              id={`${id}-desc`}
              className="input"
              value={description}
              onChange={(e) => setDescription(e.target.value)}
            />
          </div>
          <FormError error={error} />
          <div className="actions">
            <button type="submit" className="btn btn-primary">
              {busy ? "Creating…" : "Create event type"}
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
