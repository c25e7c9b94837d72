// The endpoint's figures: attempts in the last day or week (whole hours, as the API counts
// them), and the deliveries that wait now.
import type { EndpointStatsOut } from "octohooks";
import { useId, useState } from "react";
import { Details, ErrorBox, Loading, RefreshButton, Section, Time } from "../components";
import { useSession } from "../context";
import { useAsync } from "../hooks";

const HOUR_MS = 3_600_000;
const WINDOWS = [
  { key: "day", label: "Last 24 hours", hours: 24 },
  { key: "week", label: "Last 7 days", hours: 7 * 24 },
] as const;
type WindowKey = (typeof WINDOWS)[number]["key"];

export function EndpointStats({ appId, endpointId }: { appId: string; endpointId: string }) {
  const { client } = useSession();
  const id = useId();
  const [windowKey, setWindowKey] = useState<WindowKey>("day");
  const span = WINDOWS.find((w) => w.key === windowKey) ?? WINDOWS[0];
  const stats = useAsync(
    () =>
      client.endpoint.stats(appId, endpointId, {
        since: new Date(Date.now() - span.hours * HOUR_MS),
      }),
    [client, appId, endpointId, span.hours],
  );
  return (
    <Section
      title="Statistics"
      actions={
        <>
          <label className="sr-only" htmlFor={`${id}-window`}>
            Statistics window
          </label>
          <select
            id={`${id}-window`}
            className="input input-small"
            value={windowKey}
            onChange={(e) => setWindowKey(e.target.value as WindowKey)}
          >
            {WINDOWS.map((w) => (
              <option key={w.key} value={w.key}>
                {w.label}
              </option>
            ))}
          </select>
          <RefreshButton onClick={stats.reload} />
        </>
      }
    >
      {stats.status === "loading" ? (
        <Loading />
      ) : stats.status === "error" ? (
        <ErrorBox error={stats.error} onRetry={stats.reload} />
      ) : (
        <StatsDetails stats={stats.value} label={span.label.toLowerCase()} />
      )}
    </Section>
  );
}

function StatsDetails({ stats, label }: { stats: EndpointStatsOut; label: string }) {
  const attempts = stats.success + stats.failure;
  return (
    <>
      <Details
        kind="details"
        items={[
          { term: "Successful attempts", value: count(stats.success) },
          { term: "Failed attempts", value: count(stats.failure) },
          { term: "Pending", value: count(stats.pending) },
          { term: "In flight", value: count(stats.inFlight) },
          { term: "Last success", value: <Time ms={stats.lastSuccess} /> },
          { term: "Last failure", value: <Time ms={stats.lastFailure} /> },
        ]}
      />
      <p className="hint stats-note">
        {attempts === 0 ? `No attempts in the ${label}. ` : null}
        Attempts are counted by the hour, from <Time ms={stats.since} /> to{" "}
        <Time ms={stats.until} />. Pending deliveries wait for a retry or their delivery time; in
        flight ones are being sent now.
      </p>
    </>
  );
}

const countFormat = new Intl.NumberFormat();

function count(n: number): string {
  return countFormat.format(n);
}
