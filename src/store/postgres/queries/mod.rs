//! The SQL of the PostgreSQL store, one function per [`Store`](super::super::Store) operation.
//!
//! Each function runs on a connection or a transaction it is handed and never commits, notifies or
//! retries: `mod.rs` owns transactions, signals and error mapping. Split as the SQLite
//! backend is (`queue`, `log`, `shared`; a routing's record, the largest, in `routing`), with the
//! same statements; where they differ, it is for several instances sharing one database (leases
//! taken with `FOR UPDATE SKIP LOCKED`, routing fenced on the event row).

mod log;
mod queue;
mod routing;
mod rows;
mod shared;

pub(in crate::store::postgres) use log::*;
pub(in crate::store::postgres) use queue::*;
pub(in crate::store::postgres) use routing::*;
pub(in crate::store::postgres) use shared::*;

use deadpool_postgres::{ClientWrapper as Client, Transaction};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use tokio_postgres::{Row, Statement};

/// Statements each pooled connection prepares once (deadpool caches them by text): a query then
/// costs one round trip instead of two (parse, then bind and execute).
pub(in crate::store::postgres) trait Cached {
    async fn cached(&self, sql: &str) -> Pg<Statement>;
}

impl Cached for Client {
    async fn cached(&self, sql: &str) -> Pg<Statement> {
        self.prepare_cached(sql).await
    }
}

impl Cached for Transaction<'_> {
    async fn cached(&self, sql: &str) -> Pg<Statement> {
        self.prepare_cached(sql).await
    }
}

pub(in crate::store::postgres) type Pg<T> = Result<T, tokio_postgres::Error>;

/// `s` as PostgreSQL TEXT takes it. TEXT cannot hold NUL, and an event type read from a body, or
/// an error quoting one, may contain `\u0000`: refused, it would fail its whole routing batch again
/// and again. NUL becomes U+FFFD, as invalid bytes do elsewhere in the log.
pub(in crate::store::postgres) fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// The database's clock in Unix ms: one clock for every instance's routing leases.
pub(in crate::store::postgres) const DB_NOW: &str =
    "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

/// An instance that has not beaten for this long is dead: its leases are free at once.
pub(in crate::store::postgres) const DEAD_AFTER_MS: i64 = 10_000;

/// SQL that is true when the lease holder named by `column` is not a live instance.
pub(in crate::store::postgres) fn holder_gone(column: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = {column} \
         AND i.heartbeat_at > {DB_NOW} - {DEAD_AFTER_MS})"
    )
}
