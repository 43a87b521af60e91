//! Request → response plumbing. Only this module knows tiny_http. A handler
//! sees a parsed `Request` and returns a plain `Response`; `respond` is the
//! one place that turns it into bytes on the wire, adds the security headers,
//! and turns a panic into a fixed 500 page.

pub mod form;

use crate::pages;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// The request methods kagi answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Other,
}

/// A request, parsed and size-checked.
pub struct Request {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub cookies: Vec<(String, String)>,
    /// The urlencoded body of a POST.
    pub form: Vec<(String, String)>,
    /// The peer's address.
    pub client: IpAddr,
}

impl std::fmt::Debug for Request {
    // Form values and cookies hold passwords, codes and session keys: only
    // their names are printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names =
            |pairs: &[(String, String)]| pairs.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &names(&self.query))
            .field("cookies", &names(&self.cookies))
            .field("form", &names(&self.form))
            .field("client", &self.client)
            .finish()
    }
}

impl Request {
    /// A form field, or "" when absent.
    pub fn field(&self, name: &str) -> &str {
        self.form
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response as data; `respond` puts it on the wire.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Static assets may be cached; pages never are.
    pub cacheable: bool,
}

impl Response {
    pub fn html(markup: maud::Markup) -> Response {
        Response::html_status(200, markup)
    }

    pub fn html_status(status: u16, markup: maud::Markup) -> Response {
        Response {
            status,
            content_type: "text/html; charset=utf-8",
            headers: Vec::new(),
            body: markup.into_string().into_bytes(),
            cacheable: false,
        }
    }

    /// 303 to a path on this server: after every successful POST.
    pub fn see_other(location: &str) -> Response {
        Response {
            status: 303,
            content_type: "text/plain; charset=utf-8",
            headers: vec![("Location", location.to_string())],
            body: Vec::new(),
            cacheable: false,
        }
    }

    pub fn json(body: String) -> Response {
        Response {
            status: 200,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.into_bytes(),
            cacheable: false,
        }
    }

    pub fn css(body: &'static str) -> Response {
        Response {
            status: 200,
            content_type: "text/css; charset=utf-8",
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            cacheable: true,
        }
    }

    /// A readable error page with the given status.
    pub fn error(status: u16) -> Response {
        Response::html_status(status, pages::error_page(status))
    }

    /// 405, naming what the path does accept.
    pub fn method_not_allowed(allow: &str) -> Response {
        Response::error(405).with_header("Allow", allow.to_string())
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Response {
        self.headers.push((name, value));
        self
    }
}

/// The headers every response carries (DESIGN §3 rule 7).
const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
];

/// A bound HTTP socket.
pub struct Listener(tiny_http::Server);

impl Listener {
    pub fn bind(addr: std::net::SocketAddr) -> Result<Listener, String> {
        tiny_http::Server::http(addr)
            .map(Listener)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))
    }

    /// The address actually bound (port 0 becomes a real port).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.0
            .server_addr()
            .to_ip()
            .expect("a TCP listener has an IP address")
    }

    /// Wakes `serve` so that it can notice it should stop.
    pub fn unblock(&self) {
        self.0.unblock();
    }
}

/// Serves requests on the calling thread until `keep_going` says stop (it is
/// asked after each request; `Listener::unblock` wakes a waiting `recv`).
pub fn serve(
    listener: &Listener,
    https: bool,
    keep_going: impl Fn() -> bool,
    handler: impl Fn(&Request) -> Response,
) {
    while keep_going() {
        let Ok(mut raw) = listener.0.recv() else {
            continue;
        };
        if !keep_going() {
            break;
        }
        let started = Instant::now();
        let method = raw.method().to_string();
        let path = raw.url().split('?').next().unwrap_or("").to_string();
        let (response, body_unread) = match parse(&mut raw) {
            Ok(request) => {
                let response =
                    catch_unwind(AssertUnwindSafe(|| handler(&request))).unwrap_or_else(|_| {
                        eprintln!("kagi: {method} {path}: handler panicked; answered 500");
                        Response::error(500)
                    });
                (response, false)
            }
            Err(Refusal {
                status,
                body_unread,
            }) => (Response::error(status), body_unread),
        };
        let status = response.status;
        // The query string is never logged: it may carry a reset token.
        eprintln!(
            "kagi: {method} {path} {status} {:.1} ms",
            started.elapsed().as_secs_f64() * 1000.0
        );
        let wire = to_wire(response, https);
        if body_unread {
            // tiny_http reads the rest of an unread body when the request is
            // dropped, at the client's pace: that happens on a thread of its
            // own, never on this one.
            let spawned = std::thread::Builder::new()
                .name("kagi-refuse".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    let _ = raw.respond(wire);
                });
            if let Err(e) = spawned {
                eprintln!("kagi: cannot answer a refused request: {e}");
            }
        } else {
            let _ = raw.respond(wire);
        }
    }
}

/// The largest request body kagi reads. tiny_http reads a body of at most
/// 1024 bytes with a Content-Length in its own connection thread; any other
/// body (larger, chunked, or behind `Expect: 100-continue`) would be read
/// here, on the one request thread, at the client's pace, so that one slow
/// client could stall every other. kagi's forms are far smaller, so such
/// bodies are refused unread.
pub const MAX_BODY_BYTES: usize = 1024;

/// A request answered with an error status before any handler saw it.
struct Refusal {
    status: u16,
    /// The body is still on the socket (see `MAX_BODY_BYTES`).
    body_unread: bool,
}

impl From<u16> for Refusal {
    fn from(status: u16) -> Refusal {
        Refusal {
            status,
            body_unread: false,
        }
    }
}

fn unread(status: u16) -> Refusal {
    Refusal {
        status,
        body_unread: true,
    }
}

/// Reads and checks one request: 413 for oversized bodies, 411 for chunked
/// ones, 417 for `Expect`, 415 for non-form bodies, 400 for malformed ones.
fn parse(raw: &mut tiny_http::Request) -> Result<Request, Refusal> {
    let method = match raw.method() {
        tiny_http::Method::Get => Method::Get,
        tiny_http::Method::Head => Method::Head,
        tiny_http::Method::Post => Method::Post,
        _ => Method::Other,
    };
    let header = |name: &'static str| {
        raw.headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_string())
    };
    // Bodies first: every refusal below this point has its body in memory.
    if header("Transfer-Encoding").is_some() {
        return Err(unread(411));
    }
    if header("Expect").is_some() {
        return Err(unread(417));
    }
    if header("Connection").is_some_and(|c| c.to_ascii_lowercase().contains("upgrade")) {
        return Err(unread(400));
    }
    if raw.body_length().is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(unread(413));
    }
    let (path, query) = match raw.url().split_once('?') {
        Some((p, q)) => (p.to_string(), form::parse_urlencoded(q).ok_or(400u16)?),
        None => (raw.url().to_string(), Vec::new()),
    };
    if !path.starts_with('/') {
        return Err(400.into());
    }
    let cookies = header("Cookie")
        .map(|c| form::parse_cookies(&c))
        .unwrap_or_default();
    let content_type = header("Content-Type").unwrap_or_default();
    let client = raw
        .remote_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    // Already in memory: see MAX_BODY_BYTES.
    let mut body = Vec::new();
    raw.as_reader()
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|_| 400u16)?;
    let form = if method == Method::Post && !body.is_empty() {
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(415.into());
        }
        let text = std::str::from_utf8(&body).map_err(|_| 400u16)?;
        form::parse_urlencoded(text).ok_or(400u16)?
    } else {
        Vec::new()
    };
    Ok(Request {
        method,
        path,
        query,
        cookies,
        form,
        client,
    })
}

fn to_wire(response: Response, https: bool) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let mut wire = tiny_http::Response::from_data(response.body).with_status_code(response.status);
    let mut add = |name: &str, value: &str| {
        // A header value that tiny_http refuses (non-ASCII, say) is dropped
        // rather than sent broken; kagi only builds ASCII values.
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            wire.add_header(h);
        }
    };
    add("Content-Type", response.content_type);
    for (name, value) in SECURITY_HEADERS {
        add(name, value);
    }
    if !response.cacheable {
        add("Cache-Control", "no-store");
    }
    if https {
        add("Strict-Transport-Security", "max-age=31536000");
    }
    for (name, value) in &response.headers {
        add(name, value);
    }
    wire
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpStream;

    fn exchange(addr: std::net::SocketAddr, raw: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(raw).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[test]
    fn a_panicking_handler_becomes_a_500_page_and_the_server_lives_on() {
        let server = std::sync::Arc::new(Listener::bind("127.0.0.1:0".parse().unwrap()).unwrap());
        let addr = server.local_addr();
        let s = server.clone();
        let t = std::thread::spawn(move || {
            let served = std::cell::Cell::new(0);
            serve(
                &s,
                false,
                || served.get() < 2,
                |r| {
                    served.set(served.get() + 1);
                    if r.path == "/boom" {
                        panic!("test panic");
                    }
                    Response::html(maud::html! { p { "ok" } })
                },
            )
        });
        let boom = exchange(
            addr,
            b"GET /boom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(boom.starts_with("HTTP/1.1 500"), "{boom}");
        assert!(boom.contains("X-Frame-Options: DENY"));
        assert!(boom.contains("システムエラー"));
        let ok = exchange(
            addr,
            b"GET /fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        t.join().unwrap();
    }
}
