// The endpoint form, for creating and for editing: URL, description, event types from the
// catalog, channels, custom headers and a rate limit.
import type { EndpointOut, EventTypeOut } from "octohooks";
import { type FormEvent, useEffect, useId, useState } from "react";
import { FormError } from "../components";
import { useSession } from "../context";
import { TextField } from "../forms";

export interface EndpointValues {
  url: string;
  description: string;
  eventTypes: string[];
  channels: string[];
  headers: Record<string, string>;
  /** Messages per second; `null`: no limit. */
  rateLimit: number | null;
}

interface HeaderRow {
  key: number;
  name: string;
  value: string;
}

let rowKey = 0;

function rowsOf(headers: Record<string, string>): HeaderRow[] {
  return Object.entries(headers).map(([name, value]) => ({ key: ++rowKey, name, value }));
}

export function splitList(text: string): string[] {
  return text
    .split(/[,\s]+/)
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

export function EndpointForm({
  initial,
  submitLabel,
  onSubmit,
  onCancel,
  disabled = false,
}: {
  initial?: EndpointOut;
  submitLabel: string;
  onSubmit: (values: EndpointValues) => Promise<void>;
  onCancel?: () => void;
  disabled?: boolean;
}) {
  const id = useId();
  const [url, setUrl] = useState(initial?.url ?? "");
  const [description, setDescription] = useState(initial?.description ?? "");
  const [eventTypes, setEventTypes] = useState<string[]>(initial?.eventTypes ?? []);
  const [channels, setChannels] = useState((initial?.channels ?? []).join(", "));
  const [headers, setHeaders] = useState<HeaderRow[]>(rowsOf(initial?.headers ?? {}));
  const [rateLimit, setRateLimit] = useState(
    initial?.rateLimit == null ? "" : String(initial.rateLimit),
  );
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const headerMap: Record<string, string> = {};
    for (const row of headers) {
      if (row.name.trim() === "" && row.value === "") continue;
      headerMap[row.name.trim()] = row.value;
    }
    setBusy(true);
    setError(null);
    onSubmit({
      url: url.trim(),
      description,
      eventTypes,
      channels: splitList(channels),
      headers: headerMap,
      rateLimit: rateLimit.trim() === "" ? null : Number(rateLimit),
    }).then(
      () => setBusy(false),
      (err: unknown) => {
        setBusy(false);
        setError(err);
      },
    );
  };

  return (
    <form className="form" onSubmit={submit} aria-busy={busy}>
      <fieldset disabled={disabled || busy}>
        <TextField
          label="Endpoint URL"
          type="url"
          required
          placeholder="https://example.com/webhooks"
          value={url}
          onChange={setUrl}
        />
        <TextField label="Description" value={description} onChange={setDescription} />
        <EventTypePicker value={eventTypes} onChange={setEventTypes} />
        <TextField
          label="Channels"
          placeholder="project-1, eu"
          hint="Comma-separated. Leave empty to receive messages of every channel."
          value={channels}
          onChange={setChannels}
        />
        <TextField
          label="Rate limit (messages per second)"
          type="number"
          min={1}
          max={65535}
          step={1}
          placeholder="No limit"
          hint="Deliveries over the limit wait their turn; none is dropped. Leave empty for no limit."
          value={rateLimit}
          onChange={setRateLimit}
        />
        <fieldset className="field subfieldset">
          <legend>Custom headers</legend>
          {headers.length === 0 ? <p className="hint">No custom headers.</p> : null}
          {headers.map((row, i) => (
            <div className="header-row" key={row.key}>
              <label className="sr-only" htmlFor={`${id}-hn-${row.key}`}>
                Header {i + 1} name
              </label>
              <input
                id={`${id}-hn-${row.key}`}
                className="input mono"
                placeholder="x-api-version"
                value={row.name}
                onChange={(e) =>
                  setHeaders((hs) =>
                    hs.map((h) => (h.key === row.key ? { ...h, name: e.target.value } : h)),
                  )
                }
              />
              <label className="sr-only" htmlFor={`${id}-hv-${row.key}`}>
                Header {i + 1} value
              </label>
              <input
                id={`${id}-hv-${row.key}`}
                className="input mono"
                placeholder="value"
                value={row.value}
                onChange={(e) =>
                  setHeaders((hs) =>
                    hs.map((h) => (h.key === row.key ? { ...h, value: e.target.value } : h)),
                  )
                }
              />
              <button
                type="button"
                className="btn btn-small"
                aria-label={`Remove header ${i + 1}`}
                onClick={() => setHeaders((hs) => hs.filter((h) => h.key !== row.key))}
              >
                Remove
              </button>
            </div>
          ))}
          <button
            type="button"
            className="btn btn-small"
            onClick={() => setHeaders((hs) => [...hs, { key: ++rowKey, name: "", value: "" }])}
          >
            Add header
          </button>
        </fieldset>
        <FormError error={error} />
        <div className="actions">
          <button type="submit" className="btn btn-primary">
            {busy ? "Saving…" : submitLabel}
          </button>
          {onCancel ? (
            <button type="button" className="btn" onClick={onCancel}>
              Cancel
            </button>
          ) : null}
        </div>
      </fieldset>
    </form>
  );
}

/** Checkboxes from the event type catalog (paged, "Show more"), plus free names. */
export function EventTypePicker({
  value,
  onChange,
}: {
  value: string[];
  onChange: (value: string[]) => void;
}) {
  const { client } = useSession();
  const id = useId();
  const [catalog, setCatalog] = useState<EventTypeOut[]>([]);
  const [iterator, setIterator] = useState<string | null>(null);
  const [done, setDone] = useState(false);
  const [status, setStatus] = useState<"loading" | "ready" | "error">("loading");
  const [other, setOther] = useState("");

  const load = (from: string | null) => {
    setStatus("loading");
    client.eventType.list({ limit: 100, iterator: from }).then(
      (page) => {
        setCatalog((c) => (from === null ? page.data : [...c, ...page.data]));
        if (from === null) {
          // Names chosen that the catalog does not list are edited as free text.
          const names = new Set(page.data.map((t) => t.name));
          setOther(value.filter((v) => !names.has(v)).join(", "));
        }
        setIterator(page.iterator);
        setDone(page.done);
        setStatus("ready");
      },
      () => setStatus("error"),
    );
  };
  // biome-ignore lint/correctness/useExhaustiveDependencies: load once per client
  useEffect(() => load(null), [client]);

  const known = new Set(catalog.map((t) => t.name));

  const toggle = (name: string, on: boolean) => {
    const set = new Set(value);
    if (on) set.add(name);
    else set.delete(name);
    onChange([...set]);
  };

  const visible = catalog.filter((t) => !t.archived || value.includes(t.name));

  return (
    <fieldset className="field subfieldset">
      <legend>Event types</legend>
      <p className="hint">Leave all unchecked to receive every event type.</p>
      {status === "error" ? (
        <p className="hint">The event type catalog could not be loaded; type names below.</p>
      ) : null}
      {visible.length > 0 ? (
        <div className="checkbox-grid">
          {visible.map((t) => (
            <label className="checkbox" key={t.name}>
              <input
                type="checkbox"
                checked={value.includes(t.name)}
                onChange={(e) => toggle(t.name, e.target.checked)}
              />
              <span className="mono">{t.name}</span>
              {t.archived ? <span className="muted"> (archived)</span> : null}
            </label>
          ))}
        </div>
      ) : status === "ready" ? (
        <p className="hint">The catalog is empty.</p>
      ) : null}
      {status === "loading" ? <p className="hint">Loading event types…</p> : null}
      {!done && status === "ready" ? (
        <button type="button" className="btn btn-small" onClick={() => load(iterator)}>
          Show more event types
        </button>
      ) : null}
      <div className="field">
        <label htmlFor={`${id}-other`}>Other event types</label>
        <input
          id={`${id}-other`}
          className="input mono"
          placeholder="invoice.paid, user.created"
          value={other}
          onChange={(e) => {
            setOther(e.target.value);
            const typed = splitList(e.target.value);
            onChange([...value.filter((v) => known.has(v)), ...typed]);
          }}
        />
      </div>
    </fieldset>
  );
}
