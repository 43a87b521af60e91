//! No enumeration by the clock: the step that may send a code or link
//! takes the same time whether or not the account matched. Medians over
//! 200 interleaved requests per branch, compared with each other.

use crate::support::kaigo::{OSAKA_MAIL, OSAKA_OFFICE};
use crate::support::portal;
use crate::support::{spawn_with, TestServer};
use std::time::{Duration, Instant};

const ROUNDS: usize = 200;

fn quiet_limits(server_config: &mut kagi::config::Config) {
    // Real argon2 costs: a hash on one branch only would stand out by tens
    // of milliseconds.
    server_config.argon2 = Default::default();
    // Every request may send: no cooldown, no daily cap, no rate limit in
    // the way, so that the matching branch does all of its work each time.
    server_config.guard.send_cooldown_secs = 0;
    server_config.guard.otps_per_day = 1_000_000;
    server_config.guard.links_per_day = 1_000_000;
    let wide = kagi::config::Bucket {
        burst: 1_000_000,
        refill_secs: 1,
    };
    server_config.rate_limit.recovery = wide;
    server_config.rate_limit.captcha = wide;
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Times `step(matching)` for both branches, interleaved, and returns the
/// medians (match, no match).
fn medians(mut step: impl FnMut(bool) -> Duration) -> (Duration, Duration) {
    // Warm up both branches first.
    for i in 0..20 {
        step(i % 2 == 0);
    }
    let (mut hit, mut miss) = (Vec::new(), Vec::new());
    for i in 0..2 * ROUNDS {
        if i % 2 == 0 {
            hit.push(step(true));
        } else {
            miss.push(step(false));
        }
    }
    (median(hit), median(miss))
}

/// The two medians within a quarter of the faster one. Measured in turn,
/// both branches meet the same load, so the ratio holds on a busy machine
/// too, where every step is slower (the gap was some 3 % on an idle one).
/// Work on one branch only that costs a quarter of the step fails it; a
/// hash costs many times the step.
fn assert_close(what: &str, (hit, miss): (Duration, Duration)) {
    let gap = hit.abs_diff(miss);
    let faster = hit.min(miss);
    eprintln!(
        "{what}: median match {hit:?}, no match {miss:?}, gap {gap:?} ({:.1} % of the faster)",
        100.0 * gap.as_secs_f64() / faster.as_secs_f64()
    );
    assert!(
        gap * 4 < faster,
        "{what}: medians differ by {gap:?} (match {hit:?}, no match {miss:?})"
    );
}

#[test]
fn kaigo_step_2_takes_the_same_time_for_a_match_and_a_miss() {
    let server = spawn_with(quiet_limits);
    let result = medians(|matching| {
        let mut c = server.client();
        c.get("/kaigo/recovery/auth");
        let email = if matching {
            OSAKA_MAIL
        } else {
            "someone-else@example.jp"
        };
        let started = Instant::now();
        let page = c.post(
            "/kaigo/recovery/auth",
            &[("office", OSAKA_OFFICE), ("email", email)],
        );
        let took = started.elapsed();
        assert_eq!(page.location(), "/kaigo/recovery/otp");
        took
    });
    assert_close("kaigo step 2", result);
    assert!(
        server.stop_and_count_mail() >= ROUNDS,
        "the matching branch sent every time"
    );
}

fn portal_verify(server: &TestServer, matching: bool) -> Duration {
    let mut c = server.client();
    let (page, answer) = portal::open_identify(&mut c);
    let next = portal::post_identify(&mut c, &page, "demo-user", &answer, "next");
    assert_eq!(next.location(), "/portal/reset/verify");
    c.get("/portal/reset/verify");
    let email = if matching {
        "demo-user@example.jp"
    } else {
        "someone-else@example.jp"
    };
    let started = Instant::now();
    let sent = c.post("/portal/reset/verify", &[("email", email)]);
    let took = started.elapsed();
    assert_eq!(sent.location(), "/portal/reset/sent");
    took
}

#[test]
fn portal_step_2_takes_the_same_time_for_a_match_and_a_miss() {
    let server = spawn_with(quiet_limits);
    let result = medians(|matching| portal_verify(&server, matching));
    assert_close("portal ②", result);
}

fn registration_step_1(server: &TestServer, in_use: bool) -> Duration {
    let mut c = server.client();
    let form = c.get("/portal/register");
    let id = form.hidden("captcha_id").unwrap();
    let answer = crate::support::captcha_answer_at(server.addr, &id).unwrap();
    // One address per branch, as the matching branch can only have: each
    // claim's record then grows alike.
    let email = if in_use {
        "demo-user@example.jp"
    } else {
        "newcomer@example.jp"
    };
    let fields = [
        ("captcha_id", id.as_str()),
        ("captcha", &answer),
        ("action", "next"),
        ("institution", "1311112222"),
        ("institution_name", "デモ病院"),
        ("contact", "佐藤 一郎"),
        ("email", email),
        ("email_confirm", email),
        ("user", "sato-ichiro"),
    ];
    let started = Instant::now();
    let sent = c.post("/portal/register", &fields);
    let took = started.elapsed();
    assert_eq!(sent.location(), "/portal/register/sent");
    took
}

#[test]
fn registration_step_1_takes_the_same_time_whether_the_address_is_in_use() {
    let server = spawn_with(quiet_limits);
    let result = medians(|in_use| registration_step_1(&server, in_use));
    assert_close("portal registration ①", result);
}
