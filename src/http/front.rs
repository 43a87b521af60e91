//! The front door. kagi accepts TCP connections itself and reads every
//! request head with limits of size, count and time before tiny_http sees a
//! byte: tiny_http 0.12 has no such limits, treats any `Transfer-Encoding`
//! as chunked (CVE-2026-66752), accepts CR/LF inside header values
//! (CVE-2026-66753), and allocates the whole announced `Content-Length` when
//! it drops an unread body (one request with a huge length aborts the
//! process). A request that passes is rebuilt from its parsed parts and
//! handed, body included, to tiny_http over a private Unix socket; one that
//! does not is replaced by a refusal that tiny_http answers with kagi's
//! error page, and the connection is closed after it.
//!
//! Each connection has a thread that reads requests from the client; once
//! it has passed one on, two more carry the answers back. What a connection
//! may hold is bounded:
//! - a request, head and body, must arrive within the header timeout of
//!   its first byte;
//! - while answers it has not delivered exceed a small bound (requests not
//!   yet answered, or answer bytes the client has not read), no further
//!   request is read from it;
//! - connections are capped in all and per client address. At the overall
//!   cap the connection that has made the least progress (the longest
//!   since it last completed a request) is closed to make room; at a
//!   client's own cap, that client's idle connections make room, and a
//!   client whose connections are all busy is told to come back.

use crate::secret;
use crate::text::{EN, JA};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The largest request head (request line and headers) kagi reads: 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The most header lines a request may carry: 431.
pub const MAX_HEADERS: usize = 64;
/// The largest request body kagi reads: 413. kagi's forms are far smaller.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Headers the front sets towards tiny_http; a client's own are dropped.
pub const PEER_HEADER: &str = "X-Kagi-Peer";
pub const REFUSED_HEADER: &str = "X-Kagi-Refused";

/// Requests of one connection that may wait for their answers at once. A
/// browser sends one at a time; a client that pipelines more waits, unread,
/// in its own socket buffer instead of in kagi's memory.
const MAX_UNANSWERED: u64 = 2;

/// Answer bytes a client may leave unread before kagi reads no further
/// request from it: a few pages' worth.
const MAX_UNDELIVERED_BYTES: usize = 64 * 1024;

/// Answer bytes held for a client that reads more slowly than tiny_http
/// writes; a client further behind than this is cut off. The flow control
/// above keeps a client within one or two answers of this, and kagi's
/// largest answer (`/dev/mail.json` at its 500-mail limit) is well below it.
pub const MAX_PENDING_BYTES: usize = 4 * 1024 * 1024;

/// Connections the kernel queues before kagi accepts them. std's 128 is
/// too few for a burst: a dropped SYN is retried only after a second.
const BACKLOG: i32 = 4096;

/// A listening TCP socket with room for a burst of new connections.
fn listen(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    // A second listen() on a listening socket only changes its backlog.
    // SAFETY: a valid listening socket owned by `listener`.
    let done = unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&listener), backlog) };
    if done != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(listener)
}

/// Limits of the front door.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Open client connections at most.
    pub max_connections: usize,
    /// Open connections from one client address (IPv6: one /64) at most;
    /// trusted proxies are exempt.
    pub max_connections_per_client: usize,
    /// A request, head and body, must arrive completely within this time of
    /// its first byte.
    pub header_timeout: Duration,
    /// A connection with no request under way is closed after this time.
    pub idle_timeout: Duration,
    /// A client that reads no answer for this long is cut off.
    pub write_timeout: Duration,
    /// Proxies in front of kagi: all their clients share their address, so
    /// they are not held to the per-client cap.
    pub trusted_proxies: super::TrustedProxies,
}

/// A running front door.
pub struct Front {
    /// Public address.
    pub addr: SocketAddr,
    /// Proves to the backend that a request came through the front.
    pub secret: String,
    /// The private directory (mode 0700) of the backend socket.
    pub socket_dir: PathBuf,
    stop: Arc<AtomicBool>,
    inner: Arc<Inner>,
}

struct Inner {
    backend: PathBuf,
    secret: String,
    limits: Limits,
    slots: Mutex<Slots>,
    /// Notified when a connection gives its slot back: a stop waits on it.
    released: Condvar,
}

#[derive(Default)]
struct Slots {
    next: u64,
    open: HashMap<u64, Slot>,
    /// Addresses that lost a connection with a request under way to make
    /// room, and when: for a while their new connections are refused, not
    /// given room. Otherwise each reconnect of an attacker whose slow
    /// request was closed would close another, and the server would spend
    /// itself opening and closing connections.
    evicted: HashMap<IpAddr, Instant>,
    /// kagi is stopping: a connection reads no further request once the
    /// one under way is passed on.
    draining: bool,
}

/// How long an address that lost a busy connection to make room is
/// refused room for its new ones.
const EVICTION_PAUSE: Duration = Duration::from_secs(1);

struct Slot {
    stream: TcpStream,
    /// The address the connection counts against (`limit::client_group`),
    /// or None for a trusted proxy.
    client: Option<IpAddr>,
    /// Since when the connection has waited for, or been reading, its
    /// current request: the older, the less progress it has made.
    since: Instant,
    /// No byte of the current request has arrived yet.
    idle: bool,
    flow: Arc<Flow>,
}

impl Slot {
    /// The connection has a request the server has not answered yet:
    /// closing it would throw away work under way.
    fn answering(&self) -> bool {
        let f = self.flow.lock();
        f.sent > f.answered
    }

    fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        self.flow.break_off();
    }
}

/// One connection's answers on their way back, and the requests they
/// answer: shared by its reader, its two answer threads and the request
/// thread (which says when it has answered).
#[derive(Default)]
struct Flow {
    state: Mutex<FlowState>,
    changed: Condvar,
}

#[derive(Default)]
struct FlowState {
    /// Answer bytes read from tiny_http, not yet written to the client.
    chunks: VecDeque<Vec<u8>>,
    bytes: usize,
    /// tiny_http closed its side: nothing more will come.
    done: bool,
    /// The client is cut off: what comes is read and dropped.
    broken: bool,
    /// Requests handed to tiny_http.
    sent: u64,
    /// Of those, the ones the request thread has answered.
    answered: u64,
}

impl Flow {
    fn lock(&self) -> MutexGuard<'_, FlowState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn break_off(&self) {
        let mut f = self.lock();
        f.broken = true;
        f.chunks.clear();
        f.bytes = 0;
        self.changed.notify_all();
    }

    /// Waits until the client has taken enough of its answers for another
    /// request to be read: false if the connection broke meanwhile, or the
    /// answers did not move for `patience`.
    fn wait_for_room(&self, patience: Duration) -> bool {
        let until = Instant::now() + patience;
        let mut f = self.lock();
        loop {
            if f.broken {
                return false;
            }
            if f.sent.saturating_sub(f.answered) < MAX_UNANSWERED
                && f.bytes <= MAX_UNDELIVERED_BYTES
            {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            f = self
                .changed
                .wait_timeout(f, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Front {
    /// Binds the public address and returns the private Unix socket that
    /// tiny_http is to listen on.
    pub fn bind(addr: SocketAddr, limits: Limits) -> io::Result<(Front, UnixListener)> {
        let public = listen(addr, BACKLOG)?;
        // tiny_http wants a socket with a path; a directory only kagi's user
        // can enter keeps other users off it.
        let socket_dir = std::env::temp_dir().join(format!(
            "kagi-{}",
            secret::hex(&secret::random_bytes::<12>())
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&socket_dir)?;
        let backend_addr = socket_dir.join("http.sock");
        let backend = UnixListener::bind(&backend_addr)?;
        let secret = secret::hex(&secret::random_bytes::<16>());
        let inner = Arc::new(Inner {
            backend: backend_addr,
            secret: secret.clone(),
            limits,
            slots: Mutex::new(Slots::default()),
            released: Condvar::new(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let addr = public.local_addr()?;
        let (s, i) = (stop.clone(), inner.clone());
        std::thread::Builder::new()
            .name("kagi-accept".into())
            .spawn(move || accept_loop(public, i, s))?;
        let front = Front {
            addr,
            secret,
            socket_dir,
            stop,
            inner,
        };
        Ok((front, backend))
    }

    /// Stops accepting and closes every open connection.
    pub fn stop(&self) {
        self.stop_accepting();
        for (_, slot) in self.inner.lock().open.drain() {
            slot.close();
        }
    }

    fn stop_accepting(&self) {
        if !self.stop.swap(true, Ordering::SeqCst) {
            // Wakes the accept loop so that it sees the flag.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        }
    }

    /// The first half of a clean stop: no new connection is accepted, and
    /// none reads a further request. A connection waiting for its next
    /// request ends now; one with a request under way (being read, or
    /// passed on and not yet answered) ends once its answer is delivered.
    /// Returns how many requests are under way.
    pub fn drain(&self) -> usize {
        self.stop_accepting();
        let mut slots = self.inner.lock();
        slots.draining = true;
        let mut busy = 0;
        for slot in slots.open.values() {
            if !slot.idle || slot.answering() {
                busy += 1;
            }
            if slot.idle {
                // Its thread reads the end of the stream, as if the client
                // had closed, and goes on to deliver what it owes.
                let _ = slot.stream.shutdown(Shutdown::Read);
            }
        }
        busy
    }

    /// Waits, after `drain`, until every connection has ended or `until`
    /// has passed; returns how many are still open.
    pub fn wait_drained(&self, until: Instant) -> usize {
        let mut slots = self.inner.lock();
        while !slots.open.is_empty() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            slots = self
                .inner
                .released
                .wait_timeout(slots, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        slots.open.len()
    }

    /// The request thread has answered a request of connection `conn`
    /// (the id the peer header carries): the connection may read its next.
    pub fn answered(&self, conn: u64) {
        let flow = self.inner.lock().open.get(&conn).map(|s| s.flow.clone());
        if let Some(flow) = flow {
            flow.lock().answered += 1;
            flow.changed.notify_all();
        }
    }

    /// How many client connections are open now (for `/metrics`).
    pub fn open_connections(&self) -> usize {
        self.inner.lock().open.len()
    }
}

impl Drop for Front {
    /// Runs after tiny_http's server is gone (`Listener` drops it first).
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.socket_dir);
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a connection from `peer`. At the client's cap one of its
    /// idle connections is closed to make room; at the overall cap, the
    /// connection that has made the least progress, unless every one has a
    /// request the server is answering, or the newcomer's address has just
    /// lost a busy connection that way (`EVICTION_PAUSE`).
    fn admit(&self, stream: &TcpStream, peer: IpAddr) -> Option<(u64, Arc<Flow>)> {
        let limits = &self.limits;
        let client =
            (!limits.trusted_proxies.contains(peer)).then(|| crate::limit::client_group(peer));
        let mut slots = self.lock();
        if let Some(client) = client {
            let own = slots
                .open
                .values()
                .filter(|s| s.client == Some(client))
                .count();
            if own >= limits.max_connections_per_client {
                let victim = slots.least_progress(|s| s.client == Some(client) && s.idle);
                slots.close(victim?);
            }
        }
        if slots.open.len() >= limits.max_connections {
            let now = Instant::now();
            slots
                .evicted
                .retain(|_, at| now.duration_since(*at) < EVICTION_PAUSE);
            if client.is_some_and(|c| slots.evicted.contains_key(&c)) {
                return None;
            }
            let victim = slots.least_progress(|_| true)?;
            let lost = &slots.open[&victim];
            if let (false, Some(address)) = (lost.idle, lost.client) {
                slots.evicted.insert(address, now);
            }
            slots.close(victim);
        }
        let stream = stream.try_clone().ok()?;
        let id = slots.next;
        slots.next += 1;
        let flow = Arc::new(Flow::default());
        slots.open.insert(
            id,
            Slot {
                stream,
                client,
                since: Instant::now(),
                idle: true,
                flow: flow.clone(),
            },
        );
        Some((id, flow))
    }

    /// The connection now waits for its next request; false when kagi is
    /// stopping and it is to read none. (Under the lock `drain` takes, so
    /// that a connection either sees the stop here or is idle when `drain`
    /// ends its reading.)
    fn set_waiting(&self, id: u64) -> bool {
        let mut slots = self.lock();
        if slots.draining {
            return false;
        }
        if let Some(slot) = slots.open.get_mut(&id) {
            slot.since = Instant::now();
            slot.idle = true;
        }
        true
    }

    /// The first byte of the connection's request has arrived.
    fn set_reading(&self, id: u64) {
        if let Some(slot) = self.lock().open.get_mut(&id) {
            slot.idle = false;
        }
    }

    fn release(&self, id: u64) {
        self.lock().open.remove(&id);
        self.released.notify_all();
    }
}

impl Slots {
    /// Among the connections `eligible` picks and the server is not
    /// answering, the one that has gone longest without completing a request.
    fn least_progress(&self, eligible: impl Fn(&Slot) -> bool) -> Option<u64> {
        self.open
            .iter()
            .filter(|(_, s)| eligible(s) && !s.answering())
            .min_by_key(|(_, s)| s.since)
            .map(|(id, _)| *id)
    }

    fn close(&mut self, id: u64) {
        if let Some(slot) = self.open.remove(&id) {
            slot.close();
        }
    }
}

fn accept_loop(public: TcpListener, inner: Arc<Inner>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        let (client, peer) = match public.accept() {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors, say: wait and go on, never give up.
                say!("kagi: accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let (id, flow) = match inner.admit(&client, peer.ip()) {
            Some(admitted) => admitted,
            None => {
                refuse_busy(client, inner.limits.write_timeout);
                continue;
            }
        };
        let i = inner.clone();
        let spawned = std::thread::Builder::new()
            .name("kagi-conn".into())
            .stack_size(128 * 1024)
            .spawn(move || {
                // The slot is given back however the thread ends, a panic
                // included.
                let _release = Release(&i, id);
                connection(&client, peer, &i, id, &flow);
                let _ = client.shutdown(Shutdown::Both);
            });
        if let Err(e) = spawned {
            say!("kagi: cannot serve a connection: {e}");
            inner.release(id);
        }
    }
}

/// Gives a connection's slot back when dropped.
struct Release<'a>(&'a Inner, u64);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.release(self.1);
    }
}

/// No connection can make room for this one: it is told to come back.
fn refuse_busy(mut client: TcpStream, write_timeout: Duration) {
    // Before a request is read, its language is unknown: both.
    let body = format!("{}\n{}\n", JA.c_busy, EN.c_busy);
    let _ = client.set_write_timeout(Some(write_timeout));
    let _ = write!(
        client,
        "HTTP/1.1 503 Service Unavailable\r\nServer: kagi\r\nRetry-After: 5\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.shutdown(Shutdown::Both);
}

/// The way to tiny_http, opened at a connection's first complete request:
/// until then a connection costs one thread.
struct Backend {
    stream: UnixStream,
    answers: [std::thread::JoinHandle<()>; 2],
}

impl Backend {
    fn open(inner: &Inner, client: &TcpStream, flow: &Arc<Flow>) -> io::Result<Backend> {
        let stream = UnixStream::connect(&inner.backend)?;
        // Answers flow back through memory: one thread takes them from
        // tiny_http as fast as it writes them, another gives them to the
        // client at the client's pace. tiny_http writes on the one request
        // thread, so it must never wait for a client that reads slowly or
        // not at all.
        let answers = spawn_answer_threads(&stream, client, flow)?;
        Ok(Backend { stream, answers })
    }

    /// Passes one request on; false if tiny_http is gone.
    fn send(&mut self, flow: &Flow, wire: &[u8]) -> bool {
        flow.lock().sent += 1;
        self.stream.write_all(wire).is_ok()
    }

    /// tiny_http answers what it has, sees the end, and closes its side;
    /// the answer thread then closes the client's.
    fn finish(self) {
        let _ = self.stream.shutdown(Shutdown::Write);
        for t in self.answers {
            let _ = t.join();
        }
    }
}

/// Serves one client connection until it closes, idles out or is refused.
fn connection(client: &TcpStream, peer: SocketAddr, inner: &Inner, id: u64, flow: &Arc<Flow>) {
    let limits = &inner.limits;
    let _ = client.set_write_timeout(Some(limits.write_timeout));
    let _ = client.set_nodelay(true);
    let peer_header = format!("{PEER_HEADER}: {} {} {id}\r\n", inner.secret, peer.ip());
    let mut conn = Conn {
        stream: client,
        buf: Vec::new(),
    };
    let mut backend: Option<Backend> = None;
    loop {
        // A client that does not take its answers gets no more of them.
        if !flow.wait_for_room(limits.idle_timeout) {
            break;
        }
        if !inner.set_waiting(id) {
            break;
        }
        let head = conn.read_head(limits, || inner.set_reading(id));
        let outcome = match head {
            Ok(None) => break,
            Ok(Some((head, started))) => parse_head(&head).and_then(|h| {
                let body = conn.read_body(h.content_length, started + limits.header_timeout)?;
                Ok((h, body))
            }),
            Err(status) => Err(Refused {
                status,
                target: "/".into(),
            }),
        };
        let (wire, last) = match outcome {
            Ok((head, body)) => {
                let mut wire = head.rebuild(&peer_header);
                wire.extend_from_slice(&body);
                (wire, head.close)
            }
            Err(refused) => (
                format!(
                    "GET {} HTTP/1.1\r\nHost: kagi\r\n{peer_header}{REFUSED_HEADER}: {}\r\nConnection: close\r\n\r\n",
                    refused.target, refused.status
                )
                .into_bytes(),
                true,
            ),
        };
        // Closed to make room while it read: nothing goes to tiny_http.
        if flow.lock().broken {
            break;
        }
        if backend.is_none() {
            match Backend::open(inner, client, flow) {
                Ok(b) => backend = Some(b),
                Err(_) => break,
            }
        }
        let Some(b) = backend.as_mut() else { break };
        if !b.send(flow, &wire) || last {
            break;
        }
    }
    if let Some(b) = backend {
        b.finish();
    }
    linger(client);
}

fn spawn_answer_threads(
    backend: &UnixStream,
    client: &TcpStream,
    flow: &Arc<Flow>,
) -> io::Result<[std::thread::JoinHandle<()>; 2]> {
    let (mut from, cut) = (backend.try_clone()?, client.try_clone()?);
    let f = flow.clone();
    let reader = std::thread::Builder::new()
        .name("kagi-answer".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut chunk = vec![0u8; 16 * 1024];
            loop {
                let n = match from.read(&mut chunk) {
                    Ok(0) | Err(_) => 0,
                    Ok(n) => n,
                };
                let mut pending = f.lock();
                if n == 0 {
                    pending.done = true;
                    f.changed.notify_all();
                    return;
                }
                if pending.broken {
                    continue;
                }
                if pending.bytes + n > MAX_PENDING_BYTES {
                    drop(pending);
                    f.break_off();
                    let _ = cut.shutdown(Shutdown::Both);
                } else {
                    pending.bytes += n;
                    pending.chunks.push_back(chunk[..n].to_vec());
                    f.changed.notify_all();
                }
            }
        })?;
    let mut to = client.try_clone()?;
    let f = flow.clone();
    let writer = std::thread::Builder::new()
        .name("kagi-write".into())
        .stack_size(64 * 1024)
        .spawn(move || loop {
            let next = {
                let mut pending = f.lock();
                loop {
                    if pending.broken {
                        return;
                    }
                    if let Some(c) = pending.chunks.pop_front() {
                        break c;
                    }
                    if pending.done {
                        let _ = to.shutdown(Shutdown::Write);
                        return;
                    }
                    pending = f.changed.wait(pending).unwrap_or_else(|e| e.into_inner());
                }
            };
            if to.write_all(&next).is_err() {
                f.break_off();
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
            // Counted as delivered once written: the reader may go on.
            let mut pending = f.lock();
            pending.bytes = pending.bytes.saturating_sub(next.len());
            f.changed.notify_all();
        })?;
    Ok([reader, writer])
}

/// Reads and drops what the client still sends, briefly, before the socket
/// closes: closing with unread input makes the kernel reset the connection,
/// and the client may then lose the answer it was about to read.
fn linger(client: &TcpStream) {
    let until = Instant::now() + Duration::from_secs(1);
    let mut left: usize = 64 * 1024;
    let mut chunk = [0u8; 4096];
    while left > 0 {
        let wait = until.saturating_duration_since(Instant::now());
        if wait.is_zero() || client.set_read_timeout(Some(wait)).is_err() {
            break;
        }
        match (&*client).read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// A request that is not passed on: its status, and a printable target for
/// the log line.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub target: String,
}

impl From<u16> for Refused {
    fn from(status: u16) -> Refused {
        Refused {
            status,
            target: "/".into(),
        }
    }
}

struct Conn<'a> {
    stream: &'a TcpStream,
    /// Bytes read but not yet used: the start of a body or of the next head.
    buf: Vec<u8>,
}

impl Conn<'_> {
    /// Reads more bytes, waiting until `deadline` at most. Ok(false) on the
    /// end of the stream or when the deadline passes.
    fn fill(&mut self, deadline: Instant) -> io::Result<bool> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut chunk = [0u8; 4096];
        match (&*self.stream).read(&mut chunk) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// The next request head, without its final empty line, and when its
    /// first byte arrived (`first_byte` is called then). None when the
    /// client closes or idles out between requests; an error status when a
    /// head is too large (431) or too slow (408).
    fn read_head(
        &mut self,
        limits: &Limits,
        first_byte: impl Fn(),
    ) -> Result<Option<(Vec<u8>, Instant)>, u16> {
        let idle_until = Instant::now() + limits.idle_timeout;
        let mut started: Option<Instant> = None;
        // Empty lines dropped before the request line, and how much of the
        // buffer has been searched for the head's end: both so that a head
        // sent a byte at a time, or a stream of empty lines, costs no more
        // than its size once.
        let (mut skipped, mut searched) = (0usize, 0usize);
        loop {
            // Any byte, an empty line too, starts the head's clock.
            if !self.buf.is_empty() && started.is_none() {
                started = Some(Instant::now());
                first_byte();
            }
            // Empty lines before a request line are allowed (RFC 9112
            // §2.2); they count towards the head's size.
            let blank = self
                .buf
                .chunks(2)
                .take_while(|pair| *pair == b"\r\n")
                .count()
                * 2;
            if blank > 0 {
                self.buf.drain(..blank);
                skipped += blank;
                searched = 0;
            }
            let from = searched.saturating_sub(3);
            if let Some(at) = find(&self.buf[from..], b"\r\n\r\n") {
                let end = from + at;
                let head = self.buf[..end].to_vec();
                self.buf.drain(..end + 4);
                return Ok(Some((head, started.unwrap_or_else(Instant::now))));
            }
            searched = self.buf.len();
            if self.buf.len() + skipped > MAX_HEAD_BYTES {
                return Err(431);
            }
            let deadline = match started {
                Some(t) => t + limits.header_timeout,
                None => idle_until,
            };
            match self.fill(deadline) {
                Ok(true) => {}
                Ok(false) if self.buf.is_empty() && skipped == 0 => return Ok(None),
                // A head that stops arriving, or a client gone mid-head.
                Ok(false) if Instant::now() >= deadline => return Err(408),
                Ok(false) | Err(_) => return Ok(None),
            }
        }
    }

    /// The body: `len` bytes, by `deadline` (the header timeout after the
    /// request's first byte: head and body share it).
    fn read_body(&mut self, len: usize, deadline: Instant) -> Result<Vec<u8>, Refused> {
        while self.buf.len() < len {
            match self.fill(deadline) {
                Ok(true) => {}
                _ => return Err(408.into()),
            }
        }
        Ok(self.buf.drain(..len).collect())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A request head that passed every check.
#[derive(Debug)]
pub struct Head {
    method: String,
    target: String,
    version: String,
    /// Headers passed on unchanged, in order.
    headers: Vec<(String, String)>,
    pub content_length: usize,
    /// The connection ends after this request.
    pub close: bool,
}

impl Head {
    /// The head as tiny_http receives it: the checked parts, the peer
    /// header, and the connection's fate spelled out.
    fn rebuild(&self, peer_header: &str) -> Vec<u8> {
        let mut out = format!("{} {} {}\r\n", self.method, self.target, self.version);
        for (name, value) in &self.headers {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push_str("\r\n");
        }
        if self.content_length > 0 {
            out.push_str(&format!("Content-Length: {}\r\n", self.content_length));
        }
        out.push_str(peer_header);
        out.push_str(if self.close {
            "Connection: close\r\n"
        } else {
            "Connection: keep-alive\r\n"
        });
        out.push_str("\r\n");
        out.into_bytes()
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header value may hold visible ASCII, spaces and tabs: no control
/// character (CR and LF above all), no byte above 0x7E.
fn is_clean_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// Checks a request head. 400 for anything malformed or ambiguous (any
/// `Transfer-Encoding`, several or non-numeric `Content-Length`s, several
/// `Host`s or none in HTTP/1.1, control characters), 413 for a body over the limit, 431 for too
/// many headers.
pub fn parse_head(head: &[u8]) -> Result<Head, Refused> {
    let text = std::str::from_utf8(head).map_err(|_| Refused::from(400))?;
    if !text.is_ascii() {
        return Err(400.into());
    }
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(400.into());
    };
    if !is_token(method)
        || !target.starts_with('/')
        || !target.bytes().all(|b| (0x21..0x7f).contains(&b))
    {
        return Err(400.into());
    }
    // From here on a refusal can name the path in the log line.
    let refuse = |status: u16| Refused {
        status,
        target: target.split('?').next().unwrap_or("/").to_string(),
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(refuse(400));
    }
    let mut headers = Vec::new();
    let mut content_lengths = Vec::new();
    let mut hosts = 0;
    let mut close = version == "HTTP/1.0";
    for (n, line) in lines.enumerate() {
        if n == MAX_HEADERS {
            return Err(refuse(431));
        }
        // No bare CR or LF inside a line, no folded continuation lines.
        let Some((name, value)) = line.split_once(':') else {
            return Err(refuse(400));
        };
        let value = value.trim_matches([' ', '\t']);
        if !is_token(name) || !is_clean_value(line) {
            return Err(refuse(400));
        }
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "transfer-encoding" => return Err(refuse(400)),
            "content-length" => content_lengths.push(value),
            "connection" => {
                let tokens = value.to_ascii_lowercase();
                if tokens.split(',').any(|t| t.trim() == "close") {
                    close = true;
                } else if tokens.split(',').any(|t| t.trim() == "keep-alive") {
                    close = false;
                }
            }
            // Set by the front alone; hop-by-hop or unsupported otherwise.
            "x-kagi-peer" | "x-kagi-refused" | "upgrade" | "keep-alive" | "expect" | "te"
            | "trailer" | "proxy-connection" => {}
            _ => {
                if lower == "host" {
                    hosts += 1;
                    if hosts > 1 {
                        return Err(refuse(400));
                    }
                }
                headers.push((name.to_string(), value.to_string()));
            }
        }
    }
    // HTTP/1.1 requires a Host header (RFC 9112 §3.2).
    if version == "HTTP/1.1" && hosts == 0 {
        return Err(refuse(400));
    }
    let content_length = match content_lengths[..] {
        [] => 0,
        [one] => {
            if one.is_empty() || !one.bytes().all(|b| b.is_ascii_digit()) {
                return Err(refuse(400));
            }
            // Digits beyond any usize are simply too large.
            one.parse::<usize>().unwrap_or(usize::MAX)
        }
        _ => return Err(refuse(400)),
    };
    if content_length > MAX_BODY_BYTES {
        return Err(refuse(413));
    }
    Ok(Head {
        method: method.to_string(),
        target: target.to_string(),
        version: version.to_string(),
        headers,
        content_length,
        close,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(head: &str) -> u16 {
        match parse_head(head.as_bytes()) {
            Ok(_) => 200,
            Err(r) => r.status,
        }
    }

    #[test]
    fn a_clean_head_is_rebuilt_with_the_peer_and_its_fate() {
        let head = parse_head(b"POST /kaigo/login?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nX-Kagi-Peer: forged\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c").unwrap();
        assert_eq!(head.content_length, 12);
        let wire = String::from_utf8(head.rebuild("X-Kagi-Peer: s 1.2.3.4\r\n")).unwrap();
        assert_eq!(
            wire,
            "POST /kaigo/login?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nX-Kagi-Peer: s 1.2.3.4\r\nConnection: keep-alive\r\n\r\n"
        );
    }

    #[test]
    fn ambiguous_or_dirty_heads_are_refused() {
        let ok = "GET / HTTP/1.1\r\nHost: a";
        assert_eq!(status(ok), 200);
        for bad in [
            "GET / HTTP/1.1\r\nTransfer-Encoding: chunked",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 4",
            "POST / HTTP/1.1\r\ntransfer-encoding : chunked",
            "POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 5",
            "POST / HTTP/1.1\r\nContent-Length: 4, 4",
            "POST / HTTP/1.1\r\nContent-Length: +4",
            "POST / HTTP/1.1\r\nContent-Length: 0x10",
            "GET / HTTP/1.1\r\nX-A: a\rb",
            "GET / HTTP/1.1\r\nX-A: a\nb",
            "GET / HTTP/1.1\r\nX-A: a\0b",
            "GET / HTTP/1.1\r\n folded",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b",
            "GET / HTTP/2.0",
            "GET /a b HTTP/1.1",
            "GET http://evil/ HTTP/1.1",
            "GET / HTTP/1.1\r\nX-É: 1",
            // HTTP/1.1 without Host (RFC 9112 §3.2).
            "GET / HTTP/1.1",
            "GET / HTTP/1.1\r\nX-A: 1",
        ] {
            assert_eq!(status(bad), 400, "{bad:?}");
        }
        assert_eq!(status("GET / HTTP/1.0"), 200, "HTTP/1.0 needs no Host");
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 16385"),
            413
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999"),
            413
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 16384"),
            200
        );
        let many = format!(
            "GET / HTTP/1.1\r\nHost: a{}",
            "\r\nX-A: 1".repeat(MAX_HEADERS - 1)
        );
        assert_eq!(status(&many), 200);
        let too_many = format!("{many}\r\nX-A: 1");
        assert_eq!(status(&too_many), 431);
    }

    #[test]
    fn a_connection_reads_no_further_while_its_answers_wait() {
        let flow = Flow::default();
        assert!(flow.wait_for_room(Duration::ZERO));
        flow.lock().sent = MAX_UNANSWERED;
        let short = Duration::from_millis(10);
        assert!(!flow.wait_for_room(short), "requests not yet answered");
        flow.lock().answered = 1;
        assert!(flow.wait_for_room(Duration::ZERO));
        flow.lock().bytes = MAX_UNDELIVERED_BYTES + 1;
        assert!(
            !flow.wait_for_room(short),
            "answers the client has not read"
        );
        // The writer's progress wakes the reader.
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                flow.lock().bytes = 0;
                flow.changed.notify_all();
            });
            assert!(flow.wait_for_room(Duration::from_secs(5)));
        });
        flow.break_off();
        assert!(!flow.wait_for_room(Duration::from_secs(5)), "cut off");
    }

    #[test]
    fn http_1_0_closes_unless_kept_alive() {
        assert!(parse_head(b"GET / HTTP/1.0").unwrap().close);
        assert!(
            !parse_head(b"GET / HTTP/1.0\r\nConnection: keep-alive")
                .unwrap()
                .close
        );
        assert!(
            parse_head(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close")
                .unwrap()
                .close
        );
    }
}
