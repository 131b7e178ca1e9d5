//! Where the route loop's next batch comes from: the inbox ingress fills, or the store, and when
//! to switch between them. The store is read in pages bounded by what was committed before the
//! read began while the inbox stays open ([`Source::Backlog`]), or, after the inbox missed
//! events, whole with the inbox closed ([`Source::Store`]). This module must never leave an
//! event unread that the inbox does not have, and never return one still in flight (being
//! recorded, or held for a late commit): routed twice, its deliveries would go out twice.

use super::late::{self, HeldBefore};
use super::record::Recording;
use super::seen::Seen;
use super::{BATCH, Pipeline};
use crate::store::{Span, StoreError, StoredEvent};
use std::time::Instant;

/// Where the next batch comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// The store's unrouted events committed before now, the inbox open meanwhile (it has
    /// everything committed later): page after page, oldest first, then the inbox. At start, so
    /// that a gateway under load from its first second does not read back what ingress writes,
    /// and when idle, for events the inbox never had (a replay, a commit that outlived its
    /// request).
    Backlog(Span),
    /// The inbox: events ingress handed over.
    Inbox,
    /// The store, with the inbox closed and emptied (the store has its events too), until the
    /// store has no more: it holds unrouted events the inbox does not (after a miss, after events
    /// were given up on). Then the inbox reopens, and the loop settles.
    Store,
    /// The inbox, reopened, until every event received while it was closed has landed in the
    /// store ([`super::inbox::Mailbox::unsettled`]); then one glance.
    Settling,
    /// One batch from the store, keeping the inbox: after the inbox reopens and settles (for
    /// what was committed while it was closed). A full batch means more: back to
    /// [`Source::Store`].
    Glance,
    /// One batch of what no live instance holds, keeping the inbox: on a shared store every
    /// [`super::SCAN_SHARED_EVERY`], for events of instances that died. This instance's own events are
    /// left out: they are in the inbox, and a backlog of them must not turn the loop to the store.
    Left,
}

impl Pipeline {
    /// The events committed before now, read from the store while the inbox takes what comes
    /// after. If the store cannot say what "before now" is, every unrouted event, the inbox
    /// closed until they are read (slower under load, never wrong).
    pub(super) async fn backlog_until_now(&self) -> Source {
        match self.store.last_seq().await {
            Ok(upto) => Source::Backlog(Span::upto(upto)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the store's last event; reading every unrouted event with the inbox closed");
                Source::Store
            }
        }
    }

    /// A page of [`Source::Backlog`], and the span left when the page was full. Nothing below
    /// `span.after` comes back, so the events of earlier pages still being recorded are not read
    /// again; those taken from the inbox before the backlog began and still in flight are left
    /// out (a page of them only is empty, not the end). An event both returned here and offered
    /// to the inbox (committed as the backlog began) is dropped from the inbox by `seen`.
    pub(super) async fn backlog_page(
        &self,
        span: Span,
        recording: Option<&Recording>,
        late: &late::Late,
        seen: &mut Seen,
    ) -> Result<(Vec<StoredEvent>, Option<Span>), StoreError> {
        // See `next_batch`: what is held when the read begins.
        let held = late.held.before_read();
        let page = self.store.unrouted_in(span, BATCH).await?;
        let next = match page.last() {
            Some((last, _)) if page.len() == BATCH => Some(Span {
                after: *last,
                ..span
            }),
            _ => None,
        };
        let events: Vec<StoredEvent> =
            not_in_flight(page.into_iter().map(|(_, e)| e), recording, &held).collect();
        seen.read_from_store(&events, Instant::now());
        Ok((events, next))
    }

    /// The next batch, and whether the store may hold more (when read from it). Events a store
    /// read returned are not taken from the inbox again.
    pub(super) async fn next_batch(
        &mut self,
        from: Source,
        recording: Option<&Recording>,
        late: &late::Late,
        seen: &mut Seen,
    ) -> Result<(Vec<StoredEvent>, bool), StoreError> {
        if matches!(from, Source::Inbox | Source::Settling) {
            let events = seen.only_new(self.inbox.take(BATCH), Instant::now());
            return Ok((events, false));
        }
        if from == Source::Store {
            self.inbox.close();
            self.inbox.discard();
        }
        // Events being committed, or held until their first attempts, are still unrouted in the
        // store and leased to this instance: a read of its own reads past them, a read of what
        // no live instance holds never returns them (skipping there would lease events to this
        // instance and drop them, to wait out their lease).
        let held = late.held.before_read();
        let (skip, read) = if from == Source::Left {
            (0, self.store.unheld_events(BATCH).await?)
        } else {
            let skip = recording.map_or(0, |r| r.ids.len()) + held.len();
            (skip, self.store.unrouted_events(BATCH + skip).await?)
        };
        let more = read.len() == BATCH + skip;
        let events: Vec<StoredEvent> = not_in_flight(read.into_iter(), recording, &held)
            .take(BATCH)
            .collect();
        seen.read_from_store(&events, Instant::now());
        Ok((events, more))
    }
}

/// The events of a store read that are not in flight: being recorded, or held (as the read
/// began) for a late commit. Both are still unrouted in the store.
fn not_in_flight<'a>(
    events: impl Iterator<Item = StoredEvent> + 'a,
    recording: Option<&'a Recording>,
    held: &'a HeldBefore,
) -> impl Iterator<Item = StoredEvent> + 'a {
    events
        .filter(move |e| !recording.is_some_and(|r| r.ids.contains(&e.id)))
        .filter(move |e| !held.contains(&e.id))
}
