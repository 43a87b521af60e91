//! The hashing pool: argon2id runs on its workers, never on the request
//! thread. Pages are answered while every worker is busy with slow hashes,
//! and a login that finds the queue full is answered 503 at once and
//! changes nothing.

use crate::support::{spawn_with, Client, Page, TestServer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A server whose hashes are slow on purpose (128 MiB, 3 passes: a few
/// hundred milliseconds each), with one worker and room for one waiting
/// login.
fn slow_hashes() -> TestServer {
    spawn_with(|c| {
        c.argon2.memory_kib = 128 * 1024;
        c.argon2.iterations = 3;
        c.argon2.workers = 1;
        c.argon2.queue = 1;
        c.rate_limit.login.burst = 1000;
        c.guard.login_failures = 1000;
    })
}

/// A wrong login from a browser of its own, as the pool sees it.
fn wrong_login(addr: std::net::SocketAddr) -> Page {
    let mut browser = Client::new(addr);
    browser.get("/kaigo/login");
    browser.post(
        "/kaigo/login",
        &[
            ("user_id", "KJ272711111111"),
            ("password", "wrong-password1"),
        ],
    )
}

/// Keeps posting wrong logins from `threads` browsers until told to stop;
/// the pool has more work than it can take all along.
fn flood(
    server: &TestServer,
    threads: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<u16>>> {
    (0..threads)
        .map(|_| {
            let (addr, stop) = (server.addr, stop.clone());
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let mut browser = Client::new(addr);
                    browser.get("/kaigo/login");
                    let page = browser.post(
                        "/kaigo/login",
                        &[
                            ("user_id", "KJ272711111111"),
                            ("password", "wrong-password1"),
                        ],
                    );
                    statuses.push(page.status);
                }
                statuses
            })
        })
        .collect()
}

#[test]
fn pages_are_answered_while_every_worker_hashes_and_a_full_queue_answers_503() {
    let server = slow_hashes();
    let stop = Arc::new(AtomicBool::new(false));
    let flooders = flood(&server, 4, &stop);
    // A page between two logins that both found the queue full was
    // answered while the worker hashed and a login waited for it: the
    // request thread did not hash. (With hashing on the request thread,
    // no login is ever refused, and the page waits behind the hashes.)
    let mut seen = false;
    for _ in 0..50 {
        let before = wrong_login(server.addr);
        if before.status != 503 {
            continue;
        }
        let page = server.client().get("/kaigo/login");
        assert_eq!(page.status, 200);
        if wrong_login(server.addr).status == 503 {
            seen = true;
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let statuses: Vec<u16> = flooders
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(seen, "no page was answered between two refused logins");
    // The logins that got through were checked as usual; the others were
    // refused at once, and only so.
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [200, 503].contains(s)),
        "{statuses:?}"
    );
}

#[test]
fn a_login_refused_by_a_full_queue_says_when_to_come_back_and_changes_nothing() {
    let server = slow_hashes();
    let stop = Arc::new(AtomicBool::new(false));
    let flooders = flood(&server, 4, &stop);
    // The right password, while the queue is full: refused, no session.
    let mut refused = None;
    for _ in 0..50 {
        let mut browser = server.client();
        browser.get("/kaigo/login");
        let page = browser.post(
            "/kaigo/login",
            &[("user_id", "KJ272711111111"), ("password", "kaigoDemo27")],
        );
        if page.status == 503 {
            refused = Some(page);
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in flooders {
        t.join().unwrap();
    }
    let page = refused.expect("a login found the queue full");
    assert!(page.header("retry-after").is_some());
    assert!(page.header("set-cookie").is_none(), "no session, no cookie");
    assert!(
        page.body.contains("一時的に処理できない状態です"),
        "{}",
        page.body
    );
    // The same login once the flood is over goes through.
    let mut browser = server.client();
    let after = crate::support::kaigo::login(&mut browser, "KJ272711111111", "kaigoDemo27");
    assert!(after.body.contains("セキュリティコード"), "{}", after.body);
}
