//! The services' stage histograms (`octohooks_pipeline_stage_seconds`), scraped before and
//! after a phase: the difference says where that phase's messages spent their time.

use std::collections::BTreeMap;

use crate::stats::Row;

/// One stage's histogram: cumulative bucket counts by upper bound, sum and count.
#[derive(Debug, Clone, Default)]
struct Histogram {
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

/// Every stage's histogram, summed over the scraped services.
#[derive(Debug, Clone, Default)]
pub struct Snapshot(BTreeMap<String, Histogram>);

/// The stages in pipeline order, as the services label them.
const ORDER: [&str; 7] = [
    "commit",
    "publish_wait",
    "confirm",
    "queued",
    "context",
    "send",
    "record",
];

/// Scrapes `/metrics` of every base URL; a service without the histogram adds nothing.
pub async fn scrape(bases: &[String]) -> Snapshot {
    let mut snapshot = Snapshot::default();
    for base in bases {
        if let Some(text) = metrics_text(base).await {
            snapshot.add(&text);
        }
    }
    snapshot
}

/// A service's `/metrics`, or `None` when it does not answer.
async fn metrics_text(base: &str) -> Option<String> {
    reqwest::get(format!("{base}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()
}

/// The sum over every series of the counter `name` (all its labels) across the services.
pub async fn counter_sum(bases: &[String], name: &str) -> f64 {
    let mut sum = 0.0;
    for base in bases {
        let Some(text) = metrics_text(base).await else {
            continue;
        };
        sum += text
            .lines()
            .filter(|line| line.starts_with(name))
            .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum::<f64>();
    }
    sum
}

impl Snapshot {
    fn add(&mut self, text: &str) {
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("octohooks_pipeline_stage_seconds_") else {
                continue;
            };
            let Some((series, value)) = rest.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let Some(stage) = label(series, "stage") else {
                continue;
            };
            let histogram = self.0.entry(stage.to_owned()).or_default();
            if series.starts_with("sum") {
                histogram.sum += value;
            } else if series.starts_with("count") {
                histogram.count += value;
            } else if let Some(bound) = label(series, "le") {
                let bound = if bound == "+Inf" {
                    f64::INFINITY
                } else {
                    bound.parse().unwrap_or(f64::INFINITY)
                };
                match histogram.buckets.iter_mut().find(|(le, _)| *le == bound) {
                    Some((_, count)) => *count += value,
                    None => histogram.buckets.push((bound, value)),
                }
            }
        }
    }

    /// What happened between `earlier` and `self`.
    fn since(&self, earlier: &Snapshot) -> Snapshot {
        let mut delta = self.clone();
        for (stage, histogram) in &mut delta.0 {
            if let Some(before) = earlier.0.get(stage) {
                histogram.sum -= before.sum;
                histogram.count -= before.count;
                for (bound, count) in &mut histogram.buckets {
                    if let Some((_, was)) = before.buckets.iter().find(|(le, _)| le == bound) {
                        *count -= was;
                    }
                }
            }
        }
        delta
    }
}

fn label<'a>(series: &'a str, name: &str) -> Option<&'a str> {
    let start = series.find(&format!("{name}=\""))? + name.len() + 2;
    let end = series[start..].find('"')? + start;
    Some(&series[start..end])
}

impl Histogram {
    fn mean_ms(&self) -> f64 {
        if self.count > 0.0 {
            self.sum / self.count * 1000.0
        } else {
            f64::NAN
        }
    }

    /// The `q`-quantile by linear interpolation within its bucket.
    fn quantile_ms(&self, q: f64) -> f64 {
        let mut buckets = self.buckets.clone();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total = buckets.last().map_or(0.0, |(_, count)| *count);
        if total <= 0.0 {
            return f64::NAN;
        }
        let rank = q * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for (bound, count) in buckets {
            if count >= rank {
                if bound.is_infinite() {
                    return lower * 1000.0;
                }
                let share = if count > below {
                    (rank - below) / (count - below)
                } else {
                    0.0
                };
                return (lower + (bound - lower) * share) * 1000.0;
            }
            (lower, below) = (bound, count);
        }
        f64::NAN
    }
}

/// Rows for each stage between the two snapshots: mean, with p50 and p99 in the note, and the
/// broker's share (`queued` less the API's stages).
pub fn breakdown(title: &str, before: &Snapshot, after: &Snapshot) -> Vec<Row> {
    let delta = after.since(before);
    let mut rows = Vec::new();
    for stage in ORDER {
        let Some(histogram) = delta.0.get(stage).filter(|h| h.count > 0.0) else {
            continue;
        };
        rows.push(Row::new(
            format!("{title}: stage {stage}, mean"),
            histogram.mean_ms(),
            "ms",
            format!(
                "p50 {:.2} / p99 {:.2} ms, {} jobs",
                histogram.quantile_ms(0.5),
                histogram.quantile_ms(0.99),
                histogram.count
            ),
        ));
    }
    let mean = |stage: &str| delta.0.get(stage).map_or(f64::NAN, Histogram::mean_ms);
    let broker = mean("queued") - mean("commit") - mean("publish_wait") - mean("confirm");
    if broker.is_finite() {
        rows.push(Row::new(
            format!("{title}: confirmed -> received by the dispatcher, mean"),
            broker,
            "ms",
            "queued less commit, publish_wait and confirm",
        ));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# TYPE octohooks_pipeline_stage_seconds histogram
octohooks_pipeline_stage_seconds_bucket{stage="send",le="0.001"} 50
octohooks_pipeline_stage_seconds_bucket{stage="send",le="0.002"} 100
octohooks_pipeline_stage_seconds_bucket{stage="send",le="+Inf"} 100
octohooks_pipeline_stage_seconds_sum{stage="send"} 0.1
octohooks_pipeline_stage_seconds_count{stage="send"} 100
"#;

    #[test]
    fn reads_the_exposition_and_interpolates_quantiles() {
        let mut after = Snapshot::default();
        after.add(TEXT);
        let delta = after.since(&Snapshot::default());
        let send = &delta.0["send"];
        assert!((send.mean_ms() - 1.0).abs() < 1e-9);
        assert!((send.quantile_ms(0.5) - 1.0).abs() < 1e-9);
        assert!((send.quantile_ms(0.75) - 1.5).abs() < 1e-9);
        let rows = breakdown("t", &Snapshot::default(), &after);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].name, "t: stage send, mean");
    }
}
