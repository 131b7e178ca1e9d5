//! JavaScript and TypeScript projects: componentize-js on the SDK's entry point
//! (`hookgate_sdk/component.js`, which imports the project's `app.js`); for TypeScript, the
//! project's own `tsc` first, which compiles `app.ts` to that `app.js`.
//!
//! Both tools come from the project's `node_modules/.bin` (what its `package.json` pins);
//! componentize-js may also be on `PATH`, tsc may not: a TypeScript project type-checks against
//! the `@types/node` it pins, which a global tsc would not find.

use super::{component_of, need, run_tool};
use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The componentize-js the suite and new projects pin.
const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";

/// Whether `dir` is a TypeScript project (checked before JavaScript: a built one has `app.js` too).
pub(super) fn is_ts(dir: &Path) -> bool {
    dir.join("tsconfig.json").is_file() && dir.join("app.ts").is_file() && has_entry(dir)
}

pub(super) fn is_js(dir: &Path) -> bool {
    dir.join("app.js").is_file() && has_entry(dir)
}

fn has_entry(dir: &Path) -> bool {
    dir.join("hookgate_sdk/component.js").is_file()
}

/// `tsc -p DIR`, then the JavaScript build.
pub(super) fn ts(dir: &Path) -> anyhow::Result<PathBuf> {
    node()?;
    let dir = std::fs::canonicalize(dir).with_context(|| format!("{}", dir.display()))?;
    let tsc = dir.join("node_modules/.bin/tsc");
    if !tsc.is_file() {
        bail!(
            "TypeScript is not installed in {}: run `npm install` there (its package.json pins \
             typescript and componentize-js)",
            dir.display()
        );
    }
    let mut cmd = Command::new(tsc);
    cmd.args(["-p", "."]);
    run_tool(cmd, &dir, "tsc")?;
    if !dir.join("app.js").is_file() {
        bail!(
            "tsc wrote no app.js in {}: the SDK's entry point imports `../app.js`, so \
             tsconfig.json must emit beside app.ts (no `outDir`, no `noEmit`)",
            dir.display()
        );
    }
    componentize(&dir)
}

pub(super) fn js(dir: &Path) -> anyhow::Result<PathBuf> {
    node()?;
    let dir = std::fs::canonicalize(dir).with_context(|| format!("{}", dir.display()))?;
    componentize(&dir)
}

fn node() -> anyhow::Result<()> {
    need(
        "node",
        &["--version"],
        "Node.js is not installed: install Node.js 20 or later (https://nodejs.org)",
    )
}

/// componentize-js on the project in (canonical) `dir`.
fn componentize(dir: &Path) -> anyhow::Result<PathBuf> {
    let local = dir.join("node_modules/.bin/componentize-js");
    let tool = match local.is_file() {
        true => local.into_os_string(),
        false => {
            need(
                "componentize-js",
                &["--version"],
                &format!(
                    "componentize-js is not installed: run `npm install` in {} (its package.json \
                     pins {COMPONENTIZE_JS}), or `npm install -g {COMPONENTIZE_JS}`",
                    dir.display()
                ),
            )?;
            "componentize-js".into()
        }
    };
    let out = component_of(dir);
    let (root, project) = workspace(dir)?;
    // Without `-d http fetch-event` the component imports wasi:http, which the gateway does not
    // offer.
    let mut cmd = Command::new(tool);
    cmd.arg("--wit")
        .arg(project.join("hookgate_sdk/wit"))
        .args(["-n", "transformer"])
        .args(["-d", "http", "fetch-event", "-o"])
        .arg(&out)
        .arg(project.join("hookgate_sdk/component.js"));
    run_tool(cmd, &root, "componentize-js")?;
    Ok(out)
}

/// The folder componentize-js runs in, and the project's path from it. componentize-js shows
/// the engine only its working folder, where a symlink leading out of it cannot be followed; a
/// project whose `hookgate_sdk` is a link (as `plugins/teams` links `../sdk-js/hookgate_sdk`)
/// builds from the closest folder holding both. The entry point still imports `../app.js` by
/// the path it was reached through, so it finds the project's own `app.js`.
fn workspace(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let sdk = dir.join("hookgate_sdk");
    let real = std::fs::canonicalize(&sdk).with_context(|| format!("{}", sdk.display()))?;
    let mut root = dir.to_path_buf();
    while !real.starts_with(&root) {
        if !root.pop() {
            bail!("{} and {} share no folder", dir.display(), real.display());
        }
    }
    let project = dir
        .strip_prefix(&root)
        .context("the project is inside its build folder")?
        .to_path_buf();
    Ok((root, project))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linked_sdk_builds_from_the_folder_holding_both() {
        let tmp = tempfile::tempdir().expect("tmp");
        let base = std::fs::canonicalize(tmp.path()).expect("canonical");
        std::fs::create_dir_all(base.join("sdk-js/hookgate_sdk")).expect("sdk");
        std::fs::create_dir_all(base.join("teams")).expect("project");
        std::os::unix::fs::symlink("../sdk-js/hookgate_sdk", base.join("teams/hookgate_sdk"))
            .expect("link");
        let (root, project) = workspace(&base.join("teams")).expect("workspace");
        assert_eq!((root, project), (base.clone(), PathBuf::from("teams")));

        std::fs::create_dir_all(base.join("copy/hookgate_sdk")).expect("vendored");
        let (root, project) = workspace(&base.join("copy")).expect("workspace");
        assert_eq!((root, project), (base.join("copy"), PathBuf::new()));
    }
}
