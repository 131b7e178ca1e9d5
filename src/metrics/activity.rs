//! Activity per minute over the last hour: events accepted, deliveries that succeeded, and
//! deliveries that ended failed or dead. The console's overview draws it.
//!
//! Kept in memory, in this process, since it started: counting costs one short lock per sample
//! and never touches the store, so a page that shows it cannot slow the gateway down. It must
//! never grow: sixty slots, reused as minutes pass.

use parking_lot::Mutex;

/// Minutes kept.
pub(crate) const MINUTES: usize = 60;

/// One minute's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Minute {
    pub(crate) events: u64,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
}

#[derive(Debug)]
pub(crate) struct Activity {
    /// Slot `m % MINUTES` holds minute `m` (Unix minutes) once written.
    slots: Mutex<[(i64, Minute); MINUTES]>,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            slots: Mutex::new([(i64::MIN, Minute::default()); MINUTES]),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Event,
    Succeeded,
    Failed,
}

impl Activity {
    pub(crate) fn count(&self, kind: Kind, now_ms: i64) {
        let minute = now_ms.div_euclid(60_000);
        let mut slots = self.slots.lock();
        let slot = &mut slots[minute.rem_euclid(MINUTES as i64) as usize];
        if slot.0 != minute {
            *slot = (minute, Minute::default());
        }
        match kind {
            Kind::Event => slot.1.events += 1,
            Kind::Succeeded => slot.1.succeeded += 1,
            Kind::Failed => slot.1.failed += 1,
        }
    }

    /// The last [`MINUTES`] minutes up to the one holding `now_ms`, oldest first; minutes with
    /// nothing counted are zero.
    pub(crate) fn last_hour(&self, now_ms: i64) -> Vec<Minute> {
        let now = now_ms.div_euclid(60_000);
        let slots = self.slots.lock();
        (now - MINUTES as i64 + 1..=now)
            .map(|m| {
                let (at, counts) = slots[m.rem_euclid(MINUTES as i64) as usize];
                if at == m { counts } else { Minute::default() }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_their_minute_and_old_minutes_fall_off() {
        let a = Activity::default();
        let t0 = 1_000 * 60_000;
        a.count(Kind::Event, t0);
        a.count(Kind::Event, t0 + 59_999);
        a.count(Kind::Succeeded, t0 + 60_000);
        a.count(Kind::Failed, t0 + 60_000);
        let hour = a.last_hour(t0 + 60_000);
        assert_eq!(hour.len(), MINUTES);
        assert_eq!(hour[MINUTES - 2].events, 2);
        assert_eq!(
            hour[MINUTES - 1],
            Minute {
                events: 0,
                succeeded: 1,
                failed: 1
            }
        );
        // An hour later minute t0's slot is reused, not added to; minute t0 + 1 is now the oldest.
        a.count(Kind::Event, t0 + 60 * 60_000);
        let later = a.last_hour(t0 + 60 * 60_000);
        assert_eq!(later[MINUTES - 1].events, 1);
        assert_eq!(later.iter().map(|m| m.events).sum::<u64>(), 1);
        assert_eq!(later[0], hour[MINUTES - 1]);
        assert!(
            later[1..MINUTES - 1]
                .iter()
                .all(|m| *m == Minute::default())
        );
    }
}
