//! Counter and histogram families, and how each writes its series as Prometheus text.
//!
//! A sample is a short mutex section that allocates only for a label set's first sample (these
//! run several times per event); nothing here knows what is counted.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// A counter family: one value per label set.
#[derive(Debug, Default)]
pub(super) struct Counters<const N: usize>(Mutex<BTreeMap<Labels<N>, u64>>);

impl<const N: usize> Counters<N> {
    /// Allocates only for a label set's first sample: this runs several times per event.
    pub(super) fn add(&self, labels: [&str; N], n: u64) {
        let mut m = self.0.lock();
        match m.get_mut(&labels as &dyn LabelSet) {
            Some(v) => *v += n,
            None => {
                m.insert(Labels(labels.map(str::to_string)), n);
            }
        }
    }

    pub(super) fn render(&self, out: &mut String, name: &str, help: &str, keys: [&str; N]) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (labels, n) in self.0.lock().iter() {
            let _ = writeln!(out, "{name}{{{}}} {n}", label_pairs(&keys, &labels.0));
        }
    }
}

/// A counter's label values, in the order of its label names.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Labels<const N: usize>([String; N]);

/// Label values as a map looks them up: owned in the map, borrowed in a sample.
trait LabelSet {
    fn len(&self) -> usize;
    fn at(&self, i: usize) -> Option<&str>;
}

impl<const N: usize> LabelSet for Labels<N> {
    fn len(&self) -> usize {
        N
    }
    fn at(&self, i: usize) -> Option<&str> {
        self.0.get(i).map(String::as_str)
    }
}

impl<const N: usize> LabelSet for [&str; N] {
    fn len(&self) -> usize {
        N
    }
    fn at(&self, i: usize) -> Option<&str> {
        self.get(i).copied()
    }
}

/// Value by value, as `[String; N]` orders (which `Labels` derives), so a borrowed set finds
/// its owned twin.
impl Ord for dyn LabelSet + '_ {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // A missing value orders first, as a shorter array would.
        (0..self.len().max(other.len()))
            .map(|i| self.at(i).cmp(&other.at(i)))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    }
}

impl PartialOrd for dyn LabelSet + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for dyn LabelSet + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for dyn LabelSet + '_ {}

impl<'a, const N: usize> std::borrow::Borrow<dyn LabelSet + 'a> for Labels<N> {
    fn borrow(&self) -> &(dyn LabelSet + 'a) {
        self
    }
}

#[derive(Debug, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn record(&mut self, bounds: &[f64], secs: f64) {
        // Stored per bucket, made cumulative when rendered.
        if let Some(i) = bounds.iter().position(|b| secs <= *b) {
            self.counts[i] += 1;
        }
        self.sum += secs;
        self.count += 1;
    }
}

/// A histogram family: one histogram per label value.
#[derive(Debug)]
pub(super) struct Histograms {
    bounds: &'static [f64],
    by_label: Mutex<BTreeMap<String, Histogram>>,
}

impl Histograms {
    pub(super) fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            by_label: Mutex::default(),
        }
    }

    pub(super) fn observe(&self, label: &str, value: Duration) {
        let secs = value.as_secs_f64();
        let mut m = self.by_label.lock();
        // Allocates only for a label's first sample.
        match m.get_mut(label) {
            Some(h) => h.record(self.bounds, secs),
            None => {
                let mut h = Histogram {
                    counts: vec![0; self.bounds.len()],
                    sum: 0.0,
                    count: 0,
                };
                h.record(self.bounds, secs);
                m.insert(label.to_string(), h);
            }
        }
    }

    pub(super) fn render(&self, out: &mut String, name: &str, help: &str, key: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (label, h) in self.by_label.lock().iter() {
            let at_most: Vec<u64> = h
                .counts
                .iter()
                .scan(0, |sum, n| {
                    *sum += n;
                    Some(*sum)
                })
                .collect();
            let series = Series {
                name,
                label: &format!("{key}=\"{}\",", escape(label)),
                bounds: self.bounds,
            };
            series.write(out, &at_most, h.count, h.sum);
        }
    }
}

/// One histogram's lines: `label` is its label pairs, each followed by a comma, or empty.
pub(super) struct Series<'a> {
    pub(super) name: &'a str,
    pub(super) label: &'a str,
    pub(super) bounds: &'a [f64],
}

impl Series<'_> {
    /// `at_most`: the cumulative count at each bound.
    pub(super) fn write(&self, out: &mut String, at_most: &[u64], count: u64, sum: f64) {
        let Self {
            name,
            label,
            bounds,
        } = self;
        for (bound, n) in bounds.iter().zip(at_most) {
            let _ = writeln!(out, "{name}_bucket{{{label}le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{{label}le=\"+Inf\"}} {count}");
        // Without labels, no braces at all.
        let label = label.trim_end_matches(',');
        let braced = if label.is_empty() {
            String::new()
        } else {
            format!("{{{label}}}")
        };
        let _ = writeln!(
            out,
            "{name}_sum{braced} {sum}\n{name}_count{braced} {count}"
        );
    }
}

fn label_pairs<const N: usize>(keys: &[&str; N], values: &[String; N]) -> String {
    keys.iter()
        .zip(values)
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_set_counts_in_one_series_found_by_its_values() {
        let c = Counters::<2>::default();
        for labels in [
            ["b", "x"],
            ["a", "y"],
            ["b", "x"],
            ["a", "x"],
            ["a", "y"],
            ["ab", ""],
        ] {
            c.add(labels, 2);
        }
        let mut out = String::new();
        c.render(&mut out, "n", "help", ["s", "r"]);
        let series: Vec<&str> = out.lines().skip(2).collect();
        assert_eq!(
            series,
            [
                r#"n{s="a",r="x"} 2"#,
                r#"n{s="a",r="y"} 4"#,
                r#"n{s="ab",r=""} 2"#,
                r#"n{s="b",r="x"} 4"#,
            ]
        );
    }
}
