//! `hookgate plugin build [DIR]`: builds a plugin project into a component with its language's
//! toolchain (cargo for Rust, componentize-py for Python; componentize-js for JavaScript, and the
//! project's tsc before it for TypeScript, in `js.rs`) as `DIR/<name>.wasm`, and loads it as the
//! gateway would, so a component the host would refuse (a core module, an import it does not
//! offer) fails here and not at upload.
//!
//! The toolchain is found on `PATH` (TypeScript's in the project's `node_modules`); when it (or a
//! part it needs, like Rust's `wasm32-wasip2` target) is missing, the error names the command that
//! installs it. The build's own output goes to the terminal as it comes.

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod js;

/// Builds the project in `dir` and loads the component as the gateway would (its compiled code
/// cached in `cache`, when given); returns the component's path.
pub(crate) fn build(dir: &Path, cache: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let out = built(dir)?;
    check(&out, cache)?;
    Ok(out)
}

fn built(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.join("Cargo.toml").is_file() {
        return rust(dir);
    }
    if dir.join("app.py").is_file() && dir.join("hookgate_sdk/_component.py").is_file() {
        return python(dir);
    }
    if js::is_ts(dir) {
        return js::ts(dir);
    }
    if js::is_js(dir) {
        return js::js(dir);
    }
    bail!(
        "{} is not a plugin project: no Cargo.toml, nor app.py, app.js or app.ts (with \
         tsconfig.json) beside hookgate_sdk/ (write one with \
         `hookgate plugin new NAME --lang rust|python|js|ts`)",
        dir.display()
    )
}

/// The componentize-py the suite and the docs pin.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

fn python(dir: &Path) -> anyhow::Result<PathBuf> {
    need(
        "componentize-py",
        &["--version"],
        &format!("componentize-py is not installed: run `pip install {COMPONENTIZE_PY}`"),
    )?;
    let dir = std::fs::canonicalize(dir).with_context(|| format!("{}", dir.display()))?;
    let out = component_of(&dir);
    let mut cmd = Command::new("componentize-py");
    cmd.args([
        "-d",
        "hookgate_sdk/wit",
        "-w",
        "transformer",
        "componentize",
    ])
    .args(["-p", "."]);
    // componentize-py imports the project inside a WASI sandbox that sees only the paths given, so
    // a `hookgate_sdk` linked from elsewhere (the in-repo plugins share `plugins/sdk-python`) is
    // invisible through `.`: its real folder is given too.
    let sdk = dir.join("hookgate_sdk");
    let real_sdk = std::fs::canonicalize(&sdk).with_context(|| format!("{}", sdk.display()))?;
    if let Some(parent) = real_sdk.parent()
        && parent != dir
    {
        cmd.arg("-p").arg(parent);
    }
    cmd.args(["hookgate_sdk._component", "-o"]).arg(&out);
    run_tool(cmd, &dir, "componentize-py")?;
    Ok(out)
}

fn rust(dir: &Path) -> anyhow::Result<PathBuf> {
    need(
        "cargo",
        &["--version"],
        "Rust is not installed: install it from https://rustup.rs, then run `rustup target add wasm32-wasip2`",
    )?;
    if let Ok(out) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        && out.status.success()
        && !String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|t| t.trim() == "wasm32-wasip2")
    {
        bail!(
            "Rust's wasm32-wasip2 target is not installed: run `rustup target add wasm32-wasip2`"
        );
    }
    let mut cmd = Command::new("cargo");
    cmd.args(["build", "--release", "--target", "wasm32-wasip2"]);
    run_tool(cmd, dir, "cargo build")?;
    let meta = Command::new("cargo")
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo metadata")?;
    let meta: serde_json::Value =
        serde_json::from_slice(&meta.stdout).context("reading cargo metadata's answer")?;
    let manifest = std::fs::canonicalize(dir.join("Cargo.toml"))?;
    let package = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()))
        .context("cargo metadata does not list the project's package")?;
    let name = package["name"]
        .as_str()
        .context("the package has no name")?;
    let target_dir = meta["target_directory"]
        .as_str()
        .context("cargo metadata gives no target directory")?;
    let built = Path::new(target_dir)
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    if !built.is_file() {
        bail!(
            "cargo built no {}: is the package's `[lib] crate-type` missing \"cdylib\"?",
            built.display()
        );
    }
    let out = dir.join(format!("{name}.wasm"));
    std::fs::copy(&built, &out)
        .with_context(|| format!("copying {} to {}", built.display(), out.display()))?;
    Ok(out)
}

/// The component a Python, JavaScript or TypeScript project in (canonical) `dir` builds: `<folder>.wasm`.
fn component_of(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map_or("plugin".into(), |n| n.to_string_lossy().into_owned());
    dir.join(format!("{name}.wasm"))
}

/// Runs a build tool in `dir`, its output on the terminal as it comes.
fn run_tool(mut cmd: Command, dir: &Path, what: &str) -> anyhow::Result<()> {
    let status = cmd
        .current_dir(dir)
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Fails with `install` when `program` cannot be run.
fn need(program: &str, args: &[&str], install: &str) -> anyhow::Result<()> {
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => Ok(()),
        _ => bail!("{install}"),
    }
}

/// Loads the component as the gateway would.
fn check(wasm: &Path, cache: Option<PathBuf>) -> anyhow::Result<()> {
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let limits = crate::transform::wasm::Limits {
        timeout: crate::config::DEFAULT_PLUGIN_TIMEOUT,
        memory_bytes: usize::try_from(crate::config::DEFAULT_PLUGIN_MEMORY_MB << 20)
            .context("memory limit")?,
    };
    let engine = crate::transform::wasm::Engine::new(limits, cache)
        .map_err(|e| anyhow::anyhow!("wasm engine: {e}"))?;
    engine
        .load("build", &bytes)
        .map_err(|e| anyhow::anyhow!("{} would be refused by the gateway: {e}", wasm.display()))?;
    Ok(())
}
