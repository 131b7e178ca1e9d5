//! The PostgreSQL store's schema: the migrations in `migrations/postgres/`, applied in order,
//! each once, by whichever instance starts first. Never edits a migration that has shipped: a
//! change to the schema is a new one.

use super::queries;

pub(super) const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        include_str!("../../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        include_str!("../../../migrations/postgres/0002_log_indexes.sql"),
    ),
    (
        3,
        include_str!("../../../migrations/postgres/0003_drop_deliveries_next.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/postgres/0004_event_replays.sql"),
    ),
    (
        5,
        include_str!("../../../migrations/postgres/0005_routing_off_events.sql"),
    ),
    (
        6,
        include_str!("../../../migrations/postgres/0006_bytewise_keys.sql"),
    ),
];

/// Held by whichever instance migrates, so instances starting together migrate one at a time.
const MIGRATION_LOCK: i64 = 0x686f_6f6b_6761_7465; // "hookgate"

/// Applies missing migrations in one transaction. The advisory lock is taken before anything is
/// read, so a second instance waits, then sees the versions the first recorded.
pub(super) async fn migrate(client: &mut tokio_postgres::Client) -> queries::Pg<()> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .await?;
    let applied: Vec<i64> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<queries::Pg<_>>()?;
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[version, &crate::now_ms()],
        )
        .await?;
        tracing::info!(version, "postgres store migrated");
    }
    tx.commit().await
}
