// Recovery after an outage: resend what failed to the endpoint in a window, or send it what it
// never got; both run as background tasks, followed here until they end.
import {
  type BackgroundTaskKind,
  type BackgroundTaskOut,
  type EndpointOut,
  WaitTimeoutError,
} from "octohooks";
import { useEffect, useRef, useState } from "react";
import {
  Details,
  Empty,
  ErrorBox,
  FormError,
  PagedTable,
  RefreshButton,
  Section,
  Time,
} from "../components";
import { useSession } from "../context";
import { TextField, useAction } from "../forms";
import { usePaged } from "../hooks";

const DAY_MS = 86_400_000;
/** How often a running task is read again. */
const POLL_MS = 1_000;
/** How long the page follows one task before it asks whether to go on. */
const WATCH_MS = 600_000;

const TASK_LABELS: Record<BackgroundTaskKind, string> = {
  "endpoint.recover": "Recover failed messages",
  "endpoint.replay": "Replay missing messages",
};

export function EndpointRecovery({ appId, endpoint }: { appId: string; endpoint: EndpointOut }) {
  const { client, announce } = useSession();
  const [since, setSince] = useState(() => localInput(Date.now() - DAY_MS));
  const [until, setUntil] = useState("");
  const [task, setTask] = useState<BackgroundTaskOut | null>(null);
  const { busy, error, run } = useAction();
  const tasks = usePaged(
    (iterator) => client.backgroundTask.list({ endpointId: endpoint.id, limit: 10, iterator }),
    [client, endpoint.id],
  );

  const form = useRef<HTMLFormElement>(null);

  // Two tasks and no default one: Enter in a time field starts neither (the form has no submit
  // button, and a submit is ignored); each button checks the window, then starts its own task.
  const start = (replay: boolean) => {
    if (!form.current?.reportValidity()) return;
    const range = { since: new Date(since), until: until ? new Date(until) : undefined };
    run(
      () =>
        replay
          ? client.endpoint.replayMissing(appId, endpoint.id, range)
          : client.endpoint.recover(appId, endpoint.id, range),
      (started) => {
        setTask(started);
        tasks.reload();
        announce(`${TASK_LABELS[started.task]}: started`);
      },
    );
  };

  return (
    <Section title="Recover" actions={<RefreshButton onClick={tasks.reload} />}>
      <p className="muted">
        After an outage, send the endpoint again what it missed among the messages created in a
        window: <strong>recover</strong> resends every message whose delivery failed for good;{" "}
        <strong>replay</strong> sends the messages it never got (sent before it existed or while it
        was disabled) that its event types and channels take. Each message goes once.
      </p>
      <form ref={form} className="form form-row" onSubmit={(e) => e.preventDefault()}>
        <TextField
          label="Since"
          type="datetime-local"
          required
          value={since}
          onChange={setSince}
          hint="Messages created from this time (your local time)."
        />
        <TextField
          label="Until (optional)"
          type="datetime-local"
          value={until}
          onChange={setUntil}
          hint="…and before this one; now when empty."
        />
        <div className="actions">
          <button
            type="button"
            className="btn"
            disabled={busy || !endpoint.enabled}
            onClick={() => start(false)}
          >
            Recover failed messages
          </button>
          <button
            type="button"
            className="btn"
            disabled={busy || !endpoint.enabled}
            onClick={() => start(true)}
          >
            Replay missing messages
          </button>
        </div>
      </form>
      {!endpoint.enabled ? (
        <p className="hint">Enable the endpoint to recover or replay its messages.</p>
      ) : null}
      <FormError error={error} />
      {task ? (
        <TaskProgress
          key={task.id}
          started={task}
          onEnd={(ended) => {
            tasks.reload();
            announce(`${TASK_LABELS[ended.task]}: ${ended.status}`);
          }}
        />
      ) : null}
      <h3 className="subheading">Recent tasks</h3>
      <PagedTable
        paged={tasks}
        label="Tasks"
        columns={["Started", "Task", "Window", "Status", "Scanned", "Queued"]}
        empty={
          <Empty title="No tasks yet">Recoveries and replays of this endpoint appear here.</Empty>
        }
      >
        {tasks.items.map((t) => (
          <tr key={t.id}>
            <td className="nowrap">
              <Time ms={t.created} />
            </td>
            <td>{TASK_LABELS[t.task]}</td>
            <td>
              <Time ms={t.since} /> to <Time ms={t.until} />
            </td>
            <td>
              <TaskStatusBadge status={t.status} />
            </td>
            <td>{t.messagesScanned}</td>
            <td>{t.messagesQueued}</td>
          </tr>
        ))}
      </PagedTable>
    </Section>
  );
}

/** One task, read again every second until it ends; `onEnd` is told when it does. */
function TaskProgress({
  started,
  onEnd,
}: {
  started: BackgroundTaskOut;
  onEnd: (task: BackgroundTaskOut) => void;
}) {
  const { client } = useSession();
  const [task, setTask] = useState(started);
  const [error, setError] = useState<unknown>(null);
  const [round, setRound] = useState(0);
  const onEndRef = useRef(onEnd);
  onEndRef.current = onEnd;

  // biome-ignore lint/correctness/useExhaustiveDependencies: round restarts the polling
  useEffect(() => {
    const abort = new AbortController();
    setError(null);
    client.backgroundTask
      .waitFor(started.id, {
        intervalMs: POLL_MS,
        timeoutMs: WATCH_MS,
        signal: abort.signal,
        onProgress: (read) => {
          if (!abort.signal.aborted) setTask(read);
        },
      })
      .then(
        (ended) => onEndRef.current(ended),
        (err: unknown) => {
          if (!abort.signal.aborted) setError(err);
        },
      );
    return () => abort.abort();
  }, [client, started.id, round]);

  return (
    <div className="notice" aria-live="polite">
      <Details
        kind="details"
        items={[
          { term: "Task", value: TASK_LABELS[task.task] },
          { term: "Status", value: <TaskStatusBadge status={task.status} /> },
          { term: "Messages scanned", value: String(task.messagesScanned) },
          { term: "Messages queued", value: String(task.messagesQueued) },
          {
            term: "Window",
            value: (
              <>
                <Time ms={task.since} /> to <Time ms={task.until} />
              </>
            ),
          },
          task.failure ? { term: "Failure", value: task.failure } : null,
        ]}
      />
      {task.status === "running" && !error ? (
        <p className="hint">Running: the dispatchers queue the messages batch by batch.</p>
      ) : null}
      {error instanceof WaitTimeoutError ? (
        <p className="hint">
          Still running after {WATCH_MS / 60_000} minutes.{" "}
          <button type="button" className="btn btn-small" onClick={() => setRound((r) => r + 1)}>
            Keep watching
          </button>
        </p>
      ) : error ? (
        <ErrorBox error={error} onRetry={() => setRound((r) => r + 1)} />
      ) : null}
    </div>
  );
}

function TaskStatusBadge({ status }: { status: BackgroundTaskOut["status"] }) {
  const tone = status === "finished" ? "ok" : status === "failed" ? "bad" : "info";
  return <span className={`badge badge-${tone}`}>{status}</span>;
}

/** `YYYY-MM-DDTHH:mm` in local time, as a `datetime-local` input holds it. */
function localInput(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
