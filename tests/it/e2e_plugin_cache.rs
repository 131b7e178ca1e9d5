//! Where compiled plugins are kept (`--plugin-cache`, `HOOKGATE_PLUGIN_CACHE`): filled by the
//! CLI's commands when named, read by a gateway started on it, `plugins.dir/.cache` otherwise.

use crate::utils::binary::{BIN, Process};
use crate::utils::wasm::plugin_bytes;
use sha2::Digest as _;
use std::os::unix::fs::MetadataExt as _;

/// `--plugin-cache DIR` (or `HOOKGATE_PLUGIN_CACHE`) is where compiled plugins are kept: `check`
/// fills it, and a gateway started on it loads the plugin from there instead of compiling it
/// again, leaving `plugins.dir` alone. Without it `check` caches nothing, and the gateway caches
/// in `plugins.dir/.cache`.
#[test]
fn a_named_plugin_cache_is_filled_by_check_and_read_by_the_gateway() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    let wasm = plugin_bytes("slack-notify");
    std::fs::write(plugins.join("slack-notify.wasm"), &wasm).expect("write plugin");
    let config = dir.path().join("hookgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[store]\nurl = \"sqlite://{db}\"\n\n\
             [plugins]\ndir = \"plugins\"\n\n[sources.s]\nkind = \"generic\"\n\n\
             [targets.t]\nurl = \"http://127.0.0.1:9/\"\n\n[[routes]]\nname = \"r\"\nsource = \"s\"\n\
             wasm = {{ plugin = \"slack-notify\", config = {{ channel = \"#deploys\" }} }}\ntargets = [\"t\"]\n",
            db = dir.path().join("hookgate.db").display()
        ),
    )
    .expect("write config");
    let cfg = config.to_string_lossy().into_owned();
    // The suite's own cache (scripts/test sets one for the whole run) is replaced in each call.
    let check = |args: &[&str], env_cache: &str| {
        let out = std::process::Command::new(BIN)
            .args(args)
            .args(["check", "--config", &cfg])
            .env("HOOKGATE_PLUGIN_CACHE", env_cache)
            .output()
            .expect("run hookgate");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let default_cache = plugins.join(".cache");
    let entry = format!("{}.cwasm", hex::encode(sha2::Sha256::digest(&wasm)));

    check(&[], "");
    assert!(!default_cache.exists(), "check made {default_cache:?}");

    let named = dir.path().join("compiled");
    check(&["--plugin-cache", &named.to_string_lossy()], "");
    let cached = named.join(&entry);
    let inode = std::fs::metadata(&cached)
        .unwrap_or_else(|e| panic!("check cached nothing at {cached:?}: {e}"))
        .ino();

    // A compile would write the entry anew (a temporary file renamed over it): the same inode
    // after the gateway has loaded the plugin means it was read, not rewritten.
    let gw = Process::serve_with_env(
        &config,
        &[("HOOKGATE_PLUGIN_CACHE", &named.to_string_lossy())],
    );
    let logs = gw.logs.lock().expect("logs").join("\n");
    gw.kill9();
    assert!(logs.contains("plugin loaded"), "{logs}");
    assert_eq!(std::fs::metadata(&cached).expect("entry").ino(), inode);
    assert!(
        !default_cache.exists(),
        "the gateway made {default_cache:?}"
    );

    let gw = Process::serve_with_env(&config, &[("HOOKGATE_PLUGIN_CACHE", "")]);
    gw.kill9();
    assert!(
        default_cache.join(&entry).is_file(),
        "nothing in {default_cache:?}"
    );
}
