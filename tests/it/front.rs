//! The front door on raw sockets: what tiny_http 0.12 would mishandle is
//! refused with 400 (413, 431, 408) and the connection closed, and no
//! smuggled request ever reaches a page.

use crate::support::{parse_response, spawn, spawn_with};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Sends `raw`, then reads until the server closes; returns every byte.
fn send_all(addr: SocketAddr, raw: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn answers(raw: &[u8]) -> usize {
    String::from_utf8_lossy(raw).matches("HTTP/1.1 ").count()
}

#[test]
fn smuggling_requests_are_refused_and_the_connection_closed() {
    let server = spawn();
    let addr = server.addr;
    // Each would, in tiny_http 0.12 alone, switch to chunked decoding or
    // take a header at its word, and read the tail as a second request.
    let tail = "GET /kaigo/menu HTTP/1.1\r\nHost: x\r\n\r\n";
    let smuggles = [
        // CL.TE, the advisory's own example.
        format!("POST /kaigo/login HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{tail}"),
        // A Transfer-Encoding that is not even chunked.
        format!("POST /kaigo/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nabcde{tail}"),
        format!("POST /kaigo/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n{tail}"),
        format!("POST /kaigo/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n{tail}"),
        format!("POST /kaigo/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n{tail}"),
        // Two lengths, a list, a sign, hex.
        format!("POST /kaigo/login HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 38\r\n\r\n{tail}"),
        format!("POST /kaigo/login HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 38\r\n\r\n{tail}"),
        format!("POST /kaigo/login HTTP/1.1\r\nHost: x\r\nContent-Length: +0\r\n\r\n{tail}"),
        format!("POST /kaigo/login HTTP/1.1\r\nHost: x\r\nContent-Length: 0x0\r\n\r\n{tail}"),
        // CVE-2026-66753: a bare CR or LF inside a header value.
        format!("GET /kaigo/login HTTP/1.1\r\nHost: x\r\nX-A: a\rContent-Length: 38\r\n\r\n{tail}"),
        format!("GET /kaigo/login HTTP/1.1\r\nHost: x\r\nX-A: a\nTransfer-Encoding: chunked\r\n\r\n{tail}"),
        format!("GET /kaigo/login HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n{tail}"),
        // Two hosts, a folded header.
        format!("GET /kaigo/login HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n{tail}"),
        format!("GET /kaigo/login HTTP/1.1\r\nHost: x\r\nX-A: a\r\n Transfer-Encoding: chunked\r\n\r\n{tail}"),
    ];
    for raw in &smuggles {
        let started = Instant::now();
        let got = send_all(addr, raw.as_bytes());
        let page = parse_response(&got);
        assert_eq!(page.status, 400, "{raw:?}");
        assert!(page.body.contains("<h1>"), "a readable page");
        assert_eq!(answers(&got), 1, "one answer, then closed: {raw:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "closed by the server, not by a timeout"
        );
    }
    // The smuggled GET never reached a page: only the refusals are logged
    // as answered requests, and no menu page was asked for.
    assert_eq!(server.client().get("/kaigo/login").status, 200);
}

#[test]
fn an_enormous_content_length_is_refused_and_the_server_lives() {
    let server = spawn();
    // tiny_http alone allocates the announced length when it drops the
    // unread body: this request used to abort the whole process.
    for length in [
        "16385",
        "999999999999999",
        "18446744073709551615",
        "99999999999999999999",
    ] {
        let raw = format!(
            "POST /kaigo/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {length}\r\n\r\ncsrf="
        );
        let got = send_all(server.addr, raw.as_bytes());
        assert_eq!(parse_response(&got).status, 413, "{length}");
    }
    assert_eq!(server.client().get("/kaigo/login").status, 200);
}

#[test]
fn a_one_mebibyte_header_is_refused_without_reading_it_all() {
    let server = spawn();
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /kaigo/login HTTP/1.1\r\nHost: x\r\nX-Big: ")
        .unwrap();
    // The server may close before all of it is written: that is the point.
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..16 {
        if s.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = s.write_all(b"\r\n\r\n");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    // A reset may overtake the answer when most of the header was never
    // read; either way, nothing but a refusal came back.
    if !got.is_empty() {
        assert_eq!(parse_response(&got).status, 431);
    }
    assert_eq!(server.client().get("/kaigo/login").status, 200);
}

#[test]
fn a_header_that_never_ends_is_cut_off_while_others_are_served() {
    let server = spawn_with(|c| c.http.header_timeout_secs = 1);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    s.write_all(b"GET /kaigo/login HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    // One byte every 100 ms, forever: the head never completes.
    while started.elapsed() < Duration::from_secs(5) {
        if s.write_all(b"a").is_err() {
            break;
        }
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        // Meanwhile everyone else is served.
        assert_eq!(server.client().get("/healthz").status, 200);
        std::thread::sleep(Duration::from_millis(100));
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "cut off after the header timeout, not {elapsed:?}"
    );
    assert_eq!(parse_response(&got).status, 408);
}

#[test]
fn connections_are_capped_and_the_idlest_makes_room() {
    let server = spawn_with(|c| c.http.max_connections = 4);
    let mut idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // A fifth client is still served: the longest-waiting idle one goes.
    for _ in 0..3 {
        assert_eq!(server.client().get("/kaigo/login").status, 200);
    }
    let mut closed = 0;
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = [0u8; 16];
        if matches!(s.read(&mut buf), Ok(0) | Err(_)) {
            closed += 1;
        }
    }
    assert!(closed >= 1, "an idle connection was closed to make room");
}

#[test]
fn an_idle_keep_alive_connection_is_closed_and_the_server_names_itself_only_as_kagi() {
    let server = spawn_with(|c| c.http.idle_timeout_secs = 1);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let page = parse_response(&got);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("Server"), Some("kagi"));
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn a_client_that_never_reads_its_answers_holds_up_no_one() {
    let server = spawn_with(|c| {
        c.http.header_timeout_secs = 1;
        c.http.idle_timeout_secs = 2;
    });
    // Thousands of pipelined requests, and not one byte read back: far
    // more answer than any socket buffer holds.
    let mut greedy = TcpStream::connect(server.addr).unwrap();
    let request = "GET /kaigo/login HTTP/1.1\r\nHost: x\r\n\r\n".repeat(10_000);
    greedy.write_all(request.as_bytes()).unwrap();
    let started = Instant::now();
    for _ in 0..30 {
        let asked = Instant::now();
        assert_eq!(server.client().get("/healthz").status, 200);
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "a page took {:?} while a client read nothing",
            asked.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    // The greedy client was cut off rather than served forever.
    greedy
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let reading = Instant::now();
    let mut sink = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        match greedy.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    let page = server.client().get("/kaigo/login").body.len();
    eprintln!(
        "greedy client: read {total} bytes of 10000 answers of {page}+ bytes, in {:?}",
        reading.elapsed()
    );
    assert!(total < 10_000 * page, "read {total} bytes: never cut off");
}
