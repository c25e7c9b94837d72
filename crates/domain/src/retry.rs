//! The retry schedule: how long to wait after each failed attempt before the next one.

use std::time::Duration;

use crate::validate::ValidationError;

/// Delays between attempts; `delays.len() + 1` attempts are made in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl Default for RetrySchedule {
    /// 5s, 5m, 30m, 2h, 5h, 10h, 10h: eight attempts over about a day and a day's rest.
    fn default() -> Self {
        let minute = 60;
        let hour = 60 * minute;
        Self {
            delays: [
                5,
                5 * minute,
                30 * minute,
                2 * hour,
                5 * hour,
                10 * hour,
                10 * hour,
            ]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
        }
    }
}

impl RetrySchedule {
    /// Parses a comma-separated list of durations such as `5s,5m,2h` (units `ms`, `s`, `m`, `h`,
    /// `d`). An empty string means no retries.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self { delays: Vec::new() });
        }
        let delays = text
            .split(',')
            .map(|part| parse_duration(part.trim()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ValidationError::new(
                    "retry_schedule",
                    "must be a comma-separated list of durations like 5s,5m,2h",
                )
            })?;
        if delays.len() > 50 {
            return Err(ValidationError::new(
                "retry_schedule",
                "may hold at most 50 delays",
            ));
        }
        Ok(Self { delays })
    }

    /// How many attempts a delivery gets in all (the first plus the retries).
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// The delay before attempt `attempts_made + 1`, or `None` once the schedule is exhausted.
    pub fn delay_after(&self, attempts_made: u32) -> Option<Duration> {
        let index = usize::try_from(attempts_made).ok()?.checked_sub(1)?;
        self.delays.get(index).copied()
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let millis = match unit {
        "ms" => number,
        "s" => number.checked_mul(1000)?,
        "m" => number.checked_mul(60_000)?,
        "h" => number.checked_mul(3_600_000)?,
        "d" => number.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_makes_eight_attempts() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.max_attempts(), 8);
        assert_eq!(schedule.delay_after(1), Some(Duration::from_secs(5)));
        assert_eq!(schedule.delay_after(7), Some(Duration::from_secs(36_000)));
        assert_eq!(schedule.delay_after(8), None);
    }

    #[test]
    fn parses_the_documented_form() {
        let schedule = RetrySchedule::parse("1s, 1s,1s").unwrap();
        assert_eq!(schedule.max_attempts(), 4);
        assert_eq!(schedule.delay_after(3), Some(Duration::from_secs(1)));
        assert_eq!(schedule.delay_after(4), None);
        assert_eq!(
            RetrySchedule::parse("250ms,2m,1h,1d")
                .unwrap()
                .delay_after(4),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(RetrySchedule::parse("").unwrap().max_attempts(), 1);
    }

    #[test]
    fn refuses_garbage() {
        for bad in ["5", "s", "5x", "1s,,2s", "-1s", "1.5s"] {
            assert!(RetrySchedule::parse(bad).is_err(), "{bad}");
        }
    }
}
