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
import { InlineForm, TextAreaField, TextField, useAction } from "../forms";
import { usePaged } from "../hooks";

export function EventTypesPage() {
  const { client, announce } = useSession();
  const [creating, setCreating] = useState(false);
  const [importing, setImporting] = useState(false);
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
        <button
          type="button"
          className="btn"
          aria-expanded={importing}
          onClick={() => setImporting((i) => !i)}
        >
          Import OpenAPI
        </button>
      </PageHeader>
      <p className="lead">
        The catalog of the kinds of message you send. Endpoints pick from it. A type may carry JSON
        Schemas of its payload; when it enforces them, messages that do not match are refused.
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
      {importing ? (
        <ImportOpenApi
          onDone={(count) => {
            setImporting(false);
            if (count !== null) {
              announce(`${count} event type${count === 1 ? "" : "s"} imported`);
              paged.reset();
            }
          }}
        />
      ) : null}
      <Section title="Catalog">
        <PagedTable
          paged={paged}
          label="Event types"
          columns={["Name", "Description", "Schema", "State", "Updated"]}
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

/** The latest schema version of a type, if it has schemas. */
function latestVersion(type: EventTypeOut): number | null {
  const versions = Object.keys(type.schemas ?? {}).map(Number);
  return versions.length === 0 ? null : Math.max(...versions);
}

/** `text` as the `schemas` map, or `null` for none; throws a readable error otherwise. */
function parseSchemas(text: string): Record<string, unknown> | null {
  if (text.trim() === "") return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`Schemas are not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error('Schemas must be a JSON object of versions, e.g. {"1": {"type": "object"}}');
  }
  return parsed as Record<string, unknown>;
}

function EventTypeRow({ type, onChanged }: { type: EventTypeOut; onChanged: () => void }) {
  const { client, announce } = useSession();
  const [editing, setEditing] = useState(false);
  const [description, setDescription] = useState(type.description);
  const [groupName, setGroupName] = useState(type.groupName ?? "");
  const [archived, setArchived] = useState(type.archived);
  const [deprecated, setDeprecated] = useState(type.deprecated);
  const [schemas, setSchemas] = useState(type.schemas ? JSON.stringify(type.schemas, null, 2) : "");
  const [enforce, setEnforce] = useState(type.schemaValidation === "enforce");
  const [error, setError] = useState<unknown>(null);
  const save = (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    let parsed: Record<string, unknown> | null;
    try {
      parsed = parseSchemas(schemas);
    } catch (err) {
      setError(err);
      return;
    }
    client.eventType
      .update(type.name, {
        description,
        archived,
        deprecated,
        groupName: groupName.trim() === "" ? null : groupName,
        schemas: parsed,
        schemaValidation: enforce ? "enforce" : "off",
      })
      .then(
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
        <td colSpan={5}>
          <form className="form" onSubmit={save}>
            <TextField
              label={`Description of ${type.name}`}
              value={description}
              onChange={setDescription}
            />
            <TextField
              label={`Group of ${type.name}`}
              value={groupName}
              onChange={setGroupName}
              placeholder="billing"
            />
            <TextAreaField
              label={`Schemas of ${type.name} (JSON)`}
              value={schemas}
              onChange={setSchemas}
              placeholder={'{"1": {"type": "object", "examples": [{"id": "inv_1"}]}}'}
              hint={
                <>
                  Version number → JSON Schema; the highest version is the latest.{" "}
                  <code>examples[0]</code> of version 1 is what “Send example” sends.
                </>
              }
            />
            <div className="checkbox-grid">
              <label className="checkbox">
                <input
                  type="checkbox"
                  checked={enforce}
                  onChange={(e) => setEnforce(e.target.checked)}
                />
                Enforce the latest schema (refuse messages that do not match)
              </label>
              <label className="checkbox">
                <input
                  type="checkbox"
                  checked={deprecated}
                  onChange={(e) => setDeprecated(e.target.checked)}
                />
                Deprecated
              </label>
              <label className="checkbox">
                <input
                  type="checkbox"
                  checked={archived}
                  onChange={(e) => setArchived(e.target.checked)}
                />
                Archived
              </label>
            </div>
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
  const latest = latestVersion(type);
  return (
    <tr>
      <td>
        <span className="mono strong">{type.name}</span>
        {type.groupName ? <div className="muted small">{type.groupName}</div> : null}
      </td>
      <td>{type.description || <span className="muted">—</span>}</td>
      <td className="nowrap">
        {latest === null ? (
          <span className="muted">—</span>
        ) : (
          <>
            v{latest}{" "}
            {type.schemaValidation === "enforce" ? (
              <span className="badge badge-warn">enforced</span>
            ) : (
              <span className="badge badge-info">documented</span>
            )}
          </>
        )}
      </td>
      <td>
        {type.archived ? (
          <span className="badge badge-info">archived</span>
        ) : type.deprecated ? (
          <span className="badge badge-warn">deprecated</span>
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

function ImportOpenApi({ onDone }: { onDone: (count: number | null) => void }) {
  const { client } = useSession();
  const [document, setDocument] = useState("");
  const { busy, error, run } = useAction();
  const submit = () =>
    run(
      () => client.eventType.importOpenApi({ specRaw: document }),
      (answer) => onDone(answer.modified.length),
    );
  return (
    <Section title="Import from OpenAPI">
      <InlineForm
        onSubmit={submit}
        busy={busy}
        error={error}
        submitLabel="Import event types"
        busyLabel="Importing…"
        onCancel={() => onDone(null)}
      >
        <TextAreaField
          label="OpenAPI document (JSON)"
          value={document}
          onChange={setDocument}
          required
          rows={12}
          hint={
            <>
              Each entry of its <code>webhooks</code> becomes an event type (or updates the one of
              that name): description, request body schema as version 1, example. All or nothing.
            </>
          }
        />
      </InlineForm>
    </Section>
  );
}
