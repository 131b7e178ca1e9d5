//! Logging through the host: lines land in the gateway's log under the plugin's name.
//!
//! Outside wasm (unit tests on the host) there is no host import, so lines go to stderr.

use crate::bindings::hookgate::plugin::types::Level;

/// Very detailed tracing.
pub fn trace(message: &str) {
    write(Level::Trace, message);
}

/// Debugging detail.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}

/// Normal operation, e.g. why an event was filtered.
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Something unexpected that the plugin handled.
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// A failure.
pub fn error(message: &str) {
    write(Level::Error, message);
}

#[cfg(target_arch = "wasm32")]
fn write(level: Level, message: &str) {
    crate::bindings::hookgate::plugin::host::log(level, message);
}

#[cfg(not(target_arch = "wasm32"))]
fn write(level: Level, message: &str) {
    eprintln!("[plugin {level:?}] {message}");
}
