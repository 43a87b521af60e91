//! What kagi writes to standard error: a line a person reads, or with
//! `log.format = "json"` one JSON object a line for a log collector. A
//! request's line carries its id, which its audit entries carry too.
//! Query strings (a reset token), form values and cookies never appear.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static JSON: AtomicBool = AtomicBool::new(false);

/// Chooses the format for the rest of the process (at start).
pub fn use_json(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

/// One line of what kagi says (startup, a failure, a warning).
pub fn say(message: &str) {
    if JSON.load(Ordering::Relaxed) {
        let line = serde_json::json!({ "time": now(), "level": "info", "message": message });
        write_line(&line.to_string());
    } else {
        write_line(message);
    }
}

/// What one request came to, for its log line.
pub struct Answered<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub millis: f64,
    /// The request's id (also in the audit entries it wrote), when it
    /// was read at all.
    pub request: Option<&'a str>,
    /// The client as configured (the proxy's `X-Forwarded-For` hop when
    /// trusted), when the request was read.
    pub client: Option<&'a str>,
}

/// The line of one answered request.
pub fn answered(a: &Answered<'_>) {
    if JSON.load(Ordering::Relaxed) {
        let site = crate::site::Area::of_path(a.path).map(|area| area.name());
        let line = serde_json::json!({
            "time": now(),
            "level": if a.status >= 500 { "error" } else { "info" },
            "method": a.method,
            "path": a.path,
            "status": a.status,
            "ms": (a.millis * 10.0).round() / 10.0,
            "site": site,
            "client": a.client,
            "request": a.request,
        });
        write_line(&line.to_string());
    } else {
        let line = format!(
            "kagi: {} {} {} {:.1} ms",
            a.method, a.path, a.status, a.millis
        );
        write_line(&line);
    }
}

/// One line to standard error. A line that cannot be written (stderr a
/// file on a full disk) is dropped: it never stops kagi, nor answers 500.
fn write_line(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn now() -> String {
    crate::clock::log_time()
}
