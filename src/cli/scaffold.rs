//! `hookgate plugin new NAME --lang rust|python|js|ts`: writes a plugin project that builds on its
//! own — a build file, one transform, a test on a producer's fixture, a README — with hookgate's
//! SDK for the language vendored into it (the SDK carries the WIT interface, so nothing points
//! back into hookgate's repository).
//!
//! The files are compiled into the binary: `scaffold/<lang>/*.tmpl` with `{{name}}` and
//! `{{crate}}` filled in, the SDK's sources as they are in `plugins/sdk*/`, and the fixture from
//! the event catalog. It never overwrites anything: an existing folder is refused.

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};

/// The languages a plugin project can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Lang {
    /// Rust, built by cargo for wasm32-wasip2.
    Rust,
    /// Python, built by componentize-py.
    Python,
    /// JavaScript, built by componentize-js.
    Js,
    /// TypeScript: the JavaScript SDK with its type declarations; tsc, then componentize-js.
    Ts,
}

/// The Rust SDK, file by file, as `plugins/sdk/` holds it.
const RUST_SDK: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../plugins/sdk/Cargo.toml")),
    ("README.md", include_str!("../../plugins/sdk/README.md")),
    ("src/lib.rs", include_str!("../../plugins/sdk/src/lib.rs")),
    (
        "src/arena.rs",
        include_str!("../../plugins/sdk/src/arena.rs"),
    ),
    (
        "src/error.rs",
        include_str!("../../plugins/sdk/src/error.rs"),
    ),
    (
        "src/event.rs",
        include_str!("../../plugins/sdk/src/event.rs"),
    ),
    ("src/log.rs", include_str!("../../plugins/sdk/src/log.rs")),
    (
        "src/message.rs",
        include_str!("../../plugins/sdk/src/message.rs"),
    ),
    (
        "src/platform.rs",
        include_str!("../../plugins/sdk/src/platform.rs"),
    ),
    (
        "wit/hookgate.wit",
        include_str!("../../plugins/sdk/wit/hookgate.wit"),
    ),
];

/// The Python SDK, file by file, as `plugins/sdk-python/` holds it (the package and its README).
const PYTHON_SDK: &[(&str, &str)] = &[
    (
        "hookgate_sdk/__init__.py",
        include_str!("../../plugins/sdk-python/hookgate_sdk/__init__.py"),
    ),
    (
        "hookgate_sdk/_component.py",
        include_str!("../../plugins/sdk-python/hookgate_sdk/_component.py"),
    ),
    (
        "hookgate_sdk/wit/hookgate.wit",
        include_str!("../../plugins/sdk-python/hookgate_sdk/wit/hookgate.wit"),
    ),
    (
        "hookgate_sdk/README.md",
        include_str!("../../plugins/sdk-python/README.md"),
    ),
];

const PYTHON_PROJECT: &[(&str, &str)] = &[
    ("app.py", include_str!("scaffold/python/app.py.tmpl")),
    (
        "test_app.py",
        include_str!("scaffold/python/test_app.py.tmpl"),
    ),
    ("README.md", include_str!("scaffold/python/README.md.tmpl")),
    (".gitignore", include_str!("scaffold/python/gitignore.tmpl")),
    (
        "fixtures/spacelift_run_finished.json",
        include_str!("../../catalog/spacelift/samples/run_finished.json"),
    ),
];

/// The JavaScript SDK, file by file, as `plugins/sdk-js/` holds it (the module and its README).
const JS_SDK: &[(&str, &str)] = &[
    (
        "hookgate_sdk/index.js",
        include_str!("../../plugins/sdk-js/hookgate_sdk/index.js"),
    ),
    (
        "hookgate_sdk/index.d.ts",
        include_str!("../../plugins/sdk-js/hookgate_sdk/index.d.ts"),
    ),
    (
        "hookgate_sdk/component.js",
        include_str!("../../plugins/sdk-js/hookgate_sdk/component.js"),
    ),
    (
        "hookgate_sdk/package.json",
        include_str!("../../plugins/sdk-js/hookgate_sdk/package.json"),
    ),
    (
        "hookgate_sdk/wit/hookgate.wit",
        include_str!("../../plugins/sdk-js/hookgate_sdk/wit/hookgate.wit"),
    ),
    (
        "hookgate_sdk/README.md",
        include_str!("../../plugins/sdk-js/README.md"),
    ),
];

const JS_PROJECT: &[(&str, &str)] = &[
    ("app.js", include_str!("scaffold/js/app.js.tmpl")),
    ("app.test.js", include_str!("scaffold/js/app.test.js.tmpl")),
    (
        "package.json",
        include_str!("scaffold/js/package.json.tmpl"),
    ),
    ("README.md", include_str!("scaffold/js/README.md.tmpl")),
    (".gitignore", include_str!("scaffold/js/gitignore.tmpl")),
    (
        "fixtures/spacelift_run_finished.json",
        include_str!("../../catalog/spacelift/samples/run_finished.json"),
    ),
];

/// A TypeScript project: the JavaScript SDK, `app.ts` and its test compiled beside themselves by
/// `tsc` (the SDK's entry point imports `../app.js`).
const TS_PROJECT: &[(&str, &str)] = &[
    ("app.ts", include_str!("scaffold/ts/app.ts.tmpl")),
    ("app.test.ts", include_str!("scaffold/ts/app.test.ts.tmpl")),
    (
        "tsconfig.json",
        include_str!("scaffold/ts/tsconfig.json.tmpl"),
    ),
    (
        "package.json",
        include_str!("scaffold/ts/package.json.tmpl"),
    ),
    ("README.md", include_str!("scaffold/ts/README.md.tmpl")),
    (".gitignore", include_str!("scaffold/ts/gitignore.tmpl")),
    (
        "fixtures/spacelift_run_finished.json",
        include_str!("../../catalog/spacelift/samples/run_finished.json"),
    ),
];

/// The project's own files: (path, template).
const RUST_PROJECT: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("scaffold/rust/Cargo.toml.tmpl")),
    ("README.md", include_str!("scaffold/rust/README.md.tmpl")),
    (".gitignore", include_str!("scaffold/rust/gitignore.tmpl")),
    ("src/lib.rs", include_str!("scaffold/rust/lib.rs.tmpl")),
    (
        "tests/fixture.rs",
        include_str!("scaffold/rust/test.rs.tmpl"),
    ),
    (
        "fixtures/spacelift_run_finished.json",
        include_str!("../../catalog/spacelift/samples/run_finished.json"),
    ),
];

/// Writes project `name` in `parent/name`; returns its folder.
pub(crate) fn new(name: &str, lang: Lang, parent: &Path) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    let dir = parent.join(name);
    if dir.exists() {
        bail!(
            "{} already exists: choose another name or folder",
            dir.display()
        );
    }
    let (project, sdk, sdk_dir) = match lang {
        Lang::Rust => (RUST_PROJECT, RUST_SDK, "sdk/"),
        Lang::Python => (PYTHON_PROJECT, PYTHON_SDK, ""),
        Lang::Js => (JS_PROJECT, JS_SDK, ""),
        Lang::Ts => (TS_PROJECT, JS_SDK, ""),
    };
    let files: Vec<(String, String)> = project
        .iter()
        .map(|(path, text)| (path.to_string(), fill(text, name)))
        .chain(
            sdk.iter()
                .map(|(path, text)| (format!("{sdk_dir}{path}"), text.to_string())),
        )
        .collect();
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating {}", folder.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}

/// A name that is a plugin name, a crate name and a folder name at once.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        bail!(
            "`{name}` cannot name a plugin: use lower-case letters, digits, `-` and `_`, \
             starting with a letter (at most 64)"
        );
    }
    Ok(())
}

fn fill(template: &str, name: &str) -> String {
    template
        .replace("{{name}}", name)
        .replace("{{crate}}", &name.replace('-', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file added to the SDK must be vendored too, or new projects would not build.
    #[test]
    fn every_sdk_file_is_vendored() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/sdk");
        let mut on_disk = Vec::new();
        for sub in ["", "src", "wit"] {
            for entry in std::fs::read_dir(root.join(sub)).expect("plugins/sdk") {
                let path = entry.expect("entry").path();
                if path.is_file() {
                    let rel = path.strip_prefix(&root).expect("prefix");
                    on_disk.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        on_disk.sort();
        let mut vendored: Vec<String> = RUST_SDK.iter().map(|(p, _)| p.to_string()).collect();
        vendored.sort();
        assert_eq!(on_disk, vendored);
    }

    #[test]
    fn python_and_js_sdk_files_are_vendored() {
        for (dir, sdk) in [
            ("plugins/sdk-python", PYTHON_SDK),
            ("plugins/sdk-js", JS_SDK),
        ] {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
            let mut on_disk = vec!["hookgate_sdk/README.md".to_string()];
            for sub in ["hookgate_sdk", "hookgate_sdk/wit"] {
                for entry in std::fs::read_dir(root.join(sub)).expect("the SDK") {
                    let path = entry.expect("entry").path();
                    let source = ["py", "js", "ts", "json", "wit"];
                    if path.is_file()
                        && path
                            .extension()
                            .is_some_and(|x| source.iter().any(|s| x == *s))
                    {
                        let rel = path.strip_prefix(&root).expect("prefix");
                        on_disk.push(rel.to_string_lossy().into_owned());
                    }
                }
            }
            on_disk.sort();
            let mut vendored: Vec<String> = sdk.iter().map(|(p, _)| p.to_string()).collect();
            vendored.sort();
            assert_eq!(on_disk, vendored, "{dir}");
        }
    }

    #[test]
    fn every_sdks_wit_is_the_hosts() {
        let host = include_str!("../../wit/hookgate.wit");
        for (sdk, path) in [
            (RUST_SDK, "wit/hookgate.wit"),
            (PYTHON_SDK, "hookgate_sdk/wit/hookgate.wit"),
            (JS_SDK, "hookgate_sdk/wit/hookgate.wit"),
        ] {
            let copy = sdk.iter().find(|(p, _)| *p == path).map(|(_, t)| *t);
            assert_eq!(copy, Some(host), "{path} differs from wit/hookgate.wit");
        }
    }

    #[test]
    fn names_are_checked_and_folders_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("hookgate-scaffold-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("tmp");
        assert!(new("Bad Name", Lang::Rust, &dir).is_err());
        let made = new("my-plugin", Lang::Rust, &dir).expect("written");
        let cargo = std::fs::read_to_string(made.join("Cargo.toml")).expect("Cargo.toml");
        assert!(cargo.contains("name = \"my-plugin\""), "{cargo}");
        let test = std::fs::read_to_string(made.join("tests/fixture.rs")).expect("test");
        assert!(test.contains("use my_plugin::"), "{test}");
        assert!(made.join("sdk/wit/hookgate.wit").is_file());
        let again = new("my-plugin", Lang::Rust, &dir).map(|_| ());
        assert!(again.is_err_and(|e| e.to_string().contains("already exists")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
