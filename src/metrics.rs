//! What `/metrics` reports, in Prometheus' text format (version 0.0.4):
//! counters and fixed-bucket histograms kept in atomics by the threads that
//! see the events, and gauges read at the scrape. Written by hand: the
//! format is a few lines of text, and a client crate would bring a
//! registry, locks and dependencies for a dozen series.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Where a request went, as the `area` label says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    Kaigo,
    Portal,
    Admin,
    Other,
}

impl Area {
    const ALL: [Area; 4] = [Area::Kaigo, Area::Portal, Area::Admin, Area::Other];

    /// The area of a request path: its first segment.
    pub fn of_path(path: &str) -> Area {
        match path.split('/').nth(1) {
            Some("kaigo") => Area::Kaigo,
            Some("portal") => Area::Portal,
            Some("admin") => Area::Admin,
            _ => Area::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Area::Kaigo => "kaigo",
            Area::Portal => "portal",
            Area::Admin => "admin",
            Area::Other => "other",
        }
    }
}

/// The upper bounds of the request-time buckets, in seconds: from a page
/// answered from memory (a few ms) to a login queued behind many argon2id
/// hashes (seconds).
const REQUEST_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The statuses counted one by one; anything else (which kagi never
/// answers) is counted as 599 rather than dropped.
const STATUSES: std::ops::Range<u16> = 100..600;

/// A histogram with fixed buckets: a count per bucket (not cumulative;
/// `render` adds them up), the sum in microseconds, and the count.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One more than `bounds`: the last is +Inf.
    buckets: Vec<AtomicU64>,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Notes one observation of `took`.
    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let at = self
            .bounds
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(self.bounds.len());
        self.buckets[at].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The `_bucket`, `_sum` and `_count` lines of `name` with `labels`
    /// (`area="kaigo",` or empty). The count is the +Inf bucket, so that
    /// the two always agree within one scrape.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = match self.bounds.get(i) {
                Some(b) => b.to_string(),
                None => "+Inf".into(),
            };
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let labels = labels.trim_end_matches(',');
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// The hashing pool's queue: how many tasks wait, and how long they waited.
#[derive(Debug)]
pub struct Queue {
    pub depth: AtomicU64,
    pub waited: Histogram,
}

/// The server's counters and histograms, shared by the threads that count.
#[derive(Debug)]
pub struct Metrics {
    /// Answered requests per area and status (`STATUSES`), lock-free: one
    /// counter per pair, about 16 KiB in all.
    requests: Vec<Vec<AtomicU64>>,
    durations: Vec<Histogram>,
    pub hashing: Queue,
    /// The front door's open connections, as the request thread last saw
    /// them (when it took a request: at the latest, the scrape's own).
    pub open_connections: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let statuses = STATUSES.len();
        Metrics {
            requests: Area::ALL
                .iter()
                .map(|_| (0..statuses).map(|_| AtomicU64::new(0)).collect())
                .collect(),
            durations: Area::ALL
                .iter()
                .map(|_| Histogram::new(&REQUEST_BUCKETS))
                .collect(),
            hashing: Queue {
                depth: AtomicU64::new(0),
                waited: Histogram::new(&REQUEST_BUCKETS),
            },
            open_connections: AtomicU64::new(0),
        }
    }
}

/// What is read at the scrape, from outside this module.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Real mails waiting in the outbox, and those given up; None when
    /// the store cannot be read.
    pub mail_queued: Option<u64>,
    pub mail_failed: Option<u64>,
    pub mail_sent: u64,
    /// Requests refused by a rate limit, per action, since the start.
    pub rate_limited: Vec<(&'static str, u64)>,
    pub store_free_bytes: Option<u64>,
    pub store_up: bool,
}

impl Metrics {
    /// Counts one answered request of `path` with `status` after `took`.
    pub fn answered(&self, path: &str, status: u16, took: Duration) {
        let area = Area::of_path(path) as usize;
        let status = if STATUSES.contains(&status) {
            status
        } else {
            STATUSES.end - 1
        };
        self.requests[area][usize::from(status - STATUSES.start)].fetch_add(1, Ordering::Relaxed);
        self.durations[area].observe(took);
    }

    /// The exposition: every family with its `# HELP` and `# TYPE`.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        let name = "kagi_requests_total";
        let _ = writeln!(
            out,
            "# HELP {name} Requests answered, by area and status.\n# TYPE {name} counter"
        );
        for area in Area::ALL {
            for (i, count) in self.requests[area as usize].iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let status = STATUSES.start as usize + i;
                    let _ = writeln!(
                        out,
                        "{name}{{area=\"{}\",status=\"{status}\"}} {count}",
                        area.name()
                    );
                }
            }
        }
        let name = "kagi_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from a request's arrival to its answer, by area.\n# TYPE {name} histogram"
        );
        for area in Area::ALL {
            self.durations[area as usize].render(
                &mut out,
                name,
                &format!("area=\"{}\",", area.name()),
            );
        }
        let gauge = |out: &mut String, name: &str, kind: &str, help: &str, value: Option<u64>| {
            if let Some(value) = value {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
                );
            }
        };
        gauge(
            &mut out,
            "kagi_hashing_queue_depth",
            "gauge",
            "Requests waiting for a hashing worker.",
            Some(self.hashing.depth.load(Ordering::Relaxed)),
        );
        let name = "kagi_hashing_queue_wait_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time a request waited for a hashing worker.\n# TYPE {name} histogram"
        );
        self.hashing.waited.render(&mut out, name, "");
        let name = "kagi_rate_limited_total";
        let _ = writeln!(
            out,
            "# HELP {name} Requests refused by a rate limit (429), by action.\n# TYPE {name} counter"
        );
        for (action, count) in &gauges.rate_limited {
            let _ = writeln!(out, "{name}{{action=\"{action}\"}} {count}");
        }
        gauge(
            &mut out,
            "kagi_mail_queued",
            "gauge",
            "Real mails in the outbox waiting to be accepted by the relay.",
            gauges.mail_queued,
        );
        gauge(
            &mut out,
            "kagi_mail_failed",
            "gauge",
            "Real mails given up, kept until retried or removed by an operator.",
            gauges.mail_failed,
        );
        gauge(
            &mut out,
            "kagi_mail_sent_total",
            "counter",
            "Mails accepted by the relay (or captured) since the start.",
            Some(gauges.mail_sent),
        );
        gauge(
            &mut out,
            "kagi_store_up",
            "gauge",
            "1 while the database is open, 0 while it cannot be (see /healthz).",
            Some(u64::from(gauges.store_up)),
        );
        gauge(
            &mut out,
            "kagi_store_free_bytes",
            "gauge",
            "Free space on the database's filesystem, for kagi's user.",
            gauges.store_free_bytes,
        );
        gauge(
            &mut out,
            "kagi_open_connections",
            "gauge",
            "Client connections the front door holds open.",
            Some(self.open_connections.load(Ordering::Relaxed)),
        );
        gauge(
            &mut out,
            "kagi_process_resident_memory_bytes",
            "gauge",
            "Resident set size of the process (VmRSS).",
            resident_bytes(),
        );
        out
    }
}

/// The process's resident set, from /proc/self/status; None elsewhere.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_counted_by_area_and_status_and_its_time_in_one_bucket() {
        let m = Metrics::default();
        m.answered("/kaigo/login", 200, Duration::from_millis(3));
        m.answered("/kaigo/login", 200, Duration::from_millis(30));
        m.answered("/nowhere", 404, Duration::from_secs(20));
        let text = m.render(&Gauges::default());
        assert!(text.contains("kagi_requests_total{area=\"kaigo\",status=\"200\"} 2\n"));
        assert!(text.contains("kagi_requests_total{area=\"other\",status=\"404\"} 1\n"));
        assert!(
            text.contains("kagi_request_duration_seconds_bucket{area=\"kaigo\",le=\"0.005\"} 1\n")
        );
        assert!(
            text.contains("kagi_request_duration_seconds_bucket{area=\"kaigo\",le=\"0.05\"} 2\n")
        );
        assert!(text.contains("kagi_request_duration_seconds_bucket{area=\"other\",le=\"10\"} 0\n"));
        assert!(text.contains("kagi_request_duration_seconds_count{area=\"other\"} 1\n"));
        assert!(text.contains("kagi_request_duration_seconds_sum{area=\"kaigo\"} 0.033\n"));
    }
}
