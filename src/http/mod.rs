//! Request → response plumbing. Only this module knows tiny_http. A handler
//! sees a parsed `Request` and returns a plain `Response`; `respond` is the
//! one place that turns it into bytes on the wire, adds the security headers,
//! and turns a panic into a fixed 500 page.

pub mod form;
pub mod front;

use crate::config::{canonical_ip, TrustedProxies};
use crate::pages;
use crate::text::Lang;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
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
    /// The client's address: the socket peer, or behind a trusted proxy
    /// the nearest `X-Forwarded-For` hop that is not one.
    pub client: IpAddr,
    /// The `Authorization: Bearer` token, if any (the admin endpoints).
    pub bearer: Option<String>,
    /// The language the pages are to speak: the language link's cookie,
    /// else `Accept-Language`.
    pub lang: Lang,
    /// Random, for the log line of this request and its audit entries.
    pub id: String,
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

    /// A query string parameter, or "" when absent.
    pub fn query_value(&self, name: &str) -> &str {
        self.query
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
    /// The generic error page of `status`: `serve` draws it in the layout
    /// of the site the path belongs to.
    pub error_page: bool,
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
            error_page: false,
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
            error_page: false,
        }
    }

    pub fn json(body: String) -> Response {
        Response {
            status: 200,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.into_bytes(),
            cacheable: false,
            error_page: false,
        }
    }

    pub fn css(body: &'static str) -> Response {
        Response {
            status: 200,
            content_type: "text/css; charset=utf-8",
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            cacheable: true,
            error_page: false,
        }
    }

    /// A readable error page with the given status.
    pub fn error(status: u16) -> Response {
        Response {
            error_page: true,
            ..Response::html_status(status, pages::error_page(status, None, Lang::Ja))
        }
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
        "default-src 'none'; style-src 'self'; img-src 'self' data:; media-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
];

/// The listening server: kagi's front door on the public address, and
/// tiny_http behind it on a private socket (see `front`).
pub struct Listener {
    server: tiny_http::Server,
    front: front::Front,
}

impl Listener {
    pub fn bind(addr: std::net::SocketAddr, limits: front::Limits) -> Result<Listener, String> {
        let (front, backend) = front::Front::bind(addr, limits)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let server = tiny_http::Server::from_listener(backend, None)
            .map_err(|e| format!("cannot start the HTTP server: {e}"))?;
        Ok(Listener { server, front })
    }

    /// The address actually bound (port 0 becomes a real port).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.front.addr
    }

    /// Stops taking connections and lets those with a request under way
    /// finish it (`front::Front::drain`); how many requests are under way.
    pub fn drain(&self) -> usize {
        self.front.drain()
    }

    /// Waits until the connections `drain` left have ended, or `until`;
    /// how many have not.
    pub fn wait_drained(&self, until: Instant) -> usize {
        self.front.wait_drained(until)
    }

    /// The private directory of the socket between the front and
    /// tiny_http: removed when the listener is dropped.
    pub fn socket_dir(&self) -> &std::path::Path {
        &self.front.socket_dir
    }

    /// Wakes `serve` so that it can notice it should stop, and closes the
    /// connections.
    pub fn unblock(&self) {
        self.front.stop();
        self.server.unblock();
    }
}

impl TrustedProxies {
    /// The client behind `peer`. The peer is the client unless it is a
    /// trusted proxy; then `X-Forwarded-For` (all its lines, in order) is
    /// walked from the right, the nearest hop first: each trusted proxy
    /// vouches for the entry before it, and the first entry that is not a
    /// trusted proxy is the client. An entry that does not parse (junk, an
    /// empty one) ends the walk: the client is then the hop that reported
    /// it, since nothing before it can be believed. A client can put
    /// anything at the left of the header; only what trusted proxies
    /// appended on the right counts.
    pub fn client(&self, peer: IpAddr, forwarded_for: &[String]) -> IpAddr {
        let mut client = peer;
        if !self.contains(client) {
            return client;
        }
        let entries: Vec<&str> = forwarded_for.iter().flat_map(|h| h.split(',')).collect();
        for entry in entries.into_iter().rev() {
            let Some(hop) = parse_hop(entry) else {
                return client;
            };
            client = hop;
            if !self.contains(hop) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, with or without a port
/// (`203.0.113.7`, `203.0.113.7:4711`, `2001:db8::7`, `[2001:db8::7]:4711`).
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            let inner = entry.strip_prefix('[')?.strip_suffix(']')?;
            inner.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
        })
        .map(canonical_ip)
}

/// Puts `banner` on top of an HTML page that does not carry it yet.
fn add_banner(response: &mut Response, banner: &str) {
    const MARK: &[u8] = b"<div class=\"banner\"";
    if !response.content_type.starts_with("text/html")
        || response.body.windows(MARK.len()).any(|w| w == MARK)
    {
        return;
    }
    let Some(at) = response.body.windows(6).position(|w| w == b"<body>") else {
        return;
    };
    let div = maud::html! { div.banner role="status" { (banner) } }.into_string();
    response.body.splice(at + 6..at + 6, div.into_bytes());
}

/// The longest form field (name or value) kagi reads, in bytes; the
/// longest real one, an address, is 254.
pub const MAX_FIELD_BYTES: usize = 1024;
/// The most fields a form may carry.
pub const MAX_FIELDS: usize = 16;

/// How `serve` treats requests.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// `public_url` is https: HSTS on every answer.
    pub https: bool,
    pub trusted_proxies: TrustedProxies,
    /// A warning every HTML page carries, error pages included (demo, lab).
    pub banner: Option<pages::Banner>,
    /// Where each answered request is counted, for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The way back to one request's client. It is answered once, by the
/// request thread or by a hashing worker; answering lets the connection
/// read its next request. A reply dropped unanswered (its handler
/// panicked) answers 500.
pub struct Reply {
    raw: Option<tiny_http::Request>,
    conn: Option<u64>,
    listener: Arc<Listener>,
    options: Arc<ServeOptions>,
    method: String,
    path: String,
    lang: Lang,
    /// The request's id and client, once it was read.
    read: Option<(String, String)>,
    started: Instant,
}

impl Reply {
    /// Answers the request with `response`.
    pub fn send(mut self, response: Response) {
        self.answer(response);
    }

    fn answer(&mut self, mut response: Response) {
        let Some(raw) = self.raw.take() else {
            return;
        };
        if response.error_page {
            let site = crate::site::Site::of_path(&self.path);
            let area = crate::site::Area::of_path(&self.path);
            let lang = pages::lang_in(area, self.lang);
            response.body = pages::error_page(response.status, site, lang)
                .into_string()
                .into_bytes();
        }
        // Counted and logged here, the one place every request is answered
        // (pages, errors, the pool's, a panic's 500). The query string is
        // never logged: it may carry a reset token.
        let took = self.started.elapsed();
        self.options
            .metrics
            .answered(&self.path, response.status, took);
        let read = self.read.as_ref();
        crate::log::answered(&crate::log::Answered {
            method: &self.method,
            path: &self.path,
            status: response.status,
            millis: took.as_secs_f64() * 1000.0,
            request: read.map(|(id, _)| id.as_str()),
            client: read.map(|(_, client)| client.as_str()),
        });
        let wire = to_wire(response, &raw, &self.options, self.lang);
        let mut writer = raw.into_writer();
        let _ = writer.write_all(&wire).and_then(|()| writer.flush());
        // Dropping the writer lets tiny_http go on to this connection's
        // next request; the front may now read one more from the client.
        drop(writer);
        if let Some(conn) = self.conn {
            self.listener.front.answered(conn);
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if self.raw.is_some() {
            say!(
                "kagi: {} {}: handler panicked; answered 500",
                self.method,
                self.path
            );
            self.answer(Response::error(500));
        }
    }
}

/// Serves requests on the calling thread until `keep_going` says stop (it is
/// asked after each request; `Listener::unblock` wakes a waiting `recv`).
/// `handler` gets each checked request with its `Reply`, and answers it now
/// or hands both on; a malformed request is answered here.
pub fn serve(
    listener: &Arc<Listener>,
    options: &Arc<ServeOptions>,
    keep_going: impl Fn() -> bool,
    handler: impl Fn(Request, Reply),
) {
    while keep_going() {
        let Ok(mut raw) = listener.server.recv() else {
            continue;
        };
        if !keep_going() {
            break;
        }
        let started = Instant::now();
        let open = listener.front.open_connections() as u64;
        (options.metrics.open_connections).store(open, std::sync::atomic::Ordering::Relaxed);
        let method = raw.method().to_string();
        let path = raw.url().split('?').next().unwrap_or("").to_string();
        let lang = lang_of(&raw);
        let parsed = parse(&mut raw, &listener.front.secret, options, lang);
        let conn = match &parsed {
            Ok((_, conn)) => Some(*conn),
            Err((_, conn)) => *conn,
        };
        let read = parsed
            .as_ref()
            .ok()
            .map(|(r, _)| (r.id.clone(), r.client.to_string()));
        let reply = Reply {
            raw: Some(raw),
            conn,
            listener: listener.clone(),
            options: options.clone(),
            method,
            path,
            lang,
            read,
            started,
        };
        match parsed {
            // A panic drops the reply, which answers 500.
            Ok((request, _)) => {
                let _ = catch_unwind(AssertUnwindSafe(|| handler(request, reply)));
            }
            Err((status, _)) => reply.send(Response::error(status)),
        }
    }
}

/// The language of a request, read before anything else so that even a
/// malformed one is refused in it.
fn lang_of(raw: &tiny_http::Request) -> Lang {
    let header = |name: &'static str| {
        raw.headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str())
    };
    let cookies = header("Cookie")
        .map(form::parse_cookies)
        .unwrap_or_default();
    let chosen = cookies
        .iter()
        .find(|(n, _)| n == crate::text::COOKIE)
        .map(|(_, v)| v.as_str());
    Lang::of_request(chosen, header("Accept-Language"))
}

/// Reads and checks one request that came through the front door (which
/// has already refused oversized, ambiguous and slow requests): 400 for a
/// malformed query or form, a repeated field, or a body that is not a form.
fn parse(
    raw: &mut tiny_http::Request,
    secret: &str,
    options: &ServeOptions,
    lang: Lang,
) -> Result<(Request, u64), (u16, Option<u64>)> {
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
    // Only the front knows the peer and the connection, and proves it with
    // its secret: a request without it did not come through the front.
    let (peer, conn) = header(front::PEER_HEADER)
        .and_then(|v| {
            let mut parts = v.split(' ');
            let (proof, ip, conn) = (parts.next()?, parts.next()?, parts.next()?);
            crate::secret::constant_time_eq(proof, secret)
                .then(|| Some((ip.parse::<IpAddr>().ok()?, conn.parse::<u64>().ok()?)))?
        })
        .ok_or((400u16, None))?;
    let refuse = |status: u16| (status, Some(conn));
    if let Some(status) = header(front::REFUSED_HEADER) {
        return Err(refuse(status.parse().unwrap_or(400)));
    }
    let (path, query) = match raw.url().split_once('?') {
        Some((p, q)) => (p.to_string(), form::parse_urlencoded(q).ok_or(refuse(400))?),
        None => (raw.url().to_string(), Vec::new()),
    };
    let cookies = header("Cookie")
        .map(|c| form::parse_cookies(&c))
        .unwrap_or_default();
    let content_type = header("Content-Type").unwrap_or_default();
    let forwarded_for: Vec<String> = raw
        .headers()
        .iter()
        .filter(|h| h.field.equiv("X-Forwarded-For"))
        .map(|h| h.value.as_str().to_string())
        .collect();
    let client = options.trusted_proxies.client(peer, &forwarded_for);
    let bearer = header("Authorization")
        .and_then(|v| v.strip_prefix("Bearer ").map(|t| t.trim().to_string()));
    // Complete already: the front passes a body on only once it has all of it.
    let mut body = Vec::new();
    raw.as_reader()
        .take(front::MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|_| refuse(400))?;
    let form = if method == Method::Post && !body.is_empty() {
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(refuse(400));
        }
        let text = std::str::from_utf8(&body).map_err(|_| refuse(400))?;
        form::parse_urlencoded(text).ok_or(refuse(400))?
    } else {
        Vec::new()
    };
    // Every field has a maximum length: none of kagi's forms needs more.
    if form.len() > MAX_FIELDS
        || form
            .iter()
            .any(|(n, v)| n.len() > MAX_FIELD_BYTES || v.len() > MAX_FIELD_BYTES)
    {
        return Err(refuse(400));
    }
    // One value per name: `email=a&email=b` must never become two recipients.
    if form::has_repeated_name(&form) || form::has_repeated_name(&query) {
        return Err(refuse(400));
    }
    Ok((
        Request {
            method,
            path,
            query,
            cookies,
            form,
            client,
            bearer,
            lang,
            id: crate::secret::hex(&crate::secret::random_bytes::<8>()),
        },
        conn,
    ))
}

/// The answer as bytes on the wire: status line, headers (the security
/// headers on every one), and the body unless the request was HEAD. kagi
/// writes it itself rather than through tiny_http's `Response`, which
/// drops any `Connection` header: an HTTP/1.0 client that asked to keep
/// the connection alive must be told that it is.
fn to_wire(
    mut response: Response,
    raw: &tiny_http::Request,
    options: &ServeOptions,
    lang: Lang,
) -> Vec<u8> {
    if let Some(banner) = options.banner {
        add_banner(&mut response, banner.text(lang.texts()));
    }
    let version = raw.http_version();
    let closing = raw
        .headers()
        .iter()
        .find(|h| h.field.equiv("Connection"))
        .is_some_and(|h| h.value.as_str().eq_ignore_ascii_case("close"));
    let status = tiny_http::StatusCode(response.status);
    let mut head = format!(
        "HTTP/{}.{} {} {}\r\n",
        version.0,
        version.1,
        response.status,
        status.default_reason_phrase()
    );
    let mut add = |name: &str, value: &str| {
        // kagi builds only clean ASCII values; anything else is dropped
        // rather than sent broken.
        if value
            .bytes()
            .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
        {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
    };
    add("Server", "kagi");
    add(
        "Date",
        &crate::clock::http_date(std::time::SystemTime::now()),
    );
    add("Content-Type", response.content_type);
    // Bodies are in memory: always a Content-Length, never chunked.
    add("Content-Length", &response.body.len().to_string());
    for (name, value) in SECURITY_HEADERS {
        add(name, value);
    }
    if !response.cacheable {
        add("Cache-Control", "no-store");
    }
    if options.https {
        add("Strict-Transport-Security", "max-age=31536000");
    }
    for (name, value) in &response.headers {
        add(name, value);
    }
    if closing {
        add("Connection", "close");
    } else if *version == (1, 0) {
        add("Connection", "keep-alive");
    }
    head.push_str("\r\n");
    let mut wire = head.into_bytes();
    let no_body = *raw.method() == tiny_http::Method::Head
        || matches!(response.status, 100..=199 | 204 | 304);
    if !no_body {
        wire.extend_from_slice(&response.body);
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
    fn forwarded_for_is_walked_from_the_right_and_junk_ends_the_walk() {
        let proxies = TrustedProxies::parse(&["127.0.0.1".into(), "10.0.0.0/8".into()]).unwrap();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let client = |peer: IpAddr, lines: &[&str]| {
            let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            proxies.client(peer, &lines).to_string()
        };
        // A peer that is no proxy is the client, whatever it claims.
        let stranger: IpAddr = "198.51.100.9".parse().unwrap();
        assert_eq!(client(stranger, &["203.0.113.7"]), "198.51.100.9");
        assert_eq!(client(local, &[]), "127.0.0.1");
        assert_eq!(client(local, &["203.0.113.7"]), "203.0.113.7");
        // Entries a client wrote itself, on the left, count for nothing.
        assert_eq!(
            client(local, &["198.51.100.1, x, 203.0.113.7"]),
            "203.0.113.7"
        );
        assert_eq!(client(local, &["198.51.100.1, 203.0.113.7"]), "203.0.113.7");
        // Two proxies: the nearer vouches for the farther.
        assert_eq!(
            client(local, &["198.51.100.2, 203.0.113.8, 10.1.2.3"]),
            "203.0.113.8"
        );
        // Junk reported by a trusted proxy: that proxy is the client.
        assert_eq!(client(local, &["203.0.113.9, x, 10.1.2.3"]), "10.1.2.3");
        assert_eq!(client(local, &["203.0.113.9, "]), "127.0.0.1");
        assert_eq!(client(local, &["unknown"]), "127.0.0.1");
        assert_eq!(client(local, &[""]), "127.0.0.1");
        // Every hop a proxy: the farthest one.
        assert_eq!(client(local, &["10.9.9.9, 10.8.8.8"]), "10.9.9.9");
        // IPv6, ports, IPv4 in IPv6.
        assert_eq!(client(local, &["2001:db8::7"]), "2001:db8::7");
        assert_eq!(client(local, &["[2001:db8::8]:4711"]), "2001:db8::8");
        assert_eq!(client(local, &["[2001:db8::9]"]), "2001:db8::9");
        assert_eq!(client(local, &["203.0.113.10:5555"]), "203.0.113.10");
        assert_eq!(client(local, &["::ffff:203.0.113.11"]), "203.0.113.11");
        // Several header lines read as one list, in order.
        assert_eq!(
            client(local, &["198.51.100.3", "203.0.113.12"]),
            "203.0.113.12"
        );
        assert_eq!(
            client(local, &["203.0.113.13", "10.1.1.1, 10.2.2.2"]),
            "203.0.113.13"
        );
    }

    #[test]
    fn a_panicking_handler_becomes_a_500_page_and_the_server_lives_on() {
        let limits = front::Limits {
            max_connections: 8,
            max_connections_per_client: 8,
            header_timeout: std::time::Duration::from_secs(5),
            idle_timeout: std::time::Duration::from_secs(5),
            write_timeout: std::time::Duration::from_secs(5),
            trusted_proxies: TrustedProxies::default(),
        };
        let server =
            std::sync::Arc::new(Listener::bind("127.0.0.1:0".parse().unwrap(), limits).unwrap());
        let addr = server.local_addr();
        let s = server.clone();
        let t = std::thread::spawn(move || {
            let served = std::cell::Cell::new(0);
            serve(
                &s,
                &Arc::new(ServeOptions::default()),
                || served.get() < 2,
                |r, reply| {
                    served.set(served.get() + 1);
                    if r.path == "/boom" {
                        panic!("test panic");
                    }
                    reply.send(Response::html(maud::html! { p { "ok" } }))
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
