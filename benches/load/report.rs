//! What the load bench prints: each scenario's outcome (rates, latencies, CPU by part, group
//! commits, problems), the table, and the ratios against the same run's baselines.

use crate::load::{self, Arrivals, Sent, Stats};
use crate::peers::{self, CpuParts, Gateway};
use crate::{Args, DELIVERY_DEADLINE};
use std::time::Duration;

/// One scenario's outcome.
pub(crate) struct Outcome {
    pub(crate) name: String,
    pub(crate) delivered: Stats,
    /// The answers the senders got (for a gateway: the 202s).
    pub(crate) answered: Stats,
    /// CPU time of what the load went through (gateway with children, or nginx).
    pub(crate) cpu: Option<Duration>,
    /// A gateway's CPU time by part ([`CpuParts::NAMES`]).
    pub(crate) parts: Option<[Duration; 4]>,
    /// The local PostgreSQL server's CPU time, for a gateway on PostgreSQL.
    pub(crate) postgres: Option<Duration>,
    /// The gateways' group commits, when their build reports them.
    pub(crate) commits: Option<peers::Commits>,
    pub(crate) problems: Vec<String>,
}

pub(crate) fn print_timeline(name: &str, sent: &Sent, arrivals: &Arrivals, window: Duration) {
    eprintln!("{name}, by send time:");
    eprintln!("  from s    sent/s   p50 ms   p99 ms");
    for w in load::timeline(&sent.origin, &arrivals.at, sent.first, window) {
        eprintln!(
            "  {:>6.1} {:>9.0} {:>8} {:>8}",
            w.from.as_secs_f64(),
            w.per_sec,
            ms(w.p50),
            ms(w.p99)
        );
    }
}

/// The first warnings and errors the gateways logged: why a scenario saw duplicates or losses.
pub(crate) fn print_warnings(name: &str, gateways: &[Gateway]) {
    const SHOWN: usize = 20;
    for (i, g) in gateways.iter().enumerate() {
        let Ok(logs) = g.process.logs.lock() else {
            continue;
        };
        let mut warned = logs
            .iter()
            .filter(|l| l.contains("\"WARN\"") || l.contains("\"ERROR\""))
            .peekable();
        if warned.peek().is_some() {
            eprintln!("{name}: instance {i} logged (first {SHOWN}):");
        }
        for line in warned.take(SHOWN) {
            eprintln!("  {line}");
        }
    }
}

pub(crate) fn outcome(
    name: &str,
    sent: Sent,
    arrivals: Arrivals,
    cpu: Option<Duration>,
) -> Outcome {
    let mut problems = Vec::new();
    let n = sent.origin.len();
    if sent.refused > 0 {
        problems.push(format!(
            "{name}: {} of {n} sends refused; first: {}",
            sent.refused,
            sent.first_error.as_deref().unwrap_or("?")
        ));
    }
    if arrivals.unique < n {
        // A refused send was never stored; an answered one must arrive (at least once).
        let answered_lost = sent
            .origin
            .iter()
            .zip(&arrivals.at)
            .filter(|(answered, arrived)| answered.is_some() && arrived.is_none())
            .count();
        problems.push(format!(
            "{name}: {} of {n} events not delivered within {DELIVERY_DEADLINE:?} of the last send, \
             {answered_lost} of them answered (the rest refused)",
            n - arrivals.unique
        ));
    }
    if arrivals.unreadable > 0 {
        problems.push(format!(
            "{name}: {} requests without a known `seq`",
            arrivals.unreadable
        ));
    }
    if arrivals.duplicates > 0 {
        // At-least-once delivery allows this; worth knowing, not a failure.
        eprintln!("note: {name}: {} duplicate deliveries", arrivals.duplicates);
    }
    let mut latencies = Vec::with_capacity(n);
    let mut last_arrival = sent.first;
    for (origin, arrival) in sent.origin.iter().zip(&arrivals.at) {
        if let (Some(o), Some(a)) = (origin, arrival) {
            latencies.push(a.saturating_duration_since(*o));
            last_arrival = last_arrival.max(*a);
        }
    }
    Outcome {
        name: name.to_string(),
        delivered: load::stats(latencies, last_arrival - sent.first),
        answered: load::stats(sent.answered, sent.last_answer - sent.first),
        cpu,
        parts: None,
        commits: None,
        postgres: None,
        problems,
    }
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

pub(crate) fn report(args: &Args, rows: &[Outcome], rate: f64) {
    println!(
        "\nhookgate load bench: {} events, {} senders; open loop {rate:.0}/s for {:.1} s; transform {:?}; store {}; {} instance(s); {} CPUs",
        args.events,
        args.concurrency,
        args.duration,
        args.transform,
        match &args.store {
            Some(_) => "postgres".to_string(),
            None => format!("sqlite (sync={})", args.sync),
        },
        args.instances,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!(
        "latency: send start to receiver arrival; `202 p99`: send start to the gateway's answer"
    );
    println!(
        "\n{:<34} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9}",
        "scenario",
        "events",
        "deliv/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "202 p99",
        "CPU s",
        "ev/CPU-s"
    );
    for o in rows {
        let d = &o.delivered;
        let (cpu, per_cpu) = match o.cpu {
            Some(c) if !c.is_zero() => (
                format!("{:.1}", c.as_secs_f64()),
                format!("{:.0}", d.events as f64 / c.as_secs_f64()),
            ),
            _ => ("-".into(), "-".into()),
        };
        let answered = match o.name.contains("gateway") || o.name.contains("compared") {
            true => ms(o.answered.p99),
            false => "-".into(),
        };
        println!(
            "{:<34} {:>7} {:>9.0} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9}",
            o.name,
            d.events,
            d.per_sec,
            ms(d.p50),
            ms(d.p99),
            ms(d.max),
            answered,
            cpu,
            per_cpu
        );
    }
    println!("\nthe gateway's CPU per delivered event, by part (µs):");
    for o in rows {
        if let Some(parts) = o.parts.filter(|_| o.delivered.events > 0) {
            let per_event = |d: &Duration| d.as_secs_f64() * 1e6 / o.delivered.events as f64;
            let mut cells: Vec<String> = CpuParts::NAMES
                .iter()
                .zip(&parts)
                .map(|(name, d)| format!("{name} {:.0}", per_event(d)))
                .collect();
            if let Some(pg) = &o.postgres {
                cells.push(format!("(beside it: postgres server {:.0})", per_event(pg)));
            }
            println!("  {:<32} {}", o.name, cells.join(" · "));
        }
    }
    println!(
        "\nthe store's group commits (hookgate_store_commit_seconds; every 202 waits for one):"
    );
    for o in rows {
        if let Some(c) = &o.commits {
            println!(
                "  {:<32} {} commits ({:.1} delivered events per commit); over 25 ms: {}, over 100 ms: {}",
                o.name,
                c.count,
                o.delivered.events as f64 / c.count.max(1) as f64,
                c.over_25ms,
                c.over_100ms
            );
        }
    }
    let find = |p: &str| rows.iter().find(|o| o.name.starts_with(p));
    let closed = |p: &str| find(&format!("{p} closed"));
    println!();
    if let Some(gw) = closed("gateway") {
        for (label, other) in [
            ("gateway + console", closed("gateway + console")),
            ("gateway on sqlite", closed("gateway on sqlite")),
            ("baseline", closed("baseline")),
            ("nginx relay", closed("nginx relay")),
            ("compared build", closed("compared build")),
        ] {
            if let Some(o) = other {
                let per_cpu = |x: &Outcome| {
                    x.cpu
                        .map(|c| x.delivered.events as f64 / c.as_secs_f64().max(1e-9))
                };
                let cpu_ratio = match (per_cpu(gw), per_cpu(o)) {
                    (Some(a), Some(b)) => format!(", delivered per CPU-second {:.2}x", a / b),
                    _ => String::new(),
                };
                println!(
                    "gateway / {label}, closed loop: delivered/s {:.2}x{cpu_ratio}",
                    gw.delivered.per_sec / o.delivered.per_sec.max(1e-9)
                );
            }
        }
    }
    for label in ["compared build", "gateway on sqlite"] {
        print_rounds(rows, label);
    }
}

/// Each `--rounds` round's ratios of this build to `label`, and their median.
fn print_rounds(rows: &[Outcome], label: &str) {
    let closed =
        |p: String| -> Vec<&Outcome> { rows.iter().filter(|o| o.name.starts_with(&p)).collect() };
    let (ours, theirs) = (
        closed("gateway closed".into()),
        closed(format!("{label} closed")),
    );
    if theirs.len() < 2 || ours.len() != theirs.len() {
        return;
    }
    let per_cpu = |x: &Outcome| {
        x.cpu.map_or(0.0, |c| {
            x.delivered.events as f64 / c.as_secs_f64().max(1e-9)
        })
    };
    let ratios = |f: &dyn Fn(&Outcome) -> f64| -> (String, f64) {
        let mut r: Vec<f64> = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| f(a) / f(b).max(1e-9))
            .collect();
        let each = r
            .iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(" ");
        r.sort_by(f64::total_cmp);
        let mid = r.len() / 2;
        let median = match r.len() % 2 {
            0 => (r[mid - 1] + r[mid]) / 2.0,
            _ => r[mid],
        };
        (each, median)
    };
    let (rate, rate_median) = ratios(&|o| o.delivered.per_sec);
    let (cpu, cpu_median) = ratios(&per_cpu);
    println!(
        "gateway / {label}, closed loop, {} rounds: delivered/s {rate} (median {rate_median:.2}x); \
         delivered per CPU-second {cpu} (median {cpu_median:.2}x)",
        theirs.len()
    );
}
