//! Shared state's SQL: instance heartbeats and liveness, shared plugins and reloads, disabled
//! targets.

use super::*;
use crate::store::*;
use deadpool_postgres::ClientWrapper as Client;

/// Records that instance `id` is alive, on the database's clock.
/// On any connection: the pool's at start, then the instance's own LISTEN connection, so a pool
/// busy to its last connection cannot make a live instance look dead.
pub(in crate::store::postgres) async fn beat(c: &tokio_postgres::Client, id: &str) -> Pg<()> {
    let sql = format!(
        "INSERT INTO instances (id, started_at, heartbeat_at) VALUES ($1, {DB_NOW}, {DB_NOW}) \
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at"
    );
    c.execute(&sql, &[&id]).await?;
    // Instances gone for a day are only clutter.
    let sql = format!("DELETE FROM instances WHERE heartbeat_at < {DB_NOW} - 86400000");
    c.execute(&sql, &[]).await?;
    Ok(())
}

/// The database's clock now, in Unix ms.
pub(in crate::store::postgres) async fn db_now(c: &tokio_postgres::Client) -> Pg<i64> {
    c.query_one(&format!("SELECT {DB_NOW}"), &[])
        .await?
        .try_get(0)
}

/// Forgets instance `id`, freeing its leases at once (a graceful stop).
pub(in crate::store::postgres) async fn leave(c: &Client, id: &str) -> Pg<()> {
    c.execute(
        &c.cached("DELETE FROM instances WHERE id = $1").await?,
        &[&id],
    )
    .await?;
    Ok(())
}

/// Every instance beating now, oldest first.
pub(in crate::store::postgres) async fn instances(c: &Client) -> Pg<Vec<Instance>> {
    let sql = format!(
        "SELECT id, started_at, {DB_NOW} - heartbeat_at FROM instances \
         WHERE heartbeat_at > {DB_NOW} - {DEAD_AFTER_MS} ORDER BY started_at, id"
    );
    c.query(&c.cached(&sql).await?, &[])
        .await?
        .iter()
        .map(|r| {
            Ok(Instance {
                id: r.try_get(0)?,
                started_at: r.try_get(1)?,
                last_beat_ms_ago: r.try_get(2)?,
                this: false,
            })
        })
        .collect()
}

/// The ids of the instances beating now, oldest first.
#[cfg(test)]
pub(in crate::store::postgres) async fn live_instances(c: &Client) -> Pg<Vec<String>> {
    let sql = format!(
        "SELECT id FROM instances WHERE heartbeat_at > {DB_NOW} - {DEAD_AFTER_MS} ORDER BY started_at, id"
    );
    c.query(&c.cached(&sql).await?, &[])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect()
}

pub(in crate::store::postgres) async fn disabled_targets(c: &Client) -> Pg<Vec<(String, String)>> {
    c.query(
        &c.cached("SELECT name, COALESCE(reason, '') FROM target_state WHERE disabled")
            .await?,
        &[],
    )
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect()
}

pub(in crate::store::postgres) async fn set_target_disabled(
    c: &Client,
    instance: &str,
    target: &str,
    reason: Option<&str>,
) -> Pg<()> {
    c.execute(
        &c.cached("WITH up AS (INSERT INTO target_state (name, disabled, reason, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET disabled = $2, reason = $3, updated_at = $4 RETURNING 1) \
         SELECT pg_notify('hookgate_cluster', $5) FROM up").await?,
        &[&target, &reason.is_some(), &reason, &crate::now_ms(), &instance],
    )
    .await?;
    Ok(())
}

pub(in crate::store::postgres) async fn shared_plugins(c: &Client) -> Pg<Vec<SharedPlugin>> {
    c.query(
        &c.cached("SELECT name, sha256, deleted FROM plugins ORDER BY name")
            .await?,
        &[],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(SharedPlugin {
            name: r.try_get(0)?,
            sha256: r.try_get(1)?,
            deleted: r.try_get(2)?,
        })
    })
    .collect()
}

pub(in crate::store::postgres) async fn shared_plugin_bytes(
    c: &Client,
    name: &str,
) -> Pg<Option<Bytes>> {
    let row = c
        .query_opt(
            &c.cached("SELECT bytes FROM plugins WHERE name = $1 AND NOT deleted")
                .await?,
            &[&name],
        )
        .await?;
    Ok(row
        .map(|r| r.try_get::<_, Option<Vec<u8>>>(0))
        .transpose()?
        .flatten()
        .map(Bytes::from))
}

/// Shares an upload (`Some`) or a delete (`None`) and tells the other instances.
pub(in crate::store::postgres) async fn share_plugin(
    c: &Client,
    instance: &str,
    name: &str,
    upload: Option<(&[u8], &str)>,
) -> Pg<()> {
    let (bytes, sha256) = match upload {
        Some((bytes, sha256)) => (Some(bytes), sha256),
        None => (None, ""),
    };
    c.execute(
        &c.cached("WITH up AS (INSERT INTO plugins (name, sha256, bytes, deleted, updated_at, updated_by) \
           VALUES ($1, $2, $3::BYTEA, $3::BYTEA IS NULL, $4, $5) \
           ON CONFLICT (name) DO UPDATE SET sha256 = EXCLUDED.sha256, bytes = EXCLUDED.bytes, \
           deleted = EXCLUDED.deleted, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by \
           RETURNING 1) \
         SELECT pg_notify('hookgate_cluster', $5) FROM up").await?,
        &[&name, &sha256, &bytes, &crate::now_ms(), &instance],
    )
    .await?;
    Ok(())
}

pub(in crate::store::postgres) async fn share_reload(c: &Client, instance: &str) -> Pg<()> {
    c.execute(
        &c.cached("WITH up AS (INSERT INTO config_reloads (requested_at, requested_by) VALUES ($1, $2) RETURNING 1) \
         SELECT pg_notify('hookgate_cluster', $2) FROM up").await?,
        &[&crate::now_ms(), &instance],
    )
    .await?;
    Ok(())
}

/// The newest reload another instance asked for (an instance has applied its own already).
pub(in crate::store::postgres) async fn reload_generation(c: &Client, instance: &str) -> Pg<i64> {
    c.query_one(
        &c.cached(
            "SELECT COALESCE(MAX(generation), 0) FROM config_reloads WHERE requested_by <> $1",
        )
        .await?,
        &[&instance],
    )
    .await?
    .try_get(0)
}
