//! CPU time by process over a phase, from `/proc`: what each part of the box costs per
//! delivered message. Every process on the machine is counted, grouped by name.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::stats::Row;

/// CPU seconds used so far, by process group, and when that was read.
pub struct Snapshot {
    at: Instant,
    used: BTreeMap<&'static str, f64>,
}

/// Clock ticks per second of `/proc`'s counters (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

fn group(command: &str) -> &'static str {
    match command {
        "postgres" => "Postgres",
        "beam.smp" | "erl_child_setup" | "epmd" => "RabbitMQ",
        "octohooks-api" => "API",
        // The kernel keeps 15 characters of a command name.
        "octohooks-dispa" => "dispatcher",
        "octohooks-bench" => "load generator and receiver",
        _ => "other",
    }
}

/// Reads every process's user and system time.
pub fn snapshot() -> Snapshot {
    let mut used = BTreeMap::new();
    let processes = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    for entry in processes {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (command) state ppid …": the command may hold spaces, so split at the parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // utime and stime are the 14th and 15th fields of the line, the 12th and 13th here.
        let ticks = |index: usize| {
            fields
                .get(index)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        *used.entry(group(&stat[open + 1..close])).or_insert(0.0) +=
            (ticks(11) + ticks(12)) / TICKS_PER_SECOND;
    }
    Snapshot {
        at: Instant::now(),
        used,
    }
}

/// Rows of CPU time per delivered message for each process group between the snapshots, and
/// how busy the cores were.
pub fn per_delivery(
    title: &str,
    before: &Snapshot,
    after: &Snapshot,
    delivered: usize,
) -> Vec<Row> {
    let wall = after.at.saturating_duration_since(before.at).as_secs_f64();
    let mut rows = Vec::new();
    let mut total = 0.0;
    for (group, seconds) in &after.used {
        let spent = seconds - before.used.get(group).copied().unwrap_or(0.0);
        total += spent;
        rows.push(Row::new(
            format!("{title}: CPU per delivery, {group}"),
            spent / delivered.max(1) as f64 * 1e6,
            "us",
            format!("{:.0} % of one core", spent / wall * 100.0),
        ));
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    rows.push(Row::new(
        format!("{title}: CPU per delivery, all processes"),
        total / delivered.max(1) as f64 * 1e6,
        "us",
        format!(
            "the {cores} cores {:.0} % busy",
            total / wall / cores * 100.0
        ),
    ));
    rows
}
