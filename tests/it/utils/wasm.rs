//! Real wasm components for the tests: the plugins in `plugins/` and the hostile guests in
//! `tests/guests/`, each workspace built once per test process (cargo is incremental, so an
//! up-to-date build costs one no-op `cargo build`). A failed build fails the test loudly.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

#[path = "../../guests/build_guests.rs"]
mod guests;

pub use guests::guest_bytes;

/// The component of plugin crate `name` in `plugins/` (e.g. `"slack-notify"`).
pub fn plugin_path(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = match BUILT.get_or_init(|| {
        guests::build_components(&Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins"))
    }) {
        Ok(dir) => dir,
        Err(why) => panic!("building plugins/ failed:\n{why}"),
    };
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    assert!(
        path.is_file(),
        "no component for plugin {name:?} at {}",
        path.display()
    );
    path
}

pub fn plugin_bytes(name: &str) -> Vec<u8> {
    let path = plugin_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The folder `var` names: the pinned toolchain `scripts/test` installs. Unset, the test fails
/// rather than skips: a suite that silently skips a language proves nothing.
pub fn toolchain_bin(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run the suite with ./scripts/test, which installs the plugin \
             toolchains of tests/plugins/ (or point it at a folder holding the tool)"
        )
    })
}

/// `PATH` with the folder `var` names in front (see [`toolchain_bin`]).
pub fn toolchain_path(var: &str) -> String {
    let bin = toolchain_bin(var);
    format!("{bin}:{}", std::env::var("PATH").unwrap_or_default())
}
