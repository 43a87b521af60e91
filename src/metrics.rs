//! What `/metrics` reports, in Prometheus' text format (version 0.0.4):
//! counters and fixed-bucket histograms kept in atomics by the threads that
//! see the events, and gauges read at the scrape. Written by hand: the
//! format is a few lines of text, and a client crate would bring a
//! registry, locks and dependencies for a dozen series.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
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
        Area::named(path.split('/').nth(1).unwrap_or(""))
    }

    /// The area whose paths begin with `/<name>`; `Other` for any name
    /// but `kaigo`, `portal` and `admin`.
    pub fn named(name: &str) -> Area {
        Area::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .unwrap_or(Area::Other)
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

/// The upper bounds of the store-flush buckets, in seconds: from nothing
/// to write (well under a millisecond) to an fsync behind a busy or failing
/// disk (seconds). Every page that reports something done waits for one.
const FLUSH_BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

/// The upper bounds of the sweep buckets, in seconds: a round with nothing
/// expired (milliseconds) to a million expired records (seconds and more).
const SWEEP_BUCKETS: [f64; 9] = [0.001, 0.01, 0.1, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0];

/// The statuses counted one by one; anything else (which kagi never
/// answers) is counted as 599 rather than dropped.
const STATUSES: std::ops::Range<u16> = 100..600;

/// The label of a request whose path is in no route table: a stranger's
/// made-up paths all count here, so that they add no series.
pub const OTHER_STEP: &str = "other";

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

    /// The observations so far.
    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
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

/// A code or link kagi mailed to a real address: counted when the mail is
/// queued for it, never for a decoy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Issued {
    /// A kaigo recovery's one-time password.
    RecoveryCode,
    /// The code of kaigo's first login that confirms the security address.
    FirstLoginCode,
    /// A portal reset link (the user's own, or one an operator sent).
    ResetLink,
    /// A portal registration's link.
    RegistrationLink,
}

impl Issued {
    const ALL: [Issued; 4] = [
        Issued::RecoveryCode,
        Issued::FirstLoginCode,
        Issued::ResetLink,
        Issued::RegistrationLink,
    ];

    /// The family it is counted in, and its `purpose` label.
    fn labels(self) -> (&'static str, &'static str) {
        match self {
            Issued::RecoveryCode => ("kagi_codes_issued_total", "recovery"),
            Issued::FirstLoginCode => ("kagi_codes_issued_total", "first_login"),
            Issued::ResetLink => ("kagi_links_issued_total", "reset"),
            Issued::RegistrationLink => ("kagi_links_issued_total", "registration"),
        }
    }
}

/// The requests of one step: per status (`STATUSES`), and their times.
#[derive(Debug)]
struct Step {
    area: Area,
    name: &'static str,
    /// Made at the step's first request: a step no one asked for costs
    /// no memory (a status array is 4 KiB) and adds no lines to a scrape.
    answered: OnceLock<Answered>,
}

#[derive(Debug)]
struct Answered {
    statuses: Vec<AtomicU64>,
    durations: Histogram,
}

/// The server's counters and histograms, shared by the threads that count.
#[derive(Debug)]
pub struct Metrics {
    /// Each area's `other` step (in `Area::ALL`'s order), then the known
    /// steps: the `step` label's values, fixed at the start.
    steps: Vec<Step>,
    /// The known steps' places in `steps`.
    step_at: HashMap<&'static str, usize>,
    /// The route table's path that answers a request path, if one does.
    step_of: fn(&str) -> Option<&'static str>,
    pub hashing: Queue,
    /// The front door's open connections, as the request thread last saw
    /// them (when it took a request: at the latest, the scrape's own).
    pub open_connections: AtomicU64,
    /// Codes and links mailed to real addresses, by `Issued`.
    issued: [AtomicU64; Issued::ALL.len()],
    /// Names made to wait out failures (`Area::ALL`'s order).
    lockouts: [AtomicU64; Area::ALL.len()],
    /// The sweeper's rounds, and how long each took.
    pub sweeps: Histogram,
    /// `Store::flush`: the durable write every page that reports something
    /// done waits for.
    pub store_flushes: Histogram,
}

impl Default for Metrics {
    /// Metrics that know no step: every request counts as `other`.
    fn default() -> Metrics {
        Metrics::new([], |_| None)
    }
}

/// What is read at the scrape, from outside this module.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Real mails waiting in the outbox, those of them that failed at
    /// least once, and those given up; None when the store cannot be read.
    pub mail_queued: Option<u64>,
    pub mail_retrying: Option<u64>,
    pub mail_failed: Option<u64>,
    pub mail_sent: u64,
    /// Requests refused by a rate limit, per action, since the start.
    pub rate_limited: Vec<(&'static str, u64)>,
    pub store_free_bytes: Option<u64>,
    pub store_up: bool,
}

impl Metrics {
    /// Metrics whose `step` label takes the values `known` (the route
    /// tables' paths) and `other`; `step_of` finds a request path's.
    pub fn new(
        known: impl IntoIterator<Item = &'static str>,
        step_of: fn(&str) -> Option<&'static str>,
    ) -> Metrics {
        let step = |area, name| Step {
            area,
            name,
            answered: OnceLock::new(),
        };
        let mut steps: Vec<Step> = Area::ALL.iter().map(|&a| step(a, OTHER_STEP)).collect();
        let mut step_at = HashMap::new();
        for name in known {
            if !step_at.contains_key(name) {
                step_at.insert(name, steps.len());
                steps.push(step(Area::of_path(name), name));
            }
        }
        Metrics {
            steps,
            step_at,
            step_of,
            hashing: Queue {
                depth: AtomicU64::new(0),
                waited: Histogram::new(&REQUEST_BUCKETS),
            },
            open_connections: AtomicU64::new(0),
            issued: Default::default(),
            lockouts: Default::default(),
            sweeps: Histogram::new(&SWEEP_BUCKETS),
            store_flushes: Histogram::new(&FLUSH_BUCKETS),
        }
    }

    /// Counts one answered request of `path` with `status` after `took`,
    /// under the step of the route that answers the path: a path in no
    /// route table is its area's `other`, so that the series stay a fixed
    /// set whatever paths strangers ask for.
    pub fn answered(&self, path: &str, status: u16, took: Duration) {
        let at = (self.step_of)(path)
            .and_then(|name| self.step_at.get(name).copied())
            .unwrap_or(Area::of_path(path) as usize);
        let answered = self.steps[at].answered.get_or_init(|| Answered {
            statuses: STATUSES.map(|_| AtomicU64::new(0)).collect(),
            durations: Histogram::new(&REQUEST_BUCKETS),
        });
        let status = if STATUSES.contains(&status) {
            status
        } else {
            STATUSES.end - 1
        };
        answered.statuses[usize::from(status - STATUSES.start)].fetch_add(1, Ordering::Relaxed);
        answered.durations.observe(took);
    }

    /// Counts a code or link mailed to a real address. One relaxed atomic
    /// add: nanoseconds beside the sealing, the writes and the flush that
    /// the real and the decoy branch both do, so it tells a client nothing.
    pub fn issued(&self, what: Issued) {
        self.issued[what as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a name of the area named `area` (`kaigo`, `portal`, `admin`)
    /// made to wait out its failures.
    pub fn locked_out(&self, area: &str) {
        self.lockouts[Area::named(area) as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition: every family with its `# HELP` and `# TYPE`.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        let answered = || {
            self.steps
                .iter()
                .filter_map(|s| Some((s, s.answered.get()?)))
        };
        let name = "kagi_requests_total";
        let _ = writeln!(
            out,
            "# HELP {name} Requests answered, by area, step (the route that answered) and status.\n# TYPE {name} counter"
        );
        for (step, answered) in answered() {
            for (i, count) in answered.statuses.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let status = STATUSES.start as usize + i;
                    let _ = writeln!(
                        out,
                        "{name}{{area=\"{}\",step=\"{}\",status=\"{status}\"}} {count}",
                        step.area.name(),
                        step.name,
                    );
                }
            }
        }
        let name = "kagi_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from a request's arrival to its answer, by area and step.\n# TYPE {name} histogram"
        );
        for (step, answered) in answered() {
            let labels = format!("area=\"{}\",step=\"{}\",", step.area.name(), step.name);
            answered.durations.render(&mut out, name, &labels);
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
        for (family, help) in [
            (
                "kagi_codes_issued_total",
                "One-time codes mailed to a real address (never a decoy), by purpose.",
            ),
            (
                "kagi_links_issued_total",
                "Reset and registration links mailed to a real address (never a decoy), by purpose.",
            ),
        ] {
            let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} counter");
            for what in Issued::ALL {
                let (name, purpose) = what.labels();
                if name == family {
                    let count = self.issued[what as usize].load(Ordering::Relaxed);
                    let _ = writeln!(out, "{name}{{purpose=\"{purpose}\"}} {count}");
                }
            }
        }
        let name = "kagi_lockouts_total";
        let _ = writeln!(
            out,
            "# HELP {name} Names made to wait out their failed logins or codes, by area.\n# TYPE {name} counter"
        );
        for area in [Area::Kaigo, Area::Portal, Area::Admin] {
            let count = self.lockouts[area as usize].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{area=\"{}\"}} {count}", area.name());
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
            "kagi_mail_retrying",
            "gauge",
            "Real mails in the outbox that failed at least once and are to be tried again.",
            gauges.mail_retrying,
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
            "kagi_sweep_runs_total",
            "counter",
            "Rounds of the sweeper (expired records, the audit trail's age, the mailbox).",
            Some(self.sweeps.count()),
        );
        let name = "kagi_sweep_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time one round of the sweeper took.\n# TYPE {name} histogram"
        );
        self.sweeps.render(&mut out, name, "");
        let name = "kagi_store_flush_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time of one durable write of the database (Store::flush).\n# TYPE {name} histogram"
        );
        self.store_flushes.render(&mut out, name, "");
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

    /// A route table of one path, as the router's would find it.
    fn login_only(path: &str) -> Option<&'static str> {
        (path.trim_end_matches('/') == "/kaigo/login").then_some("/kaigo/login")
    }

    #[test]
    fn a_request_is_counted_by_area_step_and_status_and_its_time_in_one_bucket() {
        let m = Metrics::new(["/kaigo/login", "/kaigo/menu"], login_only);
        m.answered("/kaigo/login", 200, Duration::from_millis(3));
        m.answered("/kaigo/login/", 200, Duration::from_millis(30));
        m.answered("/nowhere", 404, Duration::from_secs(20));
        let text = m.render(&Gauges::default());
        let kaigo = "area=\"kaigo\",step=\"/kaigo/login\"";
        let other = "area=\"other\",step=\"other\"";
        assert!(text.contains(&format!(
            "kagi_requests_total{{{kaigo},status=\"200\"}} 2\n"
        )));
        assert!(text.contains(&format!(
            "kagi_requests_total{{{other},status=\"404\"}} 1\n"
        )));
        let bucket = |labels: &str, le: &str, n: u32| {
            format!("kagi_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {n}\n")
        };
        assert!(text.contains(&bucket(kaigo, "0.005", 1)));
        assert!(text.contains(&bucket(kaigo, "0.05", 2)));
        assert!(text.contains(&bucket(other, "10", 0)));
        assert!(text.contains(&format!(
            "kagi_request_duration_seconds_count{{{other}}} 1\n"
        )));
        assert!(text.contains(&format!(
            "kagi_request_duration_seconds_sum{{{kaigo}}} 0.033\n"
        )));
        // A step no request took adds no series.
        assert!(!text.contains("/kaigo/menu"), "{text}");
    }

    #[test]
    fn a_path_in_no_table_counts_as_its_areas_other_step() {
        let m = Metrics::new(["/kaigo/login"], login_only);
        for junk in [
            "/kaigo/login/x",
            "/kaigo/%00",
            "/portal/random-1",
            "/admin/../etc",
        ] {
            m.answered(junk, 404, Duration::ZERO);
        }
        let text = m.render(&Gauges::default());
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("kagi_requests_total{"))
            .collect();
        assert_eq!(
            series,
            [
                "kagi_requests_total{area=\"kaigo\",step=\"other\",status=\"404\"} 2",
                "kagi_requests_total{area=\"portal\",step=\"other\",status=\"404\"} 1",
                "kagi_requests_total{area=\"admin\",step=\"other\",status=\"404\"} 1",
            ]
        );
    }

    #[test]
    fn issued_codes_links_lockouts_sweeps_and_flushes_are_counted() {
        let m = Metrics::default();
        m.issued(Issued::RecoveryCode);
        m.issued(Issued::RegistrationLink);
        m.issued(Issued::RegistrationLink);
        m.locked_out("portal");
        m.sweeps.observe(Duration::from_millis(2));
        m.store_flushes.observe(Duration::from_micros(300));
        let text = m.render(&Gauges {
            mail_retrying: Some(3),
            ..Gauges::default()
        });
        for line in [
            "kagi_codes_issued_total{purpose=\"recovery\"} 1",
            "kagi_codes_issued_total{purpose=\"first_login\"} 0",
            "kagi_links_issued_total{purpose=\"reset\"} 0",
            "kagi_links_issued_total{purpose=\"registration\"} 2",
            "kagi_lockouts_total{area=\"portal\"} 1",
            "kagi_lockouts_total{area=\"kaigo\"} 0",
            "kagi_mail_retrying 3",
            "kagi_sweep_runs_total 1",
            "kagi_sweep_duration_seconds_bucket{le=\"0.01\"} 1",
            "kagi_store_flush_duration_seconds_bucket{le=\"0.0005\"} 1",
            "kagi_store_flush_duration_seconds_count 1",
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line} in {text}");
        }
    }
}
