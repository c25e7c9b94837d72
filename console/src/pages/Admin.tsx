// The admin token's pages: environments and their API keys.
import type { ApiKeyInfoOut as ApiKeyInfo, EnvironmentOut } from "octohooks";
import { useState } from "react";
import {
  ConfirmButton,
  Details,
  Empty,
  FormError,
  PagedTable,
  PageHeader,
  SecretField,
  Section,
  Time,
} from "../components";
import { useSession } from "../context";
import { InlineForm, TextField, useAction } from "../forms";
import { usePaged } from "../hooks";
import { href, navigate } from "../router";

function NewKeyNotice({ apiKey, what }: { apiKey: string; what: string }) {
  const { signInWith } = useSession();
  return (
    <div className="notice notice-key" role="status">
      <p className="strong">{what}: store it now.</p>
      <p className="muted">
        This is the only time the key is shown. Octohooks keeps only its hash and cannot show it
        again.
      </p>
      <SecretField label="New API key" value={apiKey} />
      <div className="actions">
        <button type="button" className="btn" onClick={() => signInWith(apiKey)}>
          Open this environment
        </button>
      </div>
    </div>
  );
}

export function EnvironmentsPage() {
  const { client, announce } = useSession();
  const [name, setName] = useState("");
  const [created, setCreated] = useState<EnvironmentOut | null>(null);
  const { busy, error, run } = useAction();
  const paged = usePaged((iterator) => client.environment.list({ limit: 25, iterator }), [client]);

  const submit = () =>
    run(
      () => client.environment.create({ name: name.trim() }),
      (env) => {
        setCreated(env);
        setName("");
        announce(`Environment ${env.name} created`);
        paged.reload();
      },
    );

  return (
    <>
      <PageHeader title="Environments" />
      <p className="lead">
        Each environment is a separate tenant with its own applications, event types and API keys.
      </p>
      <Section title="New environment">
        <InlineForm
          onSubmit={submit}
          busy={busy}
          error={error}
          submitLabel="Create environment"
          busyLabel="Creating…"
        >
          <TextField
            label="Environment name"
            required
            placeholder="Production"
            value={name}
            onChange={setName}
          />
        </InlineForm>
        {created?.apiKey ? (
          <NewKeyNotice apiKey={created.apiKey} what={`The API key of ${created.name}`} />
        ) : null}
      </Section>
      <Section title="All environments">
        <PagedTable
          paged={paged}
          label="Environments"
          columns={["Name", "ID", "Created"]}
          empty={
            <Empty title="No environments yet">
              Create one above; its first API key is shown once.
            </Empty>
          }
        >
          {paged.items.map((env) => (
            <tr key={env.id}>
              <td>
                <a
                  className="strong"
                  href={`${href("environments", env.id)}?name=${encodeURIComponent(env.name)}`}
                >
                  {env.name}
                </a>
              </td>
              <td className="mono nowrap">{env.id}</td>
              <td className="nowrap">
                <Time ms={env.created} />
              </td>
            </tr>
          ))}
        </PagedTable>
      </Section>
    </>
  );
}

export function EnvironmentPage({ envId, name }: { envId: string; name: string | null }) {
  const { client, announce } = useSession();
  const [newKey, setNewKey] = useState<string | null>(null);
  const { busy, error, setError, run } = useAction();
  const keys = usePaged(
    (iterator) => client.environment.listApiKeys(envId, { limit: 25, iterator }),
    [client, envId],
  );
  const title = name ?? "Environment";

  const createKey = () =>
    run(
      () => client.environment.createApiKey(envId),
      (key) => {
        setNewKey(key.apiKey ?? null);
        announce("API key created");
        keys.reload();
      },
    );

  return (
    <>
      <PageHeader title={title} crumbs={[{ label: "Environments", href: href("environments") }]} />
      <Details items={[{ term: "ID", value: envId, className: "mono" }]} />
      <Section
        title="API keys"
        actions={
          <button type="button" className="btn btn-primary" disabled={busy} onClick={createKey}>
            {busy ? "Creating…" : "Create API key"}
          </button>
        }
      >
        <FormError error={error} />
        {newKey ? <NewKeyNotice apiKey={newKey} what="The new API key" /> : null}
        <PagedTable
          paged={keys}
          label="API keys"
          columns={["Prefix", "ID", "Created", "Last used"]}
          actions
          empty={
            <Empty title="No API keys">
              This environment cannot be used until it has a key: create one.
            </Empty>
          }
        >
          {keys.items.map((k) => (
            <KeyRow key={k.id} k={k} envId={envId} onChanged={keys.reload} />
          ))}
        </PagedTable>
      </Section>
      <Section title="Delete environment">
        <p className="muted">
          Deletes the environment with its keys, applications, endpoints, messages and attempts.
        </p>
        <ConfirmButton
          label="Delete environment"
          question={`Delete ${title} and all its data?`}
          onConfirm={async () => {
            try {
              await client.environment.delete(envId);
              announce(`Environment ${title} deleted`);
              navigate(href("environments"));
            } catch (err) {
              setError(err);
            }
          }}
        />
      </Section>
    </>
  );
}

function KeyRow({ k, envId, onChanged }: { k: ApiKeyInfo; envId: string; onChanged: () => void }) {
  const { client, announce } = useSession();
  const [error, setError] = useState<unknown>(null);
  return (
    <tr>
      <td className="mono strong">{k.prefix ?? "ohk_"}…</td>
      <td className="mono nowrap">{k.id}</td>
      <td className="nowrap">
        <Time ms={k.created} />
      </td>
      <td className="nowrap">
        {k.lastUsed === null ? <span className="muted">Never</span> : <Time ms={k.lastUsed} />}
      </td>
      <td className="row-actions">
        <ConfirmButton
          small
          label="Revoke"
          question={`Revoke ${k.prefix ?? "this key"}…? It stops working at once.`}
          onConfirm={async () => {
            try {
              await client.environment.deleteApiKey(envId, k.id);
              announce("API key revoked");
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
