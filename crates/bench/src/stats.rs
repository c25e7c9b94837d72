//! Percentiles and the result table.

use std::time::Duration;

use serde::Serialize;

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What was measured.
    pub name: String,
    /// Its value.
    pub value: f64,
    /// Its unit.
    pub unit: String,
    /// Context (targets, ratios).
    pub note: String,
}

impl Row {
    /// A row of the table.
    pub fn new(name: impl Into<String>, value: f64, unit: &str, note: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value,
            unit: unit.into(),
            note: note.into(),
        }
    }
}

/// The `q`-quantile (0..=1) of `samples` in milliseconds.
pub fn quantile_ms(samples: &mut [Duration], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_unstable();
    let rank = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[rank].as_secs_f64() * 1000.0
}

/// Prints the rows as an aligned table.
pub fn print_table(rows: &[Row]) {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(10);
    println!(
        "\n{:width$}  {:>12}  {:<8}  note",
        "measure", "value", "unit"
    );
    println!("{}", "-".repeat(width + 40));
    for row in rows {
        println!(
            "{:width$}  {:>12.1}  {:<8}  {}",
            row.name, row.value, row.unit, row.note
        );
    }
}
