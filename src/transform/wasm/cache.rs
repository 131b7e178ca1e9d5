//! The on-disk compile cache: `<cache_dir>/<sha256 of the .wasm>.cwasm`.
//!
//! A cache file is wasmtime's serialized component followed by a 48-byte trailer: the SHA-256 of
//! the serialized bytes, an 8-byte fingerprint of the engine that compiled them
//! ([`wasmtime::Engine::precompile_compatibility_hash`]) and a magic tag. Loading checks the tag,
//! the fingerprint, the checksum and [`wasmtime::Engine::detect_precompiled`] before handing the
//! bytes to wasmtime (which checks version and settings again). Anything that fails a check is
//! recompiled and rewritten: a corrupt, truncated or stale entry costs a compile, never a load.
//! Files are written to a temporary name and renamed, so a crash never leaves half a file.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;

const MAGIC: &[u8; 8] = b"hgcwasm1";
const TRAILER: usize = 32 + 8 + 8;

/// A stable fingerprint of everything that makes compiled code compatible with `engine`.
pub(super) fn engine_fingerprint(engine: &wasmtime::Engine) -> [u8; 8] {
    // SHA-256 rather than std's DefaultHasher, whose output may change between Rust releases.
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            0 // unused: the digest is read directly below
        }
    }
    let mut hasher = Sha(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let digest = hasher.0.finalize();
    let mut out = [0; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

pub(super) fn path(dir: &Path, sha256: &str) -> PathBuf {
    dir.join(format!("{sha256}.cwasm"))
}

/// The cached component at `path`, if there is a sound one for this engine.
pub(super) fn read(
    engine: &wasmtime::Engine,
    fingerprint: [u8; 8],
    path: &Path,
) -> Option<Component> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot read cached plugin; recompiling");
            return None;
        }
    };
    let code = match check(&bytes, fingerprint) {
        Ok(code) => code,
        Err(why) => {
            tracing::warn!(path = %path.display(), why, "ignoring cached plugin; recompiling");
            return None;
        }
    };
    deserialize(engine, code)
        .inspect_err(|error| tracing::warn!(path = %path.display(), %error, "cached plugin does not load; recompiling"))
        .ok()
}

/// The serialized component inside a cache file, if the trailer vouches for it.
fn check(bytes: &[u8], fingerprint: [u8; 8]) -> Result<&[u8], &'static str> {
    let Some(split) = bytes.len().checked_sub(TRAILER) else {
        return Err("too short");
    };
    let (code, trailer) = bytes.split_at(split);
    if &trailer[40..] != MAGIC {
        return Err("not a hookgate cache file");
    }
    if trailer[32..40] != fingerprint {
        return Err("compiled by a different wasmtime or engine configuration");
    }
    if Sha256::digest(code)[..] != trailer[..32] {
        return Err("checksum mismatch");
    }
    if wasmtime::Engine::detect_precompiled(code) != Some(wasmtime::Precompiled::Component) {
        return Err("not a precompiled component");
    }
    Ok(code)
}

#[allow(unsafe_code)]
fn deserialize(engine: &wasmtime::Engine, code: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize` runs machine code from `code` without verifying it, so
    // the bytes must come from `Component::serialize` of a compatible engine. They do: only
    // `write` below creates cache files (atomically, named by the SHA-256 of the source), the
    // trailer's checksum rules out corruption and truncation, the fingerprint rules out another
    // engine configuration or wasmtime version, and wasmtime checks version and settings again.
    // The cache directory is trusted like the hookgate binary itself.
    unsafe { Component::deserialize(engine, code) }
}

/// Writes `component` to `path` for the next start. Failure only costs a later compile.
pub(super) fn write(component: &Component, fingerprint: [u8; 8], path: &Path) {
    if let Err(error) = try_write(component, fingerprint, path) {
        tracing::warn!(path = %path.display(), %error, "cannot cache compiled plugin");
    }
}

fn try_write(component: &Component, fingerprint: [u8; 8], path: &Path) -> Result<(), String> {
    let mut bytes = component.serialize().map_err(|e| e.to_string())?;
    let checksum = Sha256::digest(&bytes);
    bytes.extend_from_slice(&checksum);
    bytes.extend_from_slice(&fingerprint);
    bytes.extend_from_slice(MAGIC);
    // A unique temporary name: two engines (or processes) may cache the same plugin at once.
    let tmp = path.with_extension(format!(
        "cwasm.tmp.{}.{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::write(&tmp, &bytes).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        e.to_string()
    })
}
