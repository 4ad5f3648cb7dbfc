//! The service's counters, in the Prometheus text format (`GET /metrics`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in seconds (FHE requests take
/// from milliseconds to minutes).
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0];

/// Everything `/metrics` reports.
#[derive(Default)]
pub struct Metrics {
    /// Requests answered, by route and status.
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// Cumulative bucket counts, then the sum in microseconds and the count.
    latency: [AtomicU64; BUCKETS.len()],
    latency_us: AtomicU64,
    latency_count: AtomicU64,
    bootstraps: AtomicU64,
    /// Bootstraps per second of the last evaluated request (f64 bits).
    bootstrap_rate: AtomicU64,
    /// Requests admitted and not yet picked up by a worker.
    pub queue_depth: AtomicUsize,
    /// Server keys held, and their bytes on disk.
    pub keys_held: AtomicUsize,
    /// See `keys_held`.
    pub key_bytes: AtomicU64,
}

impl Metrics {
    /// Counts one answered request.
    pub fn record(&self, route: &str, status: u16, took: Duration) {
        *self.requests.lock().expect("metrics lock").entry((route.to_string(), status)).or_default() += 1;
        let s = took.as_secs_f64();
        for (bound, count) in BUCKETS.iter().zip(&self.latency) {
            if s <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_us.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts the bootstraps of one evaluation that took `took`.
    pub fn record_bootstraps(&self, n: u64, took: Duration) {
        self.bootstraps.fetch_add(n, Ordering::Relaxed);
        let rate = n as f64 / took.as_secs_f64().max(1e-9);
        self.bootstrap_rate.store(rate.to_bits(), Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let w = &mut out;
        let _ = writeln!(w, "# HELP secc_requests_total HTTP requests answered, by route and status.");
        let _ = writeln!(w, "# TYPE secc_requests_total counter");
        for ((route, status), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(w, "secc_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        let _ = writeln!(w, "# HELP secc_request_seconds Time from request to answer.");
        let _ = writeln!(w, "# TYPE secc_request_seconds histogram");
        let count = self.latency_count.load(Ordering::Relaxed);
        for (bound, n) in BUCKETS.iter().zip(&self.latency) {
            let _ = writeln!(w, "secc_request_seconds_bucket{{le=\"{bound}\"}} {}", n.load(Ordering::Relaxed));
        }
        let _ = writeln!(w, "secc_request_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.latency_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(w, "secc_request_seconds_sum {sum}\nsecc_request_seconds_count {count}");
        let gauges: [(&str, &str, &str, String); 5] = [
            (
                "secc_bootstraps_total",
                "counter",
                "Bootstraps evaluated.",
                self.bootstraps.load(Ordering::Relaxed).to_string(),
            ),
            (
                "secc_bootstraps_per_second",
                "gauge",
                "Bootstraps per second of the last evaluated request.",
                f64::from_bits(self.bootstrap_rate.load(Ordering::Relaxed)).to_string(),
            ),
            (
                "secc_queue_depth",
                "gauge",
                "Inference requests waiting for a worker.",
                self.queue_depth.load(Ordering::Relaxed).to_string(),
            ),
            ("secc_keys_held", "gauge", "Server keys held.", self.keys_held.load(Ordering::Relaxed).to_string()),
            (
                "secc_key_bytes",
                "gauge",
                "Bytes of the server keys held.",
                self.key_bytes.load(Ordering::Relaxed).to_string(),
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(w, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative_and_requests_are_counted_by_status() {
        let m = Metrics::default();
        m.record("/health", 200, Duration::from_millis(2));
        m.record("/v1/keys", 413, Duration::from_secs(3));
        let text = m.render();
        assert!(text.contains("secc_requests_total{route=\"/v1/keys\",status=\"413\"} 1"), "{text}");
        assert!(text.contains("secc_request_seconds_bucket{le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("secc_request_seconds_bucket{le=\"5\"} 2\n"), "{text}");
        assert!(text.contains("secc_request_seconds_count 2\n"), "{text}");
    }
}
