//! `/metrics`: refused without the admin token, and with it an exposition
//! that Prometheus' own client library parses (`tests/metrics/parse.py`,
//! run in the tests' virtual environment), whose counters follow the
//! traffic the test made.

use crate::register::{register, Typed, NEW};
use crate::support::kaigo::{OSAKA_MAIL, OSAKA_OFFICE};
use crate::support::{
    admin_get, exchange, kaigo, portal, python, spawn, spawn_with, wait_until, TestServer,
};
use serde_json::Value;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

const PARSER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/metrics/parse.py");

/// A demo kaigo account (data/demo.toml) and its password.
const TOKYO_13: (&str, &str) = ("KJ131311111111", "kaigoDemo13");

/// The operator's scrape, parsed by prometheus_client: the families by name
/// as `parse.py` prints them. Panics on a refusal or a parser's error.
fn scrape(server: &TestServer) -> Value {
    scrape_at(server.addr, &server.dir)
}

/// `scrape` of the server at `addr` whose data directory is `dir`.
fn scrape_at(addr: SocketAddr, dir: &Path) -> Value {
    let page = admin_get(addr, dir, "/metrics");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse(&page.body)
}

fn parse(exposition: &str) -> Value {
    let mut child = Command::new(python())
        .arg(PARSER)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the parser runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused the exposition: {}\n{exposition}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The family `name`'s type as the parser understood it (a counter's
/// family is named without `_total`).
fn kind(families: &Value, name: &str) -> String {
    families[name]["type"]
        .as_str()
        .unwrap_or_else(|| panic!("no family {name} in {families}"))
        .to_string()
}

/// The sum of the samples named `sample` whose labels include `labels`;
/// None when there is none.
fn value(families: &Value, sample: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = families
        .as_object()
        .unwrap()
        .values()
        .flat_map(|f| f["samples"].as_array().unwrap())
        .filter(|s| s[0] == sample)
        .filter(|s| labels.iter().all(|(k, v)| s[1][*k] == *v))
        .map(|s| s[2].as_f64().unwrap_or(f64::INFINITY))
        .collect();
    (!matching.is_empty()).then(|| matching.iter().sum())
}

/// The one sample named `sample` with exactly `labels`; 0 when there is
/// none (a counter not yet counted).
fn count(families: &Value, sample: &str, labels: &[(&str, &str)]) -> f64 {
    value(families, sample, labels).unwrap_or(0.0)
}

fn requests(families: &Value, area: &str, status: &str) -> f64 {
    value(
        families,
        "kagi_requests_total",
        &[("area", area), ("status", status)],
    )
    .unwrap_or(0.0)
}

#[test]
fn metrics_are_refused_without_the_admin_token_and_count_the_requests_made() {
    // The free space it reports is sled's disk's.
    let server = crate::support::spawn_on_sled_with(|_| {});
    let before = scrape(&server);
    let mut user = server.client();
    assert_eq!(user.get("/kaigo/login").status, 200);
    assert_eq!(user.get("/kaigo/no-such-page").status, 404);
    let menu = kaigo::login(&mut user, TOKYO_13.0, TOKYO_13.1);
    assert_eq!(menu.status, 200, "{}", menu.body);
    // A stranger, and a wrong token, get what /admin's API answers a wrong
    // token: 404, and no counts.
    let stranger = exchange(
        server.addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(stranger.status, 404);
    assert!(!stranger.body.contains("kagi_"));
    let wrong = exchange(
        server.addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(wrong.status, 404);
    let after = scrape(&server);

    assert_eq!(kind(&after, "kagi_requests"), "counter");
    assert_eq!(kind(&after, "kagi_request_duration_seconds"), "histogram");
    assert_eq!(kind(&after, "kagi_hashing_queue_wait_seconds"), "histogram");
    assert_eq!(kind(&after, "kagi_rate_limited"), "counter");
    assert_eq!(kind(&after, "kagi_mail_queued"), "gauge");
    assert_eq!(kind(&after, "kagi_mail_retrying"), "gauge");
    assert_eq!(kind(&after, "kagi_codes_issued"), "counter");
    assert_eq!(kind(&after, "kagi_links_issued"), "counter");
    assert_eq!(kind(&after, "kagi_lockouts"), "counter");
    assert_eq!(kind(&after, "kagi_sweep_runs"), "counter");
    assert_eq!(kind(&after, "kagi_sweep_duration_seconds"), "histogram");
    assert_eq!(
        kind(&after, "kagi_store_flush_duration_seconds"),
        "histogram"
    );
    // The login page and, after the login's 303, the menu; one 404.
    let grew = |area, status| requests(&after, area, status) - requests(&before, area, status);
    assert!(grew("kaigo", "200") >= 2.0, "{after}");
    assert_eq!(grew("kaigo", "404"), 1.0);
    assert_eq!(grew("kaigo", "303"), 1.0);
    // The first scrape was answered (and counted) before the second began;
    // the two refusals are under `other`, as /metrics is.
    assert_eq!(grew("other", "200"), 1.0);
    assert_eq!(grew("other", "404"), 2.0);
    // Each under the route that answered it; a path in no route table
    // under `other`, in its area.
    let step = |families: &Value, step, status| {
        count(
            families,
            "kagi_requests_total",
            &[("area", "kaigo"), ("step", step), ("status", status)],
        )
    };
    let step_grew = |name, status| step(&after, name, status) - step(&before, name, status);
    assert_eq!(step_grew("/kaigo/login", "200"), 2.0, "{after}");
    assert_eq!(step_grew("/kaigo/login", "303"), 1.0);
    assert_eq!(step_grew("/kaigo/menu", "200"), 1.0);
    assert_eq!(step_grew("other", "404"), 1.0);
    // The histogram counts every answered request once.
    for area in ["kaigo", "portal", "admin", "other"] {
        let counted: f64 = ["200", "303", "404", "429", "503"]
            .iter()
            .map(|s| requests(&after, area, s))
            .sum();
        // (Summed over the area's steps; a step no request took has no
        // series, an area without requests none at all.)
        let timed = count(
            &after,
            "kagi_request_duration_seconds_count",
            &[("area", area)],
        );
        assert_eq!(timed, counted, "area {area}: {after}");
        let inf = count(
            &after,
            "kagi_request_duration_seconds_bucket",
            &[("area", area), ("le", "+Inf")],
        );
        assert_eq!(inf, counted, "area {area}");
    }
    // The login's POST waited in the hashing pool's queue, now empty.
    let waited = value(&after, "kagi_hashing_queue_wait_seconds_count", &[]).unwrap();
    assert!(waited >= 1.0, "{after}");
    assert_eq!(value(&after, "kagi_hashing_queue_depth", &[]), Some(0.0));
    assert_eq!(value(&after, "kagi_mail_failed", &[]), Some(0.0));
    assert_eq!(value(&after, "kagi_store_up", &[]), Some(1.0));
    assert!(value(&after, "kagi_store_free_bytes", &[]).unwrap() > 0.0);
    assert!(value(&after, "kagi_process_resident_memory_bytes", &[]).unwrap() > 1e6);
    // The scrape's own connection, at least.
    assert!(value(&after, "kagi_open_connections", &[]).unwrap() >= 1.0);
}

#[test]
fn a_rate_limited_login_is_counted_by_its_action() {
    let server = spawn_with(|c| {
        c.rate_limit.login.burst = 1;
        c.rate_limit.login.refill_secs = 3600;
    });
    let mut user = server.client();
    kaigo::login(&mut user, TOKYO_13.0, "wrongPassword1");
    let refused = kaigo::login(&mut user, TOKYO_13.0, "wrongPassword1");
    assert_eq!(refused.status, 429);
    let families = scrape(&server);
    let limited = |action| value(&families, "kagi_rate_limited_total", &[("action", action)]);
    assert_eq!(limited("login"), Some(1.0), "{families}");
    assert_eq!(limited("recovery"), Some(0.0));
    assert_eq!(requests(&families, "kaigo", "429"), 1.0);
}

#[test]
fn a_stranger_s_made_up_paths_add_no_series() {
    let server = spawn();
    let mut stranger = server.client();
    let before = scrape(&server);
    for n in 0..20 {
        assert_eq!(stranger.get(&format!("/kaigo/x{n}")).status, 404);
        assert_eq!(stranger.get(&format!("/portal/{n}/login")).status, 404);
    }
    let after = scrape(&server);
    let series = |families: &Value| -> Vec<String> {
        families["kagi_requests"]["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| format!("{}", s[1]))
            .collect()
    };
    let new: Vec<String> = series(&after)
        .into_iter()
        .filter(|s| !series(&before).contains(s))
        .collect();
    // The 404s of both sites, each one series under `other`; the first
    // scrape's own.
    assert_eq!(new.len(), 3, "{new:?}");
    let other = |area| {
        count(
            &after,
            "kagi_requests_total",
            &[("area", area), ("step", "other"), ("status", "404")],
        )
    };
    assert_eq!((other("kaigo"), other("portal")), (20.0, 20.0));
    assert!(!after.to_string().contains("/kaigo/x"), "{after}");
}

#[test]
fn a_code_mailed_to_a_real_address_is_counted_and_a_decoy_is_not() {
    let server = spawn();
    let codes = |families: &Value| {
        count(
            families,
            "kagi_codes_issued_total",
            &[("purpose", "recovery")],
        )
    };
    let flushes =
        |families: &Value| count(families, "kagi_store_flush_duration_seconds_count", &[]);
    let at_first = scrape(&server);
    assert_eq!(codes(&at_first), 0.0, "{at_first}");
    // An address that is not the office's: the same page, a decoy queued
    // and never sent, nothing issued.
    let mut stranger = server.client();
    let page = kaigo::start_recovery(&mut stranger, OSAKA_OFFICE, "someone@example.jp");
    assert_eq!(page.status, 200, "{}", page.body);
    let after_decoy = scrape(&server);
    assert_eq!(codes(&after_decoy), 0.0, "{after_decoy}");
    // The office's own address: one code mailed.
    let mut staff = server.client();
    kaigo::start_recovery(&mut staff, OSAKA_OFFICE, OSAKA_MAIL);
    assert_eq!(server.wait_for_mails(1).len(), 1);
    let after_code = scrape(&server);
    assert_eq!(codes(&after_code), 1.0, "{after_code}");
    assert_eq!(
        count(
            &after_code,
            "kagi_codes_issued_total",
            &[("purpose", "first_login")]
        ),
        0.0
    );
    // Both steps went through the recovery's route, and each flushed the
    // store before its page said the mail went out.
    let auth = |families: &Value| {
        count(
            families,
            "kagi_requests_total",
            &[("step", "/kaigo/recovery/auth"), ("status", "303")],
        )
    };
    assert_eq!(auth(&after_code) - auth(&at_first), 2.0, "{after_code}");
    assert!(flushes(&after_code) - flushes(&at_first) >= 2.0);
    // On sled a flush writes to disk and takes time; on PostgreSQL every
    // write was durable when it returned, and the flush has nothing to do.
    let flush_time = value(&after_code, "kagi_store_flush_duration_seconds_sum", &[]);
    if kagi::store::test_database("metrics-engine", false).is_none() {
        assert!(flush_time.unwrap() > 0.0);
    }
}

#[test]
fn a_reset_link_and_a_registration_link_are_counted_and_decoys_are_not() {
    let server = spawn_with(|c| c.rate_limit.recovery.burst = 10);
    let links = |families: &Value, purpose| {
        count(families, "kagi_links_issued_total", &[("purpose", purpose)])
    };
    let mut c = server.client();
    portal::request_link(&mut c, "demo-user", "wrong@example.jp");
    let after_decoy = scrape(&server);
    assert_eq!(links(&after_decoy, "reset"), 0.0, "{after_decoy}");
    portal::request_link(&mut c, "demo-user", "demo-user@example.jp");
    server.wait_for_mails(1);
    let after_link = scrape(&server);
    assert_eq!(links(&after_link, "reset"), 1.0, "{after_link}");
    assert_eq!(links(&after_link, "registration"), 0.0);
    // A registration with an address in use is mailed its user name, and
    // no link; a new address is mailed a link.
    let in_use = Typed {
        email: "demo-user@example.jp",
        email_confirm: "demo-user@example.jp",
        ..NEW
    };
    register(&mut server.client(), &in_use);
    server.wait_for_mails(2);
    let after_in_use = scrape(&server);
    assert_eq!(links(&after_in_use, "registration"), 0.0, "{after_in_use}");
    register(&mut server.client(), &NEW);
    server.wait_for_mails(3);
    let after_new = scrape(&server);
    assert_eq!(links(&after_new, "registration"), 1.0, "{after_new}");
    assert_eq!(links(&after_new, "reset"), 1.0);
}

#[test]
fn a_name_locked_out_by_wrong_passwords_is_counted_once_per_lock() {
    let server = spawn_with(|c| c.guard.login_failures = 3);
    let lockouts =
        |families: &Value, area| count(families, "kagi_lockouts_total", &[("area", area)]);
    let mut user = server.client();
    for _ in 0..2 {
        kaigo::login(&mut user, TOKYO_13.0, "wrongPassword1");
    }
    let before = scrape(&server);
    assert_eq!(lockouts(&before, "kaigo"), 0.0, "two failures lock nothing");
    kaigo::login(&mut user, TOKYO_13.0, "wrongPassword1");
    // While it waits, a further try (even the right password) locks
    // nothing more.
    kaigo::login(&mut user, TOKYO_13.0, TOKYO_13.1);
    let after = scrape(&server);
    assert_eq!(lockouts(&after, "kaigo"), 1.0, "{after}");
    assert_eq!(lockouts(&after, "portal"), 0.0);
    assert_eq!(lockouts(&after, "admin"), 0.0);
}

#[test]
fn the_sweeper_s_rounds_are_counted_and_timed() {
    let server = spawn();
    // The sweeper's first round runs as the server starts.
    let mut families = scrape(&server);
    wait_until(10, "the first sweep to be counted", || {
        families = scrape(&server);
        value(&families, "kagi_sweep_runs_total", &[]).unwrap() >= 1.0
    });
    let runs = value(&families, "kagi_sweep_runs_total", &[]).unwrap();
    let timed = value(&families, "kagi_sweep_duration_seconds_count", &[]);
    assert_eq!(timed, Some(runs), "{families}");
}

#[test]
fn a_mail_the_relay_has_not_taken_yet_is_retrying_until_it_is_sent() {
    use crate::smtp::{free_port, recover, seeded_dir, serve, serve_config, wait_for_first_tries};
    let port = free_port();
    let dir = seeded_dir("metrics-retrying");
    let clock = kagi::clock::Clock::system();
    let running = serve(serve_config(&dir, port), &clock);
    let addr = running.addr();
    let gauges = |families: &Value| {
        ["kagi_mail_queued", "kagi_mail_retrying", "kagi_mail_failed"]
            .map(|name| value(families, name, &[]).unwrap())
    };
    assert_eq!(gauges(&scrape_at(addr, &dir)), [0.0, 0.0, 0.0]);
    // Nobody listens on the relay's port: the first try fails.
    recover(addr, OSAKA_OFFICE, OSAKA_MAIL);
    wait_for_first_tries(addr, &dir);
    let failing = scrape_at(addr, &dir);
    assert_eq!(gauges(&failing), [1.0, 1.0, 0.0], "{failing}");
    // The relay comes up; 30 s later (on kagi's clock) the retry finds it.
    let smtpd = crate::smtp::Smtpd::start_on("plain", port);
    clock.advance(30);
    smtpd.wait_for(1);
    wait_until(20, "the outbox to empty", || {
        gauges(&scrape_at(addr, &dir)) == [0.0, 0.0, 0.0]
    });
    running.stop();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_parser_refuses_a_broken_exposition() {
    // What the test above relies on: a line the format does not allow
    // fails the scrape instead of passing unread.
    let broken = "# TYPE kagi_x counter\nkagi_x_total{area=\"kaigo\" 1\n";
    let out = std::panic::catch_unwind(|| parse(broken));
    assert!(out.is_err(), "prometheus_client took a broken line");
}
