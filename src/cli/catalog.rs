//! `hookgate catalog [PRESET] [EVENT]`: the event catalog, read from what the binary embeds. It
//! prints to stdout what was asked (a sample or a schema byte for byte, so it can be piped to a
//! file or to `hookgate try --body`), and to stderr, with the closest names, what does not exist.

use crate::catalog::{self, Preset};
use std::io::Write as _;
use std::process::ExitCode;

pub(super) fn run(
    preset: Option<&str>,
    event: Option<&str>,
    schema: bool,
    sample: usize,
) -> anyhow::Result<ExitCode> {
    let presets = catalog::presets().map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(name) = preset else {
        list_presets(presets);
        return Ok(ExitCode::SUCCESS);
    };
    let p = match catalog::find_preset(presets, name) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e} (`hookgate catalog` lists them)");
            return Ok(ExitCode::FAILURE);
        }
    };
    let Some(event) = event else {
        list_events(p);
        return Ok(ExitCode::SUCCESS);
    };
    let e = match p.find_event(event) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e} (`hookgate catalog {}` lists them)", p.preset);
            return Ok(ExitCode::FAILURE);
        }
    };
    let path = if schema {
        let Some(path) = &e.schema else {
            eprintln!(
                "`{}` has no schema: {} documents no payload for it",
                e.event_type, p.title
            );
            return Ok(ExitCode::FAILURE);
        };
        path
    } else {
        let Some(path) = sample.checked_sub(1).and_then(|i| e.samples.get(i)) else {
            eprintln!(
                "`{}` has {} sample(s); --sample takes 1 to {}",
                e.event_type,
                e.samples.len(),
                e.samples.len()
            );
            return Ok(ExitCode::FAILURE);
        };
        path
    };
    let bytes = catalog::file(&p.preset, path)
        .ok_or_else(|| anyhow::anyhow!("catalog/{}/{path} is not embedded", p.preset))?;
    std::io::stdout().write_all(bytes)?;
    Ok(ExitCode::SUCCESS)
}

fn list_presets(presets: &[Preset]) {
    let width = presets.iter().map(|p| p.preset.len()).max().unwrap_or(0);
    for p in presets {
        let count = if p.open {
            format!("{} example events (senders name their own)", p.events.len())
        } else {
            format!("{} events", p.events.len())
        };
        println!("{:width$}  {} — {count}", p.preset, p.title);
    }
}

fn list_events(p: &Preset) {
    println!("{} — {}\n{}\n", p.preset, p.title, p.docs);
    let width = p
        .events
        .iter()
        .map(|e| e.event_type.len())
        .max()
        .unwrap_or(0);
    for e in &p.events {
        println!("{:width$}  {}", e.event_type, e.summary);
        if !e.aliases.is_empty() {
            println!("{:width$}  also: {}", "", e.aliases.join(", "));
        }
        let schema = if e.schema.is_some() {
            "schema"
        } else {
            "no schema"
        };
        println!(
            "{:width$}  {schema}, {} sample(s), {}",
            "",
            e.samples.len(),
            e.docs
        );
    }
}
