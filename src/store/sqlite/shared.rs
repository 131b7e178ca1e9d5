//! Shared state on SQLite: disabled targets (the only state a single-process store keeps beyond
//! the queue and the log; it survives restarts).

use rusqlite::{Connection, params};

pub(super) fn disabled_targets(c: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt =
        c.prepare_cached("SELECT name, COALESCE(reason, '') FROM target_state WHERE disabled = 1")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

pub(super) fn set_target_disabled(
    c: &Connection,
    target: &str,
    reason: Option<&str>,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO target_state (name, disabled, reason, updated_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (name) DO UPDATE SET disabled = ?2, reason = ?3, updated_at = ?4",
    )?
    .execute(params![target, reason.is_some(), reason, crate::now_ms()])?;
    Ok(())
}
