//! A clean stop. The real `kagi` executable gets SIGTERM while a step's
//! argon2id hash is running: the step is answered, kagi exits 0, and
//! nothing it made is left in its temporary directory (the test's own,
//! through `TMPDIR`); `serve` then starts again on the same database and
//! the next step works. Without the drain the step's connection is reset;
//! without the signal handling kagi dies of the signal and leaves its
//! socket directory (and the demo's database) behind.

use crate::support::kaigo::{self, OSAKA_MAIL, OSAKA_OFFICE};
use crate::support::{scratch_dir, until_ready, wait_for_mails_at, wait_until, Client, Kagi, Page};
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

/// Hashes slow enough to be caught running (64 MiB, 3 passes: some 0.3 s
/// each), on one hashing thread.
const SLOW_HASHES: &str = "[argon2]\nmemory_kib = 65536\niterations = 3\nworkers = 1\n";

/// The demo office in Osaka and its security address (step 2's fields).
const OSAKA: &[(&str, &str)] = &[("office", OSAKA_OFFICE), ("email", OSAKA_MAIL)];

/// What kagi says when a signal finds one request under way.
const STOPPING: &str =
    "kagi: stopping (SIGTERM): no new connections; waiting up to 10 s for 1 request under way";

/// Runs `kagi ARGS…` with `tmp` as its temporary directory and its
/// standard error appended to `log`, until it is ready.
fn start(args: &[&OsStr], tmp: &Path, log: &Path) -> (Kagi, SocketAddr) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_kagi"));
    command
        .args(args)
        .env("TMPDIR", tmp)
        .stdout(Stdio::piped())
        .stderr(log);
    until_ready(command)
}

fn sigterm(kagi: &Kagi) {
    // SAFETY: kill only sends a signal, to the child this test started
    // and has not reaped.
    let sent = unsafe { libc::kill(kagi.0.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0, "kill: {}", std::io::Error::last_os_error());
}

/// Waits (up to 30 s) for kagi to exit; its exit status.
fn exit_status(kagi: &mut Kagi) -> ExitStatus {
    let mut status = None;
    wait_until(30, "kagi to exit after SIGTERM", || {
        status = kagi.0.try_wait().unwrap();
        status.is_some()
    });
    status.unwrap()
}

/// The names of what is in `dir`.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The CPU time, in clock ticks, that kagi's hashing threads have used.
fn hashing_ticks(kagi: &Kagi) -> u64 {
    let tasks = format!("/proc/{}/task", kagi.0.id());
    let mut ticks = 0;
    for task in std::fs::read_dir(tasks).unwrap().flatten() {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !name.starts_with("kagi-hash") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // After the name in parentheses: state, then … utime and stime,
        // the 14th and 15th fields of the line.
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        ticks += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    ticks
}

/// Posts `fields` to `path` from `browser` on a thread of its own, and
/// returns once kagi's hashing thread is at work on it (its CPU time
/// grows): the step is then under way inside kagi. The thread gives the
/// answer, and panics if there is none (the connection was cut).
fn post_while_hashing(
    kagi: &Kagi,
    mut browser: Client,
    path: &'static str,
    fields: &'static [(&'static str, &'static str)],
) -> JoinHandle<Page> {
    let before = hashing_ticks(kagi);
    let post = std::thread::spawn(move || browser.post(path, fields));
    wait_until(30, "the hash of the step to run", || {
        hashing_ticks(kagi) > before || post.is_finished()
    });
    assert!(
        !post.is_finished(),
        "the step was answered before it could be caught hashing"
    );
    post
}

/// The log, and whether `answer` is in it after the stop began.
fn answered_while_stopping(log: &Path, answer: &str) -> (String, bool) {
    let log = std::fs::read_to_string(log).unwrap();
    let after = log
        .find(STOPPING)
        .is_some_and(|at| log[at..].contains(answer));
    (log, after)
}

#[test]
fn sigterm_during_a_login_answers_it_exits_0_and_the_demo_leaves_nothing_in_its_temporary_directory(
) {
    let dir = scratch_dir("stop-demo");
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let config = dir.join("kagi.toml");
    std::fs::write(&config, SLOW_HASHES).unwrap();
    let log = dir.join("kagi.log");
    let args = [
        "demo".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
    ];
    let (mut kagi, addr) = start(&args, &tmp, &log);
    // What kagi made is in the test's temporary directory: the private
    // socket's directory and the demo's database.
    let made = names_in(&tmp);
    assert_eq!(made.len(), 2, "{made:?}");
    assert!(made.iter().any(|n| n.starts_with("kagi-demo-")), "{made:?}");

    let mut browser = Client::new(addr);
    browser.get("/kaigo/login");
    let login = post_while_hashing(
        &kagi,
        browser,
        "/kaigo/login",
        &[("user_id", "KJ272711111111"), ("password", "kaigoDemo27")],
    );
    sigterm(&kagi);
    let login = login.join().expect("the login under way is answered");
    assert_eq!(login.status, 303, "{}", login.body);
    assert_eq!(login.location(), "/kaigo/login/code");

    let status = exit_status(&mut kagi);
    let (log, answered) = answered_while_stopping(&log, "kagi: POST /kaigo/login 303");
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(answered, "{log}");
    assert!(log.ends_with("kagi: stopped\n"), "{log}");
    assert_eq!(names_in(&tmp), Vec::<String>::new(), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_during_a_new_password_sets_it_exits_0_and_serve_logs_in_with_it_after_a_restart() {
    let dir = scratch_dir("stop-serve");
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let db = dir.join("db");
    let log = dir.join("kagi.log");

    // The demo accounts, from a demo on the same database with cheap
    // hashes; stopped the same way, it keeps that database.
    let cheap = dir.join("demo.toml");
    std::fs::write(&cheap, "[argon2]\nmemory_kib = 256\niterations = 1\n").unwrap();
    let demo = [
        "demo".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data-dir".as_ref(),
        db.as_os_str(),
        "--config".as_ref(),
        cheap.as_os_str(),
    ];
    let (mut kagi, _) = start(&demo, &tmp, &log);
    sigterm(&kagi);
    assert_eq!(exit_status(&mut kagi).code(), Some(0));
    assert_eq!(names_in(&tmp), Vec::<String>::new());
    assert!(db.join("db").exists(), "a --data-dir database stays");

    let config = crate::support::serve_config(&dir, &db, SLOW_HASHES);
    let serve = ["serve".as_ref(), "--config".as_ref(), config.as_os_str()];
    let (mut kagi, addr) = start(&serve, &tmp, &log);
    let mut browser = kaigo::at_step_2(addr);
    browser.submit("/kaigo/recovery/auth", OSAKA);
    let code = wait_for_mails_at(addr, 1)[0].otp();
    let reset = browser.submit("/kaigo/recovery/otp", &[("otp", &code)]);
    assert_eq!(reset.status, 200, "{}", reset.body);
    let done = post_while_hashing(
        &kagi,
        browser,
        "/kaigo/recovery/reset",
        &[
            ("password", "stopped2027"),
            ("password_confirm", "stopped2027"),
        ],
    );
    sigterm(&kagi);
    let done = done.join().expect("the new password under way is answered");
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/kaigo/recovery/done");

    let status = exit_status(&mut kagi);
    let (log_text, answered) =
        answered_while_stopping(&log, "kagi: POST /kaigo/recovery/reset 303");
    assert_eq!(status.code(), Some(0), "{log_text}");
    assert!(answered, "{log_text}");
    assert_eq!(names_in(&tmp), Vec::<String>::new(), "{log_text}");

    // The same database serves the next step: the new password logs in
    // (the recovery cleared the security code: the menu comes at once).
    let (mut kagi, addr) = start(&serve, &tmp, &log);
    let menu = kaigo::login(&mut Client::new(addr), "KJ272711111111", "stopped2027");
    assert_eq!(menu.title(), "メニュー");
    sigterm(&kagi);
    assert_eq!(exit_status(&mut kagi).code(), Some(0));
    assert_eq!(names_in(&tmp), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&dir);
}
