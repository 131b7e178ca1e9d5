//! The clocks every stage records times in: Unix milliseconds for what other systems read
//! (`received_at`, signature timestamps), and [`Clock`] for scheduling.

/// Milliseconds since the Unix epoch: the one clock every stage records times in.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A duration in whole milliseconds, saturating at `i64::MAX` instead of wrapping: add it to a
/// clock with `saturating_add`, so no configured duration can overflow a schedule.
pub(crate) fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The scheduling clock: Unix milliseconds that advance with tokio's clock, so retry schedules
/// follow `tokio::time::pause()` in tests. Created inside the runtime; in production it is the
/// wall clock at start plus monotonic time since, so wall-clock jumps do not reorder retries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    base: tokio::time::Instant,
    base_ms: i64,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            base: tokio::time::Instant::now(),
            base_ms: now_ms(),
        }
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.base_ms + self.base.elapsed().as_millis() as i64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Formats milliseconds since the epoch as RFC 3339 (UTC, second precision), as envelopes show times.
/// Times past the year 9999 show as its last second: humantime cannot write a five-digit year (its
/// `Display` fails, and `to_string` would panic), and such times come only from saturated clocks
/// (`i64::MAX` as "never") or bad data, never from an event (found by fuzz/'s `envelope` target).
pub(crate) fn rfc3339(ms: i64) -> String {
    const LAST_MS: i64 = 253_402_300_799_000; // 9999-12-31T23:59:59Z
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.clamp(0, LAST_MS) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_writes_any_time() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(-1), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
    }
}
