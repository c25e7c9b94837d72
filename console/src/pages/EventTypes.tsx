import type { EventTypeOut } from "octohooks";
import { type FormEvent, useState } from "react";
import {
  ConfirmButton,
  Empty,
  FormError,
  PagedTable,
  PageHeader,
  Section,
  Time,
} from "../components";
import { useSession } from "../context";
import { InlineForm, TextField, useAction } from "../forms";
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
        <PagedTable
          paged={paged}
          label="Event types"
          columns={["Name", "Description", "State", "Updated"]}
          actions
          empty={
            <Empty title="No event types yet">
              Add the event types you send (for example <code>invoice.paid</code>) so that endpoints
              can subscribe to them.
            </Empty>
          }
        >
          {paged.items.map((t) => (
            <EventTypeRow key={t.name} type={t} onChanged={paged.reload} />
          ))}
        </PagedTable>
      </Section>
    </>
  );
}

function EventTypeRow({ type, onChanged }: { type: EventTypeOut; onChanged: () => void }) {
  const { client, announce } = useSession();
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
            <TextField
              label={`Description of ${type.name}`}
              value={description}
              onChange={setDescription}
            />
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
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const { busy, error, run } = useAction();
  const submit = () =>
    run(() => client.eventType.create({ name: name.trim(), description }), onDone);
  return (
    <Section title="New event type">
      <InlineForm
        onSubmit={submit}
        busy={busy}
        error={error}
        submitLabel="Create event type"
        busyLabel="Creating…"
        onCancel={() => onDone(null)}
      >
        <TextField
          label="Event type name"
          className="input mono"
          required
          placeholder="invoice.paid"
          pattern="[a-zA-Z0-9_.\-]{1,256}"
          value={name}
          onChange={setName}
        />
        <TextField label="Description" value={description} onChange={setDescription} />
      </InlineForm>
    </Section>
  );
}
