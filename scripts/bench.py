#!/usr/bin/env python3
"""kagi's benchmarks: page throughput against a bare tiny_http server, and
the footprint (binary size, exec to first 200, RSS); given ACCOUNTS, the
same on that many imported accounts, whole recoveries of them, the
console's account search on them (p50 and p99 per kind of query), and the
sweep. Reports figures; it does not pass or fail on time. Run through
scripts/bench, which builds first. Python standard library only."""

import base64
import collections
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from kagitest import (FLOW_CONFIG, SERVE_CONFIG, Browser, minor_faults, rss_kib, serve, start, stop,
                      thread_times)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KAGI = os.path.join(ROOT, "target", "release", "kagi")


def wrk(url, headers=(), connections=16, seconds=10):
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50_ms": pct(50), "p99_ms": pct(99),
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": errors.group(1).strip() if errors else ""}


def timed(steps, name, fn):
    began = time.perf_counter()
    result = fn()
    steps.setdefault(name, []).append((time.perf_counter() - began) * 1000)
    return result


def newest_mail(b, count_before):
    """Waits for mail number count_before + 1 in /dev/mail.json."""
    while True:
        _, _, text = b.request("GET", "/dev/mail.json")
        mails = json.loads(text)
        if len(mails) > count_before:
            return mails[0], len(mails)
        time.sleep(0.002)


class Inbox:
    """The captured mail of one store, read for many browsers at once: one
    thread asks `/dev/mail.json?after=…` of each instance in turn and hands
    each mail to the browser waiting for its address (each browser owns
    its accounts' addresses). `wait` stands in for newest_mail, which
    counts the mailbox and so serves one browser at a time."""

    # How far behind the newest mail seen the next question starts: a mail
    # with a lower id can land after a higher one (two requests, two mail
    # threads), and the repeats are dropped by id.
    LAG_S = 0.2

    def __init__(self, addrs):
        self.addrs = addrs
        self.waiting = threading.Condition()
        self.mail = collections.defaultdict(collections.deque)
        self.seen = set()
        self.done = False
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        after, marks, turn = 0, collections.deque(), 0
        while not self.done:
            b = Browser(self.addrs[turn % len(self.addrs)])
            turn += 1
            try:
                st, _, text = b.request("GET", f"/dev/mail.json?after={after}&limit=500")
            except OSError:
                st = None
            now = time.perf_counter()
            if st == 200:
                with self.waiting:
                    for m in json.loads(text):  # oldest first
                        if m["id"] not in self.seen:
                            self.seen.add(m["id"])
                            self.mail[m["to"]].append(m)
                            marks.append((now, m["id"]))
                    self.waiting.notify_all()
            while marks and marks[0][0] < now - self.LAG_S:
                after = max(after, marks.popleft()[1])
            time.sleep(0.01)

    def wait(self, to, timeout=60):
        """The next mail to `to`, in newest_mail's shape (mail, count)."""
        deadline = time.perf_counter() + timeout
        with self.waiting:
            while not self.mail[to]:
                left = deadline - time.perf_counter()
                assert left > 0, f"no mail to {to} within {timeout} s"
                self.waiting.wait(left)
            return self.mail[to].popleft(), 0

    def stop(self):
        self.done = True
        self.thread.join()


def next_mail(b, mails, email, inbox):
    """The flow's next mail: from `inbox` by its address, or the newest."""
    return inbox.wait(email) if inbox else newest_mail(b, mails)


def kaigo_flow(addr, steps, i, mails, office="2711111111", email="office-osaka@example.jp", inbox=None):
    """One whole kaigo recovery; returns the mail count after it. With
    `inbox`, its mail comes from there (`mails` is then not used)."""
    b = Browser(addr)
    timed(steps, "kaigo: open step 2", lambda: b.request("GET", "/kaigo/recovery/auth"))
    st, loc, _ = timed(steps, "kaigo: office + address (code issued)", lambda: b.request(
        "POST", "/kaigo/recovery/auth", [("office", office), ("email", email)]))
    assert loc == "/kaigo/recovery/otp", (st, loc)
    mail, mails = timed(steps, "kaigo: wait for the mail", lambda: next_mail(b, mails, email, inbox))
    code = re.search(r"\[ワンタイムパスワード\]\r?\n(\d{6})", mail["body"]).group(1)
    b.request("GET", "/kaigo/recovery/otp")
    st, loc, _ = timed(steps, "kaigo: code", lambda: b.request("POST", "/kaigo/recovery/otp", [("otp", code)]))
    assert loc == "/kaigo/recovery/reset", (st, loc)
    b.request("GET", "/kaigo/recovery/reset")
    pw = f"benchKaigo{i}x"
    st, loc, _ = timed(steps, "kaigo: new password (argon2id + flush)", lambda: b.request(
        "POST", "/kaigo/recovery/reset", [("password", pw), ("password_confirm", pw)]))
    assert loc == "/kaigo/recovery/done", (st, loc)
    _, mails = next_mail(b, mails, email, inbox)  # the notice
    return mails


def portal_flow(addr, steps, i, mails, user="demo-user", email="demo-user@example.jp", inbox=None):
    """One whole portal recovery, as kaigo_flow."""
    b = Browser(addr)
    _, _, page = timed(steps, "portal: open ① (CAPTCHA drawn)", lambda: b.request("GET", "/portal/reset"))
    cid = re.search(r'name="captcha_id" value="([0-9a-f]+)"', page).group(1)
    _, _, listing = b.request("GET", "/dev/captcha.json")
    answer = next(c["answer"] for c in json.loads(listing) if c["id"] == cid)
    st, loc, _ = timed(steps, "portal: ① user + CAPTCHA", lambda: b.request(
        "POST", "/portal/reset", [("captcha_id", cid), ("user", user), ("captcha", answer), ("action", "next")]))
    assert loc == "/portal/reset/verify", (st, loc)
    b.request("GET", "/portal/reset/verify")
    st, loc, _ = timed(steps, "portal: ② address (link issued)", lambda: b.request(
        "POST", "/portal/reset/verify", [("email", email)]))
    assert loc == "/portal/reset/sent", (st, loc)
    mail, mails = timed(steps, "portal: wait for the mail", lambda: next_mail(b, mails, email, inbox))
    token = re.search(r"token=([0-9a-f]{64})", mail["body"]).group(1)
    timed(steps, "portal: open the link", lambda: b.request("GET", f"/portal/passwordreset?token={token}"))
    pw = f"BenchPortal{i}x"
    st, loc, _ = timed(steps, "portal: new password (argon2id + flush)", lambda: b.request(
        "POST", "/portal/passwordreset", [("token", token), ("password", pw), ("password_confirm", pw)]))
    assert loc == "/portal/passwordreset/done", (st, loc)
    _, mails = next_mail(b, mails, email, inbox)  # the notice
    return mails


def flows(work, n):
    config = os.path.join(work, "flows.toml")
    with open(config, "w") as f:
        f.write(FLOW_CONFIG)
    kagi, m = start([KAGI, "demo", "--listen", "127.0.0.1:0", "--data-dir",
                     os.path.join(work, "flows"), "--config", config], r"ready in (\d+) ms on http://(\S+)")
    addr = m.group(2)
    steps, mails = {}, 0
    out = {}
    for site, flow in (("kaigo", kaigo_flow), ("portal", portal_flow)):
        mails = flow(addr, {}, 999, mails)  # a first one, not counted, as at scale
        began = time.perf_counter()
        for i in range(n):
            mails = flow(addr, steps, i, mails)
        out[site] = {"flows_per_s": n / (time.perf_counter() - began)}
    stop(kagi)
    out["steps"] = {k: pctl(v) for k, v in steps.items()}
    return out


def honest_recovery(addr, mails):
    """One person's whole kaigo recovery, as a browser does it: a 503 is
    waited out as its Retry-After says, and the step sent again. Returns
    the seconds it took, the 503s met, and the mail count."""
    b = Browser(addr)
    busy = [0]

    def post(path, fields):
        while True:
            st, loc, _ = b.request("POST", path, fields)
            if st != 503:
                return st, loc
            busy[0] += 1
            time.sleep(5)

    began = time.perf_counter()
    b.request("GET", "/kaigo/recovery/auth")
    st, loc = post("/kaigo/recovery/auth", [("office", "2711111111"), ("email", "office-osaka@example.jp")])
    assert loc == "/kaigo/recovery/otp", (st, loc)
    mail, mails = newest_mail(b, mails)
    code = re.search(r"\[ワンタイムパスワード\]\r?\n(\d{6})", mail["body"]).group(1)
    b.request("GET", "/kaigo/recovery/otp")
    st, loc = post("/kaigo/recovery/otp", [("otp", code)])
    assert loc == "/kaigo/recovery/reset", (st, loc)
    b.request("GET", "/kaigo/recovery/reset")
    st, loc = post("/kaigo/recovery/reset", [("password", "honestUser2026"), ("password_confirm", "honestUser2026")])
    assert loc == "/kaigo/recovery/done", (st, loc)
    return time.perf_counter() - began, busy[0], mails


def login_flood(kagi_bin, work, form="login", clients=64, seconds=10):
    """`clients` browsers, each from an address of its own (127.0.0.2 on),
    post wrong passwords as fast as they can, limits lifted: to the login
    (`form` "login"), or to the security-code form from logged-in sessions
    ("security-code"). Meanwhile one more fetches the login page every
    20 ms, and after 2 s one honest person recovers a kaigo login. Returns
    the pages' latencies, the logins checked and refused per second, the
    honest recovery, and kagi's minor page faults per checked login."""
    import threading
    config = os.path.join(work, f"flood-{form}.toml")
    with open(config, "w") as f:
        f.write(FLOW_CONFIG.replace("[guard]", "[guard]\nlogin_failures = 1000000"))
    kagi, m = start([kagi_bin, "demo", "--listen", "127.0.0.1:0", "--data-dir",
                     os.path.join(work, f"flood-{form}-{os.path.basename(kagi_bin)}-{time.time()}"),
                     "--config", config], r"ready in (\d+) ms on http://(\S+)")
    addr = m.group(2)
    time.sleep(0.5)
    checked, refused = [0], [0]
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)
    until = [0.0]

    def attacker(i):
        b = Browser(addr, source=f"127.0.0.{2 + i}")
        if form == "security-code":
            b.request("GET", "/kaigo/login")
            b.request("POST", "/kaigo/login", [("user_id", "KJ131311111111"), ("password", "kaigoDemo13")])
            b.request("GET", "/kaigo/security-code")
            path = "/kaigo/security-code"
            fields = [("action", "set"), ("password", f"wrong-{i}"), ("code", "abcd"), ("code_confirm", "abcd")]
        else:
            b.request("GET", "/kaigo/login")
            path = "/kaigo/login"
            fields = [("user_id", "KJ272711111111"), ("password", f"wrong-{i}")]
        ready.wait()
        while time.perf_counter() < until[0]:
            st, _, _ = b.request("POST", path, fields)
            with lock:
                if st == 503:
                    refused[0] += 1
                else:
                    checked[0] += 1

    threads = [threading.Thread(target=attacker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    faults_before = minor_faults(kagi.pid)
    cpu_before = thread_times(kagi.pid)
    until[0] = time.perf_counter() + seconds
    ready.wait()
    began = time.perf_counter()
    honest = {}

    def person():
        time.sleep(2)
        took, busy, _ = honest_recovery(addr, len(json.loads(Browser(addr).request("GET", "/dev/mail.json")[2])))
        honest.update(seconds=took, busy=busy)

    person_thread = threading.Thread(target=person)
    person_thread.start()
    pages = []
    while time.perf_counter() < until[0]:
        asked = time.perf_counter()
        Browser(addr).request("GET", "/kaigo/login")
        pages.append((time.perf_counter() - asked) * 1000)
        time.sleep(0.02)
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    faults = minor_faults(kagi.pid) - faults_before
    cpu_after = thread_times(kagi.pid)
    person_thread.join()

    def used(match):
        return sum(cpu_after[n][0] - cpu_before.get(n, (0, 0))[0] for n in cpu_after if match(n)) / 1e9 / elapsed
    rss = rss_kib(kagi.pid)
    stop(kagi)
    v = sorted(pages)
    return {"form": form, "clients": clients, "checked_per_s": checked[0] / elapsed,
            "refused_per_s": refused[0] / elapsed, "pages": len(v),
            "p50_ms": v[len(v) // 2], "p99_ms": v[min(len(v) - 1, int(len(v) * 0.99))], "max_ms": v[-1],
            "faults_per_login": faults / max(1, checked[0]), "rss_after_kib": rss,
            "kagi_cores": used(lambda n: True), "hash_cores": used(lambda n: n.startswith("kagi-hash")),
            "honest_s": honest.get("seconds"), "honest_busy": honest.get("busy")}


def pages_and_rss(kagi_bin, work):
    """The kaigo login page under wrk, and RSS idle and after, on the demo."""
    kagi, m = start([kagi_bin, "demo", "--listen", "127.0.0.1:0", "--data-dir",
                     os.path.join(work, f"plain-{time.time()}")], r"ready in (\d+) ms on http://(\S+)")
    addr = m.group(2)
    time.sleep(0.5)
    idle = rss_kib(kagi.pid)
    r = wrk(f"http://{addr}/kaigo/login")
    r["rss_idle_kib"], r["rss_after_kib"] = idle, rss_kib(kagi.pid)
    stop(kagi)
    return r


def sweep(work, expired_bin, count):
    """Starts `serve` on a database of `count` expired flows and fetches a
    page every 5 ms while the sweeper deletes them; returns the sweep's
    time as kagi logs it and the longest page wait meanwhile."""
    # The same page loop first on an empty database with nothing to sweep:
    # on this shared machine a page sometimes waits for a core anyway.
    base_data = os.path.join(work, "nothing-to-sweep")
    path = os.path.join(work, "base.toml")
    with open(path, "w") as f:
        f.write(SERVE_CONFIG.replace("@DATA@", base_data))
    proc, addr = serve(KAGI, path)
    base = []
    for _ in range(3000):
        began = time.perf_counter()
        Browser(addr).request("GET", "/kaigo/login")
        base.append((time.perf_counter() - began) * 1000)
        time.sleep(0.005)
    stop(proc)
    base.sort()
    data = os.path.join(work, "expired")
    subprocess.run([expired_bin, data, str(count)], check=True, stdout=subprocess.DEVNULL)
    path = os.path.join(work, "expired.toml")
    with open(path, "w") as f:
        f.write(SERVE_CONFIG.replace("@DATA@", data))
    log = open(os.path.join(work, "expired.log"), "w+")
    proc, addr = serve(KAGI, path, stderr=log)
    waits, swept = [], None
    deadline = time.perf_counter() + 600
    while swept is None and time.perf_counter() < deadline:
        began = time.perf_counter()
        Browser(addr).request("GET", "/kaigo/login")
        waits.append((time.perf_counter() - began) * 1000)
        log.seek(0)
        m = re.search(r"sweep: (\d+) expired records in (\d+) ms", log.read())
        if m:
            swept = (int(m.group(1)), int(m.group(2)))
        time.sleep(0.005)
    stop(proc)
    shutil.rmtree(data, ignore_errors=True)
    v = sorted(waits)
    return {"count": count, "swept": swept, "pages": len(v), "p99_ms": v[int(len(v) * 0.99)],
            "max_ms": v[-1], "base_pages": len(base), "base_p99_ms": base[int(len(base) * 0.99)],
            "base_max_ms": base[-1]}


def pctl(values):
    v = sorted(values)
    return {"p50_ms": v[len(v) // 2], "p99_ms": v[min(len(v) - 1, int(len(v) * 0.99))]}


def first_200_ms(binary, config_text, workdir):
    """Time from exec to the first 200 of /healthz, on an empty database."""
    data = os.path.join(workdir, "empty")
    config = os.path.join(workdir, "serve.toml")
    with open(config, "w") as f:
        f.write(config_text.replace("@DATA@", data))
    began = time.perf_counter()
    proc = subprocess.Popen([binary, "serve", "--config", config],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    addr = None
    while addr is None:
        line = proc.stdout.readline()
        m = re.search(r" on http://(\S+)", line)
        if m:
            addr = m.group(1)
        elif not line:
            raise SystemExit("kagi serve did not start")
    host, port = addr.rsplit(":", 1)
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    break
        except OSError:
            pass
    elapsed = (time.perf_counter() - began) * 1000
    idle = rss_kib(proc.pid)
    stop(proc)
    shutil.rmtree(data, ignore_errors=True)
    return elapsed, idle


def totp(secret, step):
    """RFC 6238's code of a base32 secret at a 30-s step: HMAC-SHA1, 6 digits."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    tag = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = tag[-1] & 0x0F
    return f"{(struct.unpack('>I', tag[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def operator(addr, data):
    """A browser logged into the console of the server at `addr` (data
    directory `data`) as a new operator, enrolled as a person is: the link
    from `kagi operator add`, a password, the TOTP app's code (enrolment
    logs in)."""
    out = subprocess.run([KAGI, "operator", "add", "bench", "--data-dir", data, "--server", addr],
                         capture_output=True, text=True, check=True).stdout
    b = Browser(addr)
    _, _, page = b.request("GET", re.search(r"/admin/enrol\?token=\S+", out).group(0))
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page).group(1)
    password = "BenchOperator2026"
    st, loc, _ = b.request("POST", "/admin/enrol", [("token", token), ("password", password),
                                                  ("password2", password),
                                                  ("code", totp(secret, int(time.time()) // 30))])
    # Enrolment logs the operator in.
    assert loc == "/admin?done=enrolled", (st, loc)
    return b


def numbered(head, n, width):
    """How many of 0..n-1, written in `width` digits (0: as they are),
    begin with the digits `head` (no leading 0 when `width` is 0)."""
    p = int(head)
    spans = [width - len(head)] if width else range(len(str(n)))
    return sum(max(0, min(n, (p + 1) * 10**k) - p * 10**k) for k in spans)


def console_search(addr, data, count, n=200):
    """The console's search (`GET /admin?q=…&page=…`) on the accounts
    scale() imported: `n` requests of each kind from one client, one after
    another, the kinds taking turns (so that a cold cache or a busy
    neighbour falls on all alike). Each prefix is drawn at random from the
    imported names: whole, two or five digits off. Per kind: an example,
    the accounts its prefixes match, p50 and p99, and how many pages
    showed another number of rows than the matches make."""
    rng = random.Random(2026)
    half = count // 2
    # The unpadded numbers with the most digits: a whole name matches one.
    low = 10 ** (len(str(half - 1)) - 1)
    # The names scale() gives account i: (kind, the name, its number's
    # width (0: unpadded), what follows the number in a whole one).
    names = [("kaigo user ID", lambda i: f"KJ1313{i:08d}", 8, ""),
             ("office number", lambda i: f"13{i:08d}", 8, ""),
             ("portal user name", lambda i: f"user{i}", 0, ""),
             ("e-mail (o…, u…)", lambda i: f"{rng.choice('ou')}{i}", 0, "@example.jp")]
    kinds = [("no query (the page and the session)", lambda: ("", 0, 0))]
    for kind, name, width, rest in names:
        for cut, page, label in ((0, 0, "whole"), (2, 0, "last 2 digits off"), (5, 0, "last 5 digits off"),
                                 (5, 10, "last 5 digits off, page 10")):
            def draw(name=name, width=width, rest=rest, cut=cut, page=page):
                i = rng.randrange(0 if width else low, half)
                digits = f"{i:0{width}d}" if width else str(i)
                head = digits[:max(1, len(digits) - cut)]
                whole = name(i)
                prefix = whole[:len(whole) - len(digits) + len(head)] + (rest if head == digits else "")
                return prefix, page, numbered(head, half, width)
            kinds.append((f"{kind}: {label}", draw))
    kinds.append(("matches nothing (office 99…)", lambda: (f"99{rng.randrange(half):08d}", 0, 0)))
    b = operator(addr, data)
    times = {k: [] for k, _ in kinds}
    out = {k: {"example": None, "matches": [], "wrong_rows": 0} for k, _ in kinds}
    for _ in range(n):
        for kind, draw in kinds:
            prefix, page, matches = draw()
            path = ("/admin?" + urllib.parse.urlencode({"q": prefix, "page": page})) if prefix else "/admin"
            began = time.perf_counter()
            st, loc, text = b.request("GET", path)
            times[kind].append((time.perf_counter() - began) * 1000)
            assert st == 200, (path, st, loc)
            o = out[kind]
            o["example"] = o["example"] or prefix
            o["matches"].append(matches)
            if text.count('href="/admin/account?site=') != min(50, max(0, matches - page * 50)):
                o["wrong_rows"] += 1
    for kind, o in out.items():
        o.update(pctl(times[kind]))
        m = sorted(o.pop("matches"))
        o["matches"] = (m[0], m[-1])
    return out


PHC = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"


def footprint(work, count, binary):
    """Imports `count` synthetic accounts (half kaigo, half portal, one
    pre-hashed password for all) with `binary`, then starts `serve` on them
    three times: the import's time and peak, the database's size, each
    start, the idle RSS, the login page. Returns the figures and the data
    directory."""
    lines = os.path.join(work, "accounts.jsonl")
    with open(lines, "w") as f:
        for i in range(count // 2):
            f.write(json.dumps({"site": "kaigo", "office": f"13{i:08d}", "prefecture": "13",
                                "email": f"o{i}@example.jp", "password_phc": PHC}) + "\n")
            f.write(json.dumps({"site": "portal", "user": f"user{i}",
                                "email": f"u{i}@example.jp", "password_phc": PHC}) + "\n")
    data = os.path.join(work, "scale")
    shutil.rmtree(data, ignore_errors=True)
    began = time.perf_counter()
    importer = subprocess.Popen([binary, "import", lines, "--data-dir", data], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(importer.pid, 0)
    importer.returncode = 0  # reaped above
    assert status == 0, f"kagi import exited with status {status}"
    imported = time.perf_counter() - began
    os.remove(lines)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(data) for f in fs)
    config = SERVE_CONFIG.replace("@DATA@", data)
    starts, rss, pages = [], [], []
    for _ in range(3):
        path = os.path.join(work, "scale.toml")
        with open(path, "w") as f:
            f.write(config)
        began = time.perf_counter()
        proc, addr = serve(binary, path)
        host, port = addr.rsplit(":", 1)
        while True:
            try:
                with socket.create_connection((host, int(port)), timeout=1) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                pass
        starts.append((time.perf_counter() - began) * 1000)
        time.sleep(0.5)
        rss.append(rss_kib(proc.pid))
        pages.append(wrk(f"http://{addr}/kaigo/login"))
        stop(proc)
    return {"count": count, "import_s": imported, "import_peak_kib": usage.ru_maxrss,
            "db_bytes": size, "first_200_ms": starts, "rss_idle_kib": max(rss),
            "login_page": pages[-1]}, data


def scale(work, count):
    """The footprint of `count` imported accounts, then on them: whole
    recoveries and the console's search."""
    figures, data = footprint(work, count, KAGI)
    config = SERVE_CONFIG.replace("@DATA@", data)
    path = os.path.join(work, "scale.toml")
    # Whole recoveries of imported accounts, as on the demo: the lab mode
    # (capture) shows the mail and the CAPTCHA answers under /dev/.
    with open(path, "w") as f:
        f.write(config + FLOW_CONFIG)
    proc, addr = serve(KAGI, path)
    # One recovery per site first, not counted: the first write after a
    # start (sled's first segment) is not what this measures.
    mails = kaigo_flow(addr, {}, 999, 0, office="1300000999", email="o999@example.jp")
    mails = portal_flow(addr, {}, 999, mails, user="user999", email="u999@example.jp")
    steps = {}
    for i in range(20):
        mails = kaigo_flow(addr, steps, i, mails, office=f"13{i:08d}", email=f"o{i}@example.jp")
    for i in range(20):
        mails = portal_flow(addr, steps, i, mails, user=f"user{i}", email=f"u{i}@example.jp")
    search = console_search(addr, data, count)
    stop(proc)
    shutil.rmtree(data, ignore_errors=True)
    figures.update({"steps": {k: pctl(v) for k, v in steps.items()}, "console_search": search})
    return figures


def main():
    hello_bin = sys.argv[1]
    static_bin = sys.argv[2]
    costs = sys.argv[3]
    expired_bin = sys.argv[4]
    scale_count = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    # The release binary of an earlier commit, to measure beside this one.
    before_bin = sys.argv[6] if len(sys.argv) > 6 and sys.argv[6] else None
    work = tempfile.mkdtemp(prefix="kagi-bench-")
    results = {}
    try:
        # The page benchmark asks for the CAPTCHA page as fast as it can:
        # the per-client limit on drawing CAPTCHAs is lifted for it.
        pages_config = os.path.join(work, "pages.toml")
        with open(pages_config, "w") as f:
            f.write("[rate_limit]\ncaptcha = { burst = 1000000, refill_secs = 1 }\n")
        kagi, m = start([KAGI, "demo", "--listen", "127.0.0.1:0", "--data-dir",
                         os.path.join(work, "demo"), "--config", pages_config],
                        r"ready in (\d+) ms on http://(\S+)")
        addr = m.group(2)
        time.sleep(0.5)
        results["rss_idle_kib"] = rss_kib(kagi.pid)
        # A live kaigo flow waiting for its code: the OTP page's cookie.
        b = Browser(addr)
        b.request("GET", "/kaigo/recovery/auth")
        status, location, _ = b.request("POST", "/kaigo/recovery/auth",
                                        [("office", "2711111111"), ("email", "office-osaka@example.jp")])
        assert status == 303 and location == "/kaigo/recovery/otp", (status, location)
        cookie = "; ".join(f"{k}={v}" for k, v in b.cookies.items())
        pages = [("kaigo login", "/kaigo/login", ()),
                 ("portal ① (with a new CAPTCHA)", "/portal/reset", ()),
                 ("kaigo OTP page (live flow)", "/kaigo/recovery/otp", (f"Cookie: {cookie}",))]
        results["pages"] = []
        for name, path, headers in pages:
            r = wrk(f"http://{addr}{path}", headers)
            r["name"] = name
            results["pages"].append(r)
        results["rss_after_kib"] = rss_kib(kagi.pid)
        stop(kagi)

        hello, m = start([hello_bin, "127.0.0.1:0"], r"listening on (\S+)")
        r = wrk(f"http://{m.group(1)}/")
        r["name"] = "bare tiny_http hello"
        results["hello"] = r
        stop(hello)

        binary = static_bin or KAGI
        results["binary"] = binary
        results["binary_bytes"] = os.path.getsize(binary)
        starts = []
        for _ in range(5):
            starts.append(first_200_ms(binary, SERVE_CONFIG, work))
        results["first_200_ms"] = sorted(s[0] for s in starts)
        results["rss_empty_idle_kib"] = max(s[1] for s in starts)
        unit = subprocess.run([costs], capture_output=True, text=True, check=True).stdout
        results["argon2id_ms"] = float(re.search(r"argon2id_ms ([\d.]+)", unit).group(1))
        results["flush_ms"] = float(re.search(r"flush_ms ([\d.]+)", unit).group(1))
        results["flows"] = flows(work, 20)
        cores = os.cpu_count() or 1
        results["workers"] = cores
        results["side_by_side"] = {}
        for label, binary in (("before", before_bin), ("after", KAGI)):
            if not binary:
                continue
            results["side_by_side"][label] = {
                "pages": pages_and_rss(binary, work),
                "flood": login_flood(binary, work, "login"),
                "code_flood": login_flood(binary, work, "security-code"),
            }
        if scale_count:
            if before_bin:
                results["scale_before"], data = footprint(work, scale_count, before_bin)
                shutil.rmtree(data, ignore_errors=True)
            results["scale"] = scale(work, scale_count)
            results["sweep"] = sweep(work, expired_bin, scale_count)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results)


def report(r):
    hello = r["hello"]
    print(f"\n## Page throughput (wrk -t1 -c16 -d10s, {time.strftime('%Y-%m-%d')})\n")
    print("| page | requests/s | p50 | p99 | kagi / bare tiny_http |")
    print("|---|---|---|---|---|")
    for p in r["pages"]:
        ratio = p["rps"] / hello["rps"]
        flag = "" if p["non2xx"] == 0 and not p["errors"] else f" ({p['non2xx']} non-2xx, {p['errors']})"
        print(f"| {p['name']} | {p['rps']:,.0f}{flag} | {p['p50_ms']:.2f} ms | {p['p99_ms']:.2f} ms | {ratio:.2f} |")
    print(f"| {hello['name']} | {hello['rps']:,.0f} | {hello['p50_ms']:.2f} ms | {hello['p99_ms']:.2f} ms | 1.00 |")
    print("\n## Footprint\n")
    print(f"| what | figure |\n|---|---|")
    print(f"| binary ({os.path.relpath(r['binary'], ROOT)}) | {r['binary_bytes']:,} bytes ({r['binary_bytes'] / 2**20:.1f} MiB) |")
    f = r["first_200_ms"]
    print(f"| exec to first 200, empty database, 5 runs | min {f[0]:.0f} ms, median {f[2]:.0f} ms, max {f[-1]:.0f} ms |")
    print(f"| RSS idle, empty database (serve) | {r['rss_empty_idle_kib'] / 1024:.1f} MiB |")
    print(f"| RSS idle, demo | {r['rss_idle_kib'] / 1024:.1f} MiB |")
    print(f"| RSS after the page benchmark, demo | {r['rss_after_kib'] / 1024:.1f} MiB |")
    f = r["flows"]
    print(f"\n## Whole flows (20 per site, one after another)\n")
    print(f"One argon2id hash (19 MiB, t=2, p=1): {r['argon2id_ms']:.1f} ms; one flushed sled write: {r['flush_ms']:.2f} ms (benches/costs.rs, same run).\n")
    print(f"| site | flows/s |\n|---|---|")
    for site in ("kaigo", "portal"):
        print(f"| {site} | {f[site]['flows_per_s']:.2f} |")
    unit = r["argon2id_ms"] + r["flush_ms"]
    for site in ("kaigo", "portal"):
        # Every request of the flow; the wait for the mail is the mail
        # thread's delay, not work of the flow.
        work_steps = [k for k in f["steps"] if k.startswith(site) and "wait" not in k]
        total = sum(f["steps"][k]["p50_ms"] for k in work_steps)
        print(f"\n{site}: its timed requests' p50s sum to {total:.1f} ms = {total / unit:.2f} × (argon2id + flush)")
    print("\n| step | p50 | p99 |\n|---|---|---|")
    for name, v in f["steps"].items():
        print(f"| {name} | {v['p50_ms']:.1f} ms | {v['p99_ms']:.1f} ms |")
    sbs = r["side_by_side"]
    hash_ms = r["argon2id_ms"]
    print(f"\n## Login floods ({r['workers']} cores; one argon2id hash {hash_ms:.1f} ms)\n")
    print("64 clients from 127.0.0.2–127.0.0.65 post wrong passwords for 10 s (limits lifted); one more "
          "fetches the login page every 20 ms; after 2 s one person recovers a kaigo login, waiting out any 503.\n")
    print("| binary | flood | page p50 | page p99 | page max | logins checked/s | refused (503)/s | "
          "checked ÷ (workers ÷ hash) | cores kagi used (its hashing threads) | "
          "checked ÷ (hashing cores ÷ hash) | the person's recovery | minor faults per checked login | RSS after |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, v in sbs.items():
        for key, name in (("flood", "login"), ("code_flood", "security-code form")):
            fl = v[key]
            ideal = r["workers"] / (hash_ms / 1000)
            honest = f"{fl['honest_s']:.1f} s ({fl['honest_busy']} × 503)" if fl["honest_s"] is not None else "—"
            # Before the pool the request thread hashed: no hashing threads.
            hashing = (f"{fl['checked_per_s'] / (fl['hash_cores'] / (hash_ms / 1000)):.2f}"
                       if fl["hash_cores"] > 0.01 else "—")
            print(f"| {label} | {name} | {fl['p50_ms']:.1f} ms | {fl['p99_ms']:.1f} ms | {fl['max_ms']:.0f} ms | "
                  f"{fl['checked_per_s']:.1f} | {fl['refused_per_s']:.1f} | {fl['checked_per_s'] / ideal:.2f} | "
                  f"{fl['kagi_cores']:.2f} ({fl['hash_cores']:.2f}) | {hashing} | {honest} | {fl['faults_per_login']:.0f} | {fl['rss_after_kib'] / 1024:.1f} MiB |")
    print("\n| binary | kaigo login page, requests/s | p50 | p99 | RSS idle | RSS after wrk |\n|---|---|---|---|---|---|")
    for label, v in sbs.items():
        p = v["pages"]
        print(f"| {label} | {p['rps']:,.0f} | {p['p50_ms']:.2f} ms | {p['p99_ms']:.2f} ms | "
              f"{p['rss_idle_kib'] / 1024:.1f} MiB | {p['rss_after_kib'] / 1024:.1f} MiB |")
    if "scale" in r:
        sc = r["scale"]
        empty_p99 = r["pages"][0]["p99_ms"]
        print(f"\n## Scale: {sc['count']:,} imported accounts\n")
        print("| what | figure |\n|---|---|")
        print(f"| import (`kagi import`) | {sc['import_s']:.1f} s, peak RSS {sc['import_peak_kib'] / 1024:.0f} MiB |")
        print(f"| database on disk | {sc['db_bytes'] / 2**20:.0f} MiB |")
        print(f"| exec to first 200, 3 runs | {', '.join(f'{x:.0f}' for x in sc['first_200_ms'])} ms |")
        print(f"| RSS idle | {sc['rss_idle_kib'] / 1024:.1f} MiB |")
        if "scale_before" in r:
            b = r["scale_before"]
            print(f"| the same with the before binary | import {b['import_s']:.1f} s, peak RSS "
                  f"{b['import_peak_kib'] / 1024:.0f} MiB; {b['db_bytes'] / 2**20:.0f} MiB on disk; "
                  f"RSS idle {b['rss_idle_kib'] / 1024:.1f} MiB |")
        lp = sc["login_page"]
        print(f"| kaigo login page | {lp['rps']:,.0f} requests/s, p99 {lp['p99_ms']:.2f} ms ({lp['p99_ms'] / empty_p99:.2f} × the empty database's) |")
        print("\n| step, 1,000,000 accounts | p50 | p99 | p99 ÷ demo database's |\n|---|---|---|---|")
        for name, v in sc["steps"].items():
            base = f["steps"].get(name)
            ratio = f"{v['p99_ms'] / base['p99_ms']:.2f}" if base else "—"
            print(f"| {name} | {v['p50_ms']:.1f} ms | {v['p99_ms']:.1f} ms | {ratio} |")
        search = sc["console_search"]
        print("\nThe console's account search (`GET /admin?q=…`), logged in as an operator: 200 requests of each "
              "kind from one client, one after another, the kinds taking turns; each prefix drawn at random from "
              "the imported accounts.\n")
        print(f"| search, {sc['count']:,} accounts | e.g. | accounts matched | p50 | p99 |\n|---|---|---|---|---|")
        for name, v in search.items():
            low, high = v["matches"]
            matched = f"{low:,}" if low == high else f"{low:,}–{high:,}"
            flag = f" ({v['wrong_rows']} pages with other rows than that)" if v["wrong_rows"] else ""
            example = f"`{v['example']}`" if v["example"] else "—"
            print(f"| {name} | {example} | {matched}{flag} | {v['p50_ms']:.1f} ms | {v['p99_ms']:.1f} ms |")
        sw = r["sweep"]
        if sw["swept"]:
            print(f"\n{sw['count']:,} expired flows: the sweeper removed {sw['swept'][0]:,} in {sw['swept'][1]:,} ms; "
                  f"a page every 5 ms meanwhile ({sw['pages']} pages): p99 {sw['p99_ms']:.1f} ms, longest {sw['max_ms']:.1f} ms. "
                  f"The same loop on an empty database, nothing to sweep ({sw['base_pages']} pages): "
                  f"p99 {sw['base_p99_ms']:.1f} ms, longest {sw['base_max_ms']:.1f} ms.")
        else:
            print(f"\n{sw['count']:,} expired flows: the sweep did not finish within 10 minutes.")
    print("\n" + json.dumps(r))


if __name__ == "__main__":
    main()
