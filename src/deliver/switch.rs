//! Which targets are disabled, shared by the worker (which skips them) and the admin API (which
//! flips them). The store holds the durable copy; this is the in-memory view of one process.

use crate::store::{Store, StoreError};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Disabled targets and why. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct TargetSwitch {
    disabled: Arc<RwLock<BTreeMap<String, String>>>,
}

impl TargetSwitch {
    /// Loads the disabled set the store remembers.
    pub(crate) async fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let disabled = store.disabled_targets().await?;
        let switch = Self::default();
        switch.disabled.write().extend(disabled);
        Ok(switch)
    }

    pub(crate) fn is_disabled(&self, target: &str) -> bool {
        self.disabled.read().contains_key(target)
    }

    pub(crate) fn reason(&self, target: &str) -> Option<String> {
        self.disabled.read().get(target).cloned()
    }

    /// Disables `target` durably, then in memory.
    pub(crate) async fn disable(
        &self,
        store: &dyn Store,
        target: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        store.set_target_disabled(target, Some(reason)).await?;
        self.disabled
            .write()
            .insert(target.to_string(), reason.to_string());
        Ok(())
    }

    /// Enables `target` durably, then in memory.
    /// Replaces the disabled set with the store's (another instance may have changed it).
    pub(crate) async fn refresh(&self, store: &dyn Store) -> Result<(), StoreError> {
        let disabled = store.disabled_targets().await?;
        *self.disabled.write() = disabled.into_iter().collect();
        Ok(())
    }

    pub(crate) async fn enable(&self, store: &dyn Store, target: &str) -> Result<(), StoreError> {
        store.set_target_disabled(target, None).await?;
        self.disabled.write().remove(target);
        Ok(())
    }
}
