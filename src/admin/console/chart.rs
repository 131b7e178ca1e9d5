//! The overview's chart of the last hour, drawn as SVG on the server: no script, no library, and
//! nothing but numbers from [`crate::metrics::activity`] in it.
//!
//! Colours and sizes are presentation attributes, not `style`, which the Content-Security-Policy
//! forbids.

use crate::metrics::activity::Minute;
use maud::{Markup, html};

const WIDTH: u32 = 720;
const HEIGHT: u32 = 160;
/// Room on the left for the scale, and below for the time axis.
const LEFT: u32 = 40;
const BOTTOM: u32 = 20;

/// Events per minute as one bar per minute, finished deliveries as a line of succeeded and one of
/// failed, over `minutes` (oldest first).
pub(super) fn last_hour(minutes: &[Minute]) -> Markup {
    let top = minutes
        .iter()
        .map(|m| m.events.max(m.succeeded).max(m.failed))
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_w = WIDTH - LEFT;
    let plot_h = HEIGHT - BOTTOM;
    let n = minutes.len().max(1) as u32;
    let step = plot_w as f64 / f64::from(n);
    let y = |v: u64| f64::from(plot_h) - (v as f64 / top as f64) * f64::from(plot_h);
    let x = |i: usize| f64::from(LEFT) + step * i as f64;
    let line = |pick: fn(&Minute) -> u64| {
        minutes
            .iter()
            .enumerate()
            .map(|(i, m)| format!("{:.1},{:.1}", x(i) + step / 2.0, y(pick(m))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let total = |pick: fn(&Minute) -> u64| minutes.iter().map(pick).sum::<u64>();
    let label = format!(
        "Last hour: {} events received, {} deliveries succeeded, {} failed or dead",
        total(|m| m.events),
        total(|m| m.succeeded),
        total(|m| m.failed)
    );
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(label) {
                title { (label) }
                line x1=(LEFT) y1=(plot_h) x2=(WIDTH) y2=(plot_h) stroke="#999" stroke-width="1" {}
                text x="2" y="12" font-size="11" fill="#555" { (top) "/min" }
                text x="2" y=(plot_h) font-size="11" fill="#555" { "0" }
                text x=(LEFT) y=(HEIGHT - 4) font-size="11" fill="#555" { "−60 min" }
                text x=(WIDTH - 28) y=(HEIGHT - 4) font-size="11" fill="#555" { "now" }
                @for (i, m) in minutes.iter().enumerate() {
                    @if m.events > 0 {
                        rect.events x=(format!("{:.1}", x(i) + 1.0)) y=(format!("{:.1}", y(m.events)))
                            width=(format!("{:.1}", (step - 2.0).max(1.0)))
                            height=(format!("{:.1}", f64::from(plot_h) - y(m.events)))
                            fill="#8ab4f8" {
                            title { (m.events) " events, " (60 - i) " min ago" }
                        }
                    }
                }
                polyline points=(line(|m| m.succeeded)) fill="none" stroke="#188038" stroke-width="2" {}
                polyline points=(line(|m| m.failed)) fill="none" stroke="#d93025" stroke-width="2" {}
            }
            figcaption {
                span.key.events { "events received" }
                span.key.succeeded { "deliveries succeeded" }
                span.key.failed { "failed or dead" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_busiest_minute() {
        let mut minutes = vec![Minute::default(); 60];
        minutes[59] = Minute {
            events: 10,
            succeeded: 4,
            failed: 1,
        };
        minutes[30].events = 5;
        let svg = last_hour(&minutes).into_string();
        assert!(svg.contains("10/min"), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 2);
        // The busiest bar is the plot's full height, the other half of it.
        assert!(svg.contains("height=\"140.0\""), "{svg}");
        assert!(svg.contains("height=\"70.0\""), "{svg}");
        assert!(svg.contains("15 events received, 4 deliveries succeeded, 1 failed"));
        assert!(!svg.contains("style="));
    }

    #[test]
    fn an_idle_hour_draws_an_empty_chart() {
        let svg = last_hour(&[Minute::default(); 60]).into_string();
        assert_eq!(svg.matches("<rect").count(), 0);
        assert!(svg.contains("1/min"));
    }
}
