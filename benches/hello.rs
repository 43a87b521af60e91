//! A bare tiny_http server that answers every request with a small page:
//! the baseline `scripts/bench` measures kagi against. It prints
//! `listening on ADDR` and serves on one thread until killed.
//!
//! Run: `cargo bench --bench hello -- 127.0.0.1:0`

fn main() {
    let addr = std::env::args()
        .skip(1)
        .find(|a| a.contains(':'))
        .unwrap_or_else(|| "127.0.0.1:0".into());
    // TCP_NODELAY on the listening socket, which accepted sockets inherit:
    // without it tiny_http's separate header and body writes meet delayed
    // ACKs on keep-alive connections and every answer waits 40 ms, which
    // would make a baseline of nothing. kagi's front door sets it too.
    let listener = std::net::TcpListener::bind(addr.as_str()).expect("bind");
    let one: libc::c_int = 1;
    // SAFETY: a valid socket and a c_int option of the right size.
    let set = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&listener),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "TCP_NODELAY");
    let server = tiny_http::Server::from_listener(listener, None).expect("serve");
    println!("listening on {}", server.server_addr());
    // About the size of kagi's login page, so that both move the same bytes.
    let page = format!(
        "<!DOCTYPE html><html lang=\"ja\"><body><p>{}</p></body></html>",
        "hello ".repeat(250)
    );
    for request in server.incoming_requests() {
        let response = tiny_http::Response::from_string(page.clone()).with_header(
            tiny_http::Header::from_bytes("Content-Type", "text/html; charset=utf-8").unwrap(),
        );
        let _ = request.respond(response);
    }
}
