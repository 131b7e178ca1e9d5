//! Reading `/metrics`' Prometheus text: shared by the tests and the load bench.

/// The value of one series in `metrics`: `series` is the name and labels exactly as printed
/// (`name` or `name{label="v"}`); `None` when it is absent or not a `T`.
pub fn sample<T: std::str::FromStr>(metrics: &str, series: &str) -> Option<T> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
