import type { MessageDestinationStatus, MessageListOptions } from "octohooks";
import { type FormEvent, useId, useState } from "react";
import {
  Empty,
  ExpungedBadge,
  PagedTable,
  PageHeader,
  Section,
  shortId,
  Time,
} from "../components";
import { useSession } from "../context";
import { TextField } from "../forms";
import { usePaged } from "../hooks";
import { href, navigate } from "../router";
import { appCrumbs, useApplication } from "./Application";

const STATUSES = ["", "pending", "failed", "success"] as const;

/** `datetime-local` text (local time) → epoch ms, or undefined. */
function localToMs(value: string): number | undefined {
  if (!value) return undefined;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? undefined : ms;
}

export function MessagesPage({ appId, query }: { appId: string; query: URLSearchParams }) {
  const session = useSession();
  const { client } = session;
  const app = useApplication(appId);
  const id = useId();
  const filters = {
    eventType: query.get("eventType") ?? "",
    channel: query.get("channel") ?? "",
    after: query.get("after") ?? "",
    before: query.get("before") ?? "",
    status: query.get("status") ?? "",
  };
  const [form, setForm] = useState(filters);
  const key = JSON.stringify(filters);

  const paged = usePaged(
    (iterator) => {
      const options: MessageListOptions = { limit: 25, iterator };
      if (filters.eventType) options.eventType = filters.eventType;
      if (filters.channel) options.channel = filters.channel;
      const after = localToMs(filters.after);
      const before = localToMs(filters.before);
      if (after !== undefined) options.after = new Date(after);
      if (before !== undefined) options.before = new Date(before);
      if (isDeliveryState(filters.status)) options.status = filters.status;
      return client.message.list(appId, options);
    },
    [client, appId, key],
  );

  const apply = (e: FormEvent) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) if (v.trim()) q.set(k, v.trim());
    const qs = q.toString();
    navigate(`${href("apps", appId, "messages")}${qs ? `?${qs}` : ""}`);
  };
  const filtered = Object.values(filters).some((v) => v !== "");

  return (
    <>
      <PageHeader title="Message log" crumbs={appCrumbs(session.mode, app.value, appId)}>
        <button type="button" className="btn" onClick={paged.reload}>
          Refresh
        </button>
      </PageHeader>
      <Section title="Filters">
        <form className="form filters" onSubmit={apply}>
          <TextField
            label="Event type"
            className="input mono"
            placeholder="invoice.paid, invoice.voided"
            value={form.eventType}
            onChange={(v) => setForm({ ...form, eventType: v })}
          />
          <TextField
            label="Channel"
            className="input mono"
            value={form.channel}
            onChange={(v) => setForm({ ...form, channel: v })}
          />
          <TextField
            label="Sent after"
            type="datetime-local"
            step="1"
            value={form.after}
            onChange={(v) => setForm({ ...form, after: v })}
          />
          <TextField
            label="Sent before"
            type="datetime-local"
            step="1"
            value={form.before}
            onChange={(v) => setForm({ ...form, before: v })}
          />
          <div className="field">
            <label htmlFor={`${id}-status`}>Delivery state</label>
            <select
              id={`${id}-status`}
              className="input"
              value={form.status}
              onChange={(e) => setForm({ ...form, status: e.target.value })}
            >
              {STATUSES.map((s) => (
                <option key={s} value={s}>
                  {s === "" ? "Any" : s}
                </option>
              ))}
            </select>
          </div>
          <div className="actions filters-actions">
            <button type="submit" className="btn btn-primary">
              Apply filters
            </button>
            {filtered ? (
              <button
                type="button"
                className="btn"
                onClick={() => {
                  setForm({ eventType: "", channel: "", after: "", before: "", status: "" });
                  navigate(href("apps", appId, "messages"));
                }}
              >
                Clear
              </button>
            ) : null}
          </div>
        </form>
      </Section>
      <Section title="Messages">
        <PagedTable
          paged={paged}
          label="Messages"
          columns={["Event type", "Message", "Channels", "Sent"]}
          empty={
            filtered ? (
              <Empty title="No message matches these filters">
                Widen the time range or clear the filters.
              </Empty>
            ) : (
              <Empty title="No messages yet">
                Messages appear here once you send them to this application through the API.
              </Empty>
            )
          }
        >
          {paged.items.map((m) => (
            <tr key={m.id}>
              <td>
                <a className="mono strong" href={href("apps", appId, "messages", m.id)}>
                  {m.eventType}
                </a>
                {m.expunged ? (
                  <>
                    {" "}
                    <ExpungedBadge />
                  </>
                ) : null}
              </td>
              <td className="mono nowrap" title={m.id}>
                {m.uid ?? shortId(m.id)}
              </td>
              <td>
                {m.channels.length ? (
                  <span className="tags">
                    {m.channels.map((c) => (
                      <span key={c} className="tag mono">
                        {c}
                      </span>
                    ))}
                  </span>
                ) : (
                  <span className="muted">—</span>
                )}
              </td>
              <td className="nowrap">
                <Time ms={m.created} />
              </td>
            </tr>
          ))}
        </PagedTable>
      </Section>
    </>
  );
}

function isDeliveryState(value: string | undefined): value is MessageDestinationStatus {
  return value === "pending" || value === "success" || value === "failed";
}
