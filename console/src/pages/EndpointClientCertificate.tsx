// The endpoint's client certificate for mutual TLS: its fingerprint when one is set (removable),
// else a form for a PEM chain and its private key. The key goes to the API once and is never
// read back.
import { ApiError, type ClientCertificateOut } from "octohooks";
import { useState } from "react";
import { ConfirmButton, Details, ErrorBox, FormError, Loading, Section } from "../components";
import { useSession } from "../context";
import { InlineForm, TextAreaField, useAction } from "../forms";
import { useAsync } from "../hooks";

/** The certificate, or null when the endpoint has none (the API answers 404 then). */
function noneWhenMissing(error: unknown): null {
  if (error instanceof ApiError && error.status === 404) return null;
  throw error;
}

export function EndpointClientCertificate({
  appId,
  endpointId,
}: {
  appId: string;
  endpointId: string;
}) {
  const { client, readOnly, announce } = useSession();
  const current = useAsync<ClientCertificateOut | null>(
    () => client.endpoint.getClientCertificate(appId, endpointId).catch(noneWhenMissing),
    [client, appId, endpointId],
  );
  return (
    <Section title="Client certificate (mutual TLS)">
      <p className="muted">
        Deliveries to this endpoint present this certificate to a receiver that asks for one. The
        private key is stored sealed and never shown again.
      </p>
      {current.status === "loading" ? (
        <Loading />
      ) : current.status === "error" ? (
        <ErrorBox error={current.error} onRetry={current.reload} />
      ) : current.value ? (
        <CurrentCertificate
          appId={appId}
          endpointId={endpointId}
          current={current.value}
          onRemoved={() => {
            current.setValue(null);
            announce("Client certificate removed");
          }}
        />
      ) : readOnly ? (
        <p className="muted">None: deliveries present no certificate.</p>
      ) : (
        <SetClientCertificate
          appId={appId}
          endpointId={endpointId}
          onSaved={(saved) => {
            current.setValue(saved);
            announce("Client certificate saved");
          }}
        />
      )}
    </Section>
  );
}

/** The certificate's fingerprint and chain length, and Remove (confirmed) unless read-only. */
function CurrentCertificate({
  appId,
  endpointId,
  current,
  onRemoved,
}: {
  appId: string;
  endpointId: string;
  current: ClientCertificateOut;
  onRemoved: () => void;
}) {
  const { client, readOnly } = useSession();
  const [error, setError] = useState<unknown>(null);
  const chain = current.certificate.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
  return (
    <>
      <Details
        kind="details"
        items={[
          {
            term: "SHA-256 fingerprint",
            value: current.fingerprintSha256,
            className: "mono break",
          },
          { term: "Certificates in the chain", value: String(chain) },
        ]}
      />
      <FormError error={error} />
      {!readOnly ? (
        <div className="actions">
          <ConfirmButton
            label="Remove certificate"
            question="Remove the client certificate? Deliveries present none from then on."
            confirmLabel="Remove"
            onConfirm={async () => {
              setError(null);
              try {
                await client.endpoint.deleteClientCertificate(appId, endpointId);
                onRemoved();
              } catch (err) {
                setError(err);
              }
            }}
          />
        </div>
      ) : null}
    </>
  );
}

/** The form for a certificate chain and its key, both PEM. */
function SetClientCertificate({
  appId,
  endpointId,
  onSaved,
}: {
  appId: string;
  endpointId: string;
  onSaved: (saved: ClientCertificateOut) => void;
}) {
  const { client } = useSession();
  const [certificate, setCertificate] = useState("");
  const [privateKey, setPrivateKey] = useState("");
  const { busy, error, run } = useAction();
  const submit = () =>
    run(
      () => client.endpoint.setClientCertificate(appId, endpointId, { certificate, privateKey }),
      onSaved,
    );
  return (
    <InlineForm
      onSubmit={submit}
      busy={busy}
      error={error}
      submitLabel="Save certificate"
      busyLabel="Saving…"
    >
      <TextAreaField
        label="Certificate (PEM)"
        value={certificate}
        onChange={setCertificate}
        required
        rows={6}
        placeholder="-----BEGIN CERTIFICATE-----"
        hint="The client's certificate first, then any intermediates."
      />
      <TextAreaField
        label="Private key (PEM)"
        value={privateKey}
        onChange={setPrivateKey}
        required
        rows={6}
        autoComplete="off"
        placeholder="-----BEGIN PRIVATE KEY-----"
        hint="The first certificate's key (RSA, ECDSA or ed25519)."
      />
    </InlineForm>
  );
}
