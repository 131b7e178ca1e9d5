//! The route loop's inbox: events ingress committed, handed over in memory so that routing does
//! not read back from the store what ingress has just written.
//!
//! The store stays the source of truth: an event enters the inbox only after its commit, and
//! whatever the inbox cannot take (full, or its request handler gone) is only *missed*, never
//! lost. A miss closes the inbox and the loop reads unrouted events from the store until it has
//! none left, then reopens the inbox and, once every event received while it was closed has
//! settled (its commit landed or failed: [`Mailbox::unsettled`]), reads the store once more, for
//! those. While closed, ingress neither copies nor offers events. The inbox is bounded in events
//! and in bytes, so a burst costs bounded memory.

use crate::store::StoredEvent;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::sync::{Notify, mpsc};

/// Events the inbox holds at most.
const MAX_EVENTS: usize = 65_536;
/// Bytes of bodies the inbox holds at most.
const MAX_BYTES: usize = 64 << 20;

/// What ingress and the loop share.
#[derive(Debug)]
struct Shared {
    /// Whether ingress offers events; closed by a miss until the loop has read the store.
    open: AtomicBool,
    /// Set when an event was not handed over: the loop must scan the store.
    missed: AtomicBool,
    /// Body bytes of the events in the channel.
    bytes: AtomicUsize,
    /// Events received while the inbox was closed whose commit has not yet landed or failed:
    /// the loop's last read of the store after reopening must wait for them. Without the count,
    /// a commit landing after that read would have to be a miss, and under load some always
    /// does, so every reopening would close the inbox again.
    unsettled: AtomicUsize,
    /// Wakes the loop after a miss (the channel may be empty by then).
    missed_wake: Notify,
}

/// Ingress's side. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Inbox {
    tx: mpsc::Sender<StoredEvent>,
    shared: Arc<Shared>,
}

/// The route loop's side.
#[derive(Debug)]
pub(crate) struct Mailbox {
    rx: mpsc::Receiver<StoredEvent>,
    shared: Arc<Shared>,
    /// An event [`Mailbox::ready`] received, taken first.
    first: Option<StoredEvent>,
}

/// A new inbox: its sending and receiving sides.
pub(crate) fn inbox() -> (Inbox, Mailbox) {
    let (tx, rx) = mpsc::channel(MAX_EVENTS);
    let shared = Arc::new(Shared {
        open: AtomicBool::new(true),
        missed: AtomicBool::new(false),
        bytes: AtomicUsize::new(0),
        unsettled: AtomicUsize::new(0),
        missed_wake: Notify::new(),
    });
    let mailbox = Mailbox {
        rx,
        shared: shared.clone(),
        first: None,
    };
    (Inbox { tx, shared }, mailbox)
}

impl Inbox {
    /// Hands over an event that is committed. Never waits: when the inbox is full the event is
    /// left to the loop's scan of the store (and so is any event while the inbox is closed).
    fn offer(&self, event: StoredEvent) {
        if !self.shared.open.load(Ordering::Acquire) {
            return;
        }
        let size = event.body.len();
        let held = self.shared.bytes.fetch_add(size, Ordering::AcqRel);
        if held.saturating_add(size) > MAX_BYTES || self.tx.try_send(event).is_err() {
            self.shared.bytes.fetch_sub(size, Ordering::AcqRel);
            self.miss();
        }
    }

    /// An event about to be committed: see [`Promise`].
    pub(crate) fn promise(&self) -> Promise<'_> {
        // Open (nearly always): one load. Closed: counted, then looked at again, so that a loop
        // reopening it in between sees the count (both sequentially consistent): see
        // [`Mailbox::unsettled`].
        let mut wanted = self.shared.open.load(Ordering::SeqCst);
        if !wanted {
            self.shared.unsettled.fetch_add(1, Ordering::SeqCst);
            wanted = self.shared.open.load(Ordering::SeqCst);
            if wanted {
                self.shared.unsettled.fetch_sub(1, Ordering::SeqCst);
            }
        }
        Promise {
            inbox: self,
            wanted,
            kept: false,
        }
    }

    fn miss(&self) {
        self.shared.open.store(false, Ordering::Release);
        self.shared.missed.store(true, Ordering::Release);
        self.shared.missed_wake.notify_one();
    }
}

/// An event on its way to the inbox: offered once committed, or, if the request handler is
/// dropped before that (a client hanging up while the commit is under way, which then still
/// lands), a miss, so the loop finds the event in the store.
#[derive(Debug)]
pub(crate) struct Promise<'a> {
    inbox: &'a Inbox,
    /// The inbox was open when the event was received: ingress keeps a copy to offer.
    wanted: bool,
    kept: bool,
}

impl Promise<'_> {
    /// Whether the inbox wants the event (else ingress need not copy it).
    pub(crate) fn wanted(&self) -> bool {
        self.wanted
    }

    /// Offers the committed event (`None` if it was not [`wanted`](Self::wanted): the loop
    /// reads it from the store, after its last read there waited for it to settle).
    pub(crate) fn keep(mut self, event: Option<StoredEvent>) {
        self.kept = true;
        if let Some(event) = event {
            self.inbox.offer(event);
        }
    }
}

impl Drop for Promise<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.inbox.miss();
        }
        if !self.wanted {
            self.inbox.shared.unsettled.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Mailbox {
    /// Up to `limit` events handed over, without waiting.
    pub(crate) fn take(&mut self, limit: usize) -> Vec<StoredEvent> {
        let mut events: Vec<StoredEvent> = self.first.take().into_iter().collect();
        while events.len() < limit {
            match self.rx.try_recv() {
                Ok(event) => events.push(self.received(event)),
                Err(_) => break,
            }
        }
        events
    }

    /// Waits until an event is handed over or one was missed. Cancel-safe.
    pub(crate) async fn ready(&mut self) {
        if self.first.is_some() {
            return;
        }
        tokio::select! {
            event = self.rx.recv() => match event {
                Some(e) => self.first = Some(self.received(e)),
                // Ingress is gone (shutdown): only the store can have work now.
                None => std::future::pending().await,
            },
            _ = self.shared.missed_wake.notified() => {}
        }
    }

    /// Whether an event was missed since the last call (which forgets it): if so, the store
    /// holds unrouted events the inbox does not, and the loop must scan.
    pub(crate) fn missed(&self) -> bool {
        self.shared.missed.swap(false, Ordering::AcqRel)
    }

    /// Closes the inbox: the loop reads the store, which has every event, until it has none.
    pub(crate) fn close(&self) {
        self.shared.open.store(false, Ordering::Release);
    }

    /// Opens the inbox again once the store has no more unrouted events; the loop then reads
    /// the store once more, for events committed while it was closed, once they are
    /// [settled](Self::unsettled).
    pub(crate) fn reopen(&self) {
        self.shared.open.store(true, Ordering::SeqCst);
    }

    /// How many events received while the inbox was closed are still being committed. Read after
    /// [`reopen`](Self::reopen): when it is 0, every event not offered has landed in the store
    /// (or failed), so one more read there finds them all.
    pub(crate) fn unsettled(&self) -> usize {
        self.shared.unsettled.load(Ordering::SeqCst)
    }

    /// Empties the inbox before a scan of the store, which finds all of its events again.
    pub(crate) fn discard(&mut self) {
        self.first = None;
        while let Ok(event) = self.rx.try_recv() {
            self.received(event);
        }
    }

    fn received(&self, event: StoredEvent) -> StoredEvent {
        self.shared
            .bytes
            .fetch_sub(event.body.len(), Ordering::AcqRel);
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, size: usize) -> StoredEvent {
        StoredEvent::blank(id, size)
    }

    #[test]
    fn events_come_out_in_order_and_a_full_inbox_is_a_miss_that_closes_it() {
        let (inbox, mut mailbox) = inbox();
        inbox.offer(event("a", 10));
        inbox.offer(event("b", 10));
        assert!(!mailbox.missed());
        inbox.offer(event("huge", MAX_BYTES));
        assert!(
            mailbox.missed(),
            "past the byte bound the event is left to a scan"
        );
        assert!(!mailbox.missed(), "a miss is reported once");
        let ids: Vec<String> = mailbox.take(10).into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(mailbox.shared.bytes.load(Ordering::Acquire), 0);
        let promise = inbox.promise();
        assert!(!promise.wanted(), "closed after a miss");
        promise.keep(None);
        assert!(!mailbox.missed(), "still closed: nothing new to report");
        inbox.offer(event("while closed", 1));
        assert!(mailbox.take(1).is_empty());
        mailbox.reopen();
        for i in 0..MAX_EVENTS {
            inbox.offer(event(&i.to_string(), 1));
        }
        assert!(!mailbox.missed());
        inbox.offer(event("one too many", 1));
        assert!(mailbox.missed());
        mailbox.discard();
        mailbox.reopen();
    }

    #[test]
    fn a_promise_not_kept_or_kept_across_a_reopening_is_a_miss() {
        let (inbox, mut mailbox) = inbox();
        drop(inbox.promise());
        assert!(
            mailbox.missed(),
            "an event whose handler went away is left to a scan"
        );
        mailbox.reopen();
        inbox.promise().keep(Some(event("kept", 1)));
        assert!(!mailbox.missed());
        assert_eq!(mailbox.take(5).len(), 1);
        mailbox.close();
        let promise = inbox.promise();
        assert!(!promise.wanted());
        mailbox.reopen();
        assert_eq!(
            mailbox.unsettled(),
            1,
            "received while closed, not yet committed"
        );
        promise.keep(None);
        assert!(
            !mailbox.missed(),
            "committed around the reopening: the loop's last read of the store waits for it"
        );
        assert_eq!(mailbox.unsettled(), 0);
        mailbox.close();
        let dropped = inbox.promise();
        inbox.promise().keep(None);
        assert!(
            !mailbox.missed(),
            "still closed: the loop is reading the store anyway"
        );
        assert_eq!(mailbox.unsettled(), 1);
        drop(dropped);
        assert!(mailbox.missed(), "its commit may land after any read");
        assert_eq!(mailbox.unsettled(), 0);
    }
}
