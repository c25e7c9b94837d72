import type { ApplicationOut } from "octohooks";
import { useId, useState } from "react";
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
import { href, navigate } from "../router";

const PAGE = 25;

export function ApplicationsPage() {
  const { client, announce } = useSession();
  const [search, setSearch] = useState("");
  const [query, setQuery] = useState("");
  const [creating, setCreating] = useState(false);
  const id = useId();
  const paged = usePaged(
    (iterator) =>
      client.application.list({ limit: PAGE, iterator, ...(query ? { search: query } : {}) }),
    [client, query],
  );

  return (
    <>
      <PageHeader title="Applications">
        <button
          type="button"
          className="btn btn-primary"
          aria-expanded={creating}
          onClick={() => setCreating((c) => !c)}
        >
          New application
        </button>
      </PageHeader>
      {creating ? (
        <CreateApplication
          onDone={(app) => {
            setCreating(false);
            if (app) {
              announce(`Application ${app.name} created`);
              navigate(href("apps", app.id));
            }
          }}
        />
      ) : null}
      <Section title="All applications">
        <form
          className="toolbar"
          onSubmit={(e) => {
            e.preventDefault();
            setQuery(search.trim());
          }}
        >
          <label htmlFor={`${id}-search`} className="sr-only">
            Search applications
          </label>
          <input
            id={`${id}-search`}
            className="input"
            type="search"
            placeholder="Search by name or uid"
            value={search}
            onChange={(e) => {
              setSearch(e.target.value);
              if (e.target.value === "") setQuery("");
            }}
          />
          <button type="submit" className="btn">
            Search
          </button>
        </form>
        <PagedTable
          paged={paged}
          label="Applications"
          columns={["Name", "UID", "ID", "Created"]}
          actions
          empty={
            query ? (
              <Empty title={`No application matches “${query}”`}>
                Try another name or uid, or clear the search.
              </Empty>
            ) : (
              <Empty title="No applications yet">
                Create one application per customer of yours, then add its endpoints.
              </Empty>
            )
          }
        >
          {paged.items.map((app) => (
            <ApplicationRow key={app.id} app={app} onChanged={paged.reload} />
          ))}
        </PagedTable>
      </Section>
    </>
  );
}

function ApplicationRow({ app, onChanged }: { app: ApplicationOut; onChanged: () => void }) {
  const { client, announce } = useSession();
  const [error, setError] = useState<unknown>(null);
  return (
    <tr>
      <td>
        <a href={href("apps", app.id)} className="strong">
          {app.name}
        </a>
        <FormError error={error} />
      </td>
      <td className="mono">{app.uid ?? <span className="muted">—</span>}</td>
      <td className="mono nowrap" title={app.id}>
        {app.id}
      </td>
      <td className="nowrap">
        <Time ms={app.created} />
      </td>
      <td className="row-actions">
        <ConfirmButton
          small
          label="Delete"
          question={`Delete ${app.name} with its endpoints and messages?`}
          onConfirm={async () => {
            try {
              await client.application.delete(app.id);
              announce(`Application ${app.name} deleted`);
              onChanged();
            } catch (err) {
              setError(err);
            }
          }}
        />
      </td>
    </tr>
  );
}

export function CreateApplication({ onDone }: { onDone: (app: ApplicationOut | null) => void }) {
  const { client } = useSession();
  const [name, setName] = useState("");
  const [uid, setUid] = useState("");
  const { busy, error, run } = useAction();
  const submit = () =>
    run(
      () =>
        client.application.create({
          name: name.trim(),
          ...(uid.trim() ? { uid: uid.trim() } : {}),
        }),
      onDone,
    );
  return (
    <Section title="New application">
      <InlineForm
        onSubmit={submit}
        busy={busy}
        error={error}
        submitLabel="Create application"
        busyLabel="Creating…"
        onCancel={() => onDone(null)}
      >
        <TextField label="Application name" required value={name} onChange={setName} />
        <TextField
          label="UID (optional)"
          className="input mono"
          pattern="[a-zA-Z0-9_.\-]{1,256}"
          hint="Your own identifier, e.g. your customer id: letters, digits, _ . -"
          value={uid}
          onChange={setUid}
        />
      </InlineForm>
    </Section>
  );
}
