//! The e2e-load phase message by message: where the slowest 1 % spent their time, and, when
//! asked for, every message's timeline.

use std::time::{Duration, Instant};

use crate::load::Sent;
use crate::phases::Run;
use crate::stats::{quantile_ms, Row};

/// Each delivered message of `sent`: when its POST started, how long until the 202 and how long
/// until it arrived on `path`.
fn per_message(sent: &Sent, run: &Run<'_>, path: &str) -> Vec<(Instant, Duration, Duration)> {
    sent.started
        .iter()
        .filter_map(|(id, started)| {
            let arrived = run
                .arrivals
                .at(path, id)?
                .saturating_duration_since(*started);
            Some((*started, *sent.accepted_after.get(id)?, arrived))
        })
        .collect()
}

/// With `OCTOHOOKS_BENCH_TIMELINE=<dir>`, writes `<dir>/<uid>.csv`: the phase's start in Unix
/// time, then for each message when its POST started (ms into the phase), when the 202 came and
/// when the receiver got it (ms after the POST). A tail that comes in bursts shows as slow
/// messages close in time, to lay beside the services' and Postgres's logs.
pub fn write_timeline(uid: &str, phase_start: Instant, sent: &Sent, run: &Run<'_>, path: &str) {
    let Some(dir) = std::env::var_os("OCTOHOOKS_BENCH_TIMELINE") else {
        return;
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut rows: Vec<(f64, f64, f64)> = per_message(sent, run, path)
        .into_iter()
        .map(|(started, accepted, arrived)| {
            (
                ms(started.saturating_duration_since(phase_start)),
                ms(accepted),
                ms(arrived),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(phase_start.elapsed());
    let mut csv = format!(
        "# phase started at {} ms after the Unix epoch\nstarted_ms,accepted_ms,arrived_ms\n",
        epoch.as_millis()
    );
    for (started, accepted, arrived) in rows {
        csv.push_str(&format!("{started:.3},{accepted:.3},{arrived:.3}\n"));
    }
    let file = std::path::Path::new(&dir).join(format!("{uid}.csv"));
    if let Err(err) = std::fs::write(&file, csv) {
        eprintln!("timeline {}: {err}", file.display());
    }
}

/// Where the slowest 1 % of the messages spent their time: before the API answered 202 (the
/// commit) and after it (publication, the broker, the dispatcher and the send). The stage
/// histograms tell each stage's own tail, not which of them the slowest messages met.
pub fn slowest_split(title: &str, sent: &Sent, run: &Run<'_>, path: &str) -> Vec<Row> {
    let mut split: Vec<(Duration, Duration)> = per_message(sent, run, path)
        .into_iter()
        .map(|(_, accept, total)| (total, accept))
        .collect();
    if split.is_empty() {
        return Vec::new();
    }
    split.sort_unstable_by_key(|(total, _)| std::cmp::Reverse(*total));
    let slowest = &split[..split.len().div_ceil(100)];
    let mean_ms = |part: &dyn Fn(&(Duration, Duration)) -> Duration| {
        slowest.iter().map(|s| part(s).as_secs_f64()).sum::<f64>() * 1000.0 / slowest.len() as f64
    };
    let mut accepts: Vec<Duration> = split.iter().map(|(_, accept)| *accept).collect();
    vec![
        Row::new(
            format!("{title}: POST to 202, p99"),
            quantile_ms(&mut accepts, 0.99),
            "ms",
            "",
        ),
        Row::new(
            format!("{title}: slowest 1 %, POST to 202"),
            mean_ms(&|(_, accept)| *accept),
            "ms",
            format!("mean of the {} slowest end to end", slowest.len()),
        ),
        Row::new(
            format!("{title}: slowest 1 %, 202 to receiver"),
            mean_ms(&|(total, accept)| total.saturating_sub(*accept)),
            "ms",
            "",
        ),
    ]
}
