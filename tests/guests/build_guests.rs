//! Builds the test guests in `tests/guests` once per test process and finds their components.
//!
//! Shared by the wasm host's unit tests (`src/transform/wasm/mod.rs` includes it with `#[path]`)
//! and usable from the integration tests the same way:
//!
//! ```ignore
//! #[path = "../guests/build_guests.rs"]
//! mod guests;
//! let wasm = std::fs::read(guests::guest_path("echo")).unwrap();
//! ```
//!
//! Cargo is incremental, so when the guests are up to date this costs one `cargo build` that
//! does nothing. A failed build panics with cargo's output: a test that needs a guest must fail
//! loudly, never skip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The path of the built component for guest crate `name` (e.g. `"echo"`, `"wrong-world"`).
pub fn guest_path(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = match BUILT.get_or_init(build_guests) {
        Ok(dir) => dir,
        Err(why) => panic!("building the test guests failed:\n{why}"),
    };
    // Cargo names a cdylib after the crate with `-` turned into `_`.
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    assert!(
        path.is_file(),
        "no component for guest {name:?} at {} (is it a member of tests/guests/Cargo.toml?)",
        path.display()
    );
    path
}

/// The bytes of guest `name`'s component.
pub fn guest_bytes(name: &str) -> Vec<u8> {
    let path = guest_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Builds the guest workspace; returns the directory holding the `.wasm` files or cargo's output.
fn build_guests() -> Result<PathBuf, String> {
    build_components(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests"))
}

/// Runs `cargo build --release --target wasm32-wasip2` on the workspace at `workspace` (the test
/// guests, or `plugins/`); returns the directory holding the `.wasm` files or cargo's output.
pub fn build_components(workspace: &Path) -> Result<PathBuf, String> {
    let target_dir = workspace.join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        // An explicit target dir, so a CARGO_TARGET_DIR meant for the host cannot move it.
        .arg("--target-dir")
        .arg(&target_dir)
        // Flags meant for the host build (coverage, sanitizers) would break a wasm build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .map_err(|e| format!("could not run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo exited with {}:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(target_dir.join("wasm32-wasip2/release"))
}
