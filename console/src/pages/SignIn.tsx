import { type FormEvent, useState } from "react";
import { describeError, makeClient, tokenKind } from "../api";
import { TextField } from "../forms";

export function SignInPage({ onSignIn }: { onSignIn: (token: string) => void }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const t = token.trim();
    if (!t) return;
    setBusy(true);
    setError(null);
    // Check the token with one cheap call of the kind it opens.
    const client = makeClient(t);
    try {
      if (tokenKind(t) === "admin") await client.environment.list({ limit: 1 });
      else await client.application.list({ limit: 1 });
      onSignIn(t);
    } catch (err) {
      const info = describeError(err);
      setError(
        info.status === 401
          ? "That token was not accepted. Check that it is complete and not revoked."
          : `${info.title}: ${info.detail}`,
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="signin" id="main">
      <div className="signin-card">
        <p className="brand brand-large">
          <span className="brand-mark" aria-hidden="true">
            ◆
          </span>
          Octohooks
        </p>
        <h1>Sign in to the console</h1>
        <form className="form" onSubmit={submit}>
          <fieldset disabled={busy}>
            <TextField
              label="API key or admin token"
              className="input mono"
              type="password"
              autoComplete="off"
              spellCheck={false}
              required
              hint={
                <>
                  An environment API key (<code>ohk_…</code>) opens its applications; the admin
                  token opens environments and keys. It is kept in this tab only, until you sign
                  out.
                </>
              }
              value={token}
              onChange={setToken}
            />
            {error ? (
              <p className="form-error" role="alert">
                {error}
              </p>
            ) : null}
            <button type="submit" className="btn btn-primary btn-block">
              {busy ? "Signing in…" : "Sign in"}
            </button>
          </fieldset>
        </form>
      </div>
    </main>
  );
}
