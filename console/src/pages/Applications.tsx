import type { ApplicationOut } from "octohooks";
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
        <ListState
          paged={paged}
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
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">UID</th>
                  <th scope="col">ID</th>
                  <th scope="col">Created</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {paged.items.map((app) => (
                  <ApplicationRow key={app.id} app={app} onChanged={paged.reload} />
                ))}
              </tbody>
            </table>
          </div>
          <Pager paged={paged} label="Applications" />
        </ListState>
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
  const id = useId();
  const [name, setName] = useState("");
  const [uid, setUid] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    client.application
      .create({ name: name.trim(), ...(uid.trim() ? { uid: uid.trim() } : {}) })
      .then(
        (app) => {
          setBusy(false);
          onDone(app);
        },
        (err: unknown) => {
          setBusy(false);
          setError(err);
        },
      );
  };
  return (
    <Section title="New application">
      <form className="form form-inline" onSubmit={submit}>
        <fieldset disabled={busy}>
          <div className="field">
            <label htmlFor={`${id}-name`}>Application name</label>
            <input
              id={`${id}-name`}
              className="input"
              required
              value={name}
              onChange={(e) => setName(e.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor={`${id}-uid`}>UID (optional)</label>
            <input
              id={`${id}-uid`}
              className="input mono"
              pattern="[a-zA-Z0-9_.\-]{1,256}"
              aria-describedby={`${id}-uid-hint`}
              value={uid}
              onChange={(e) => setUid(e.target.value)}
            />
            <p className="hint" id={`${id}-uid-hint`}>
              Your own identifier, e.g. your customer id: letters, digits, _ . -
            </p>
          </div>
          <FormError error={error} />
          <div className="actions">
            <button type="submit" className="btn btn-primary">
              {busy ? "Creating…" : "Create application"}
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
