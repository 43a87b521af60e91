#!/usr/bin/env python3
"""kill -9, over and over: kagi serve runs kaigo and portal recoveries
side by side, is killed with SIGKILL at a random moment or right after a
success page (or runs one recovery alone and is killed by its client the
instant the success page arrives), and restarted.
After each restart: the database opens, every password change whose
success page the client received logs in with its password, and every
code or link whose "sent" page the client received is in the mailbox or
still queued. Prints runs, acknowledged changes and losses (must be 0);
exits 1 on any loss. Python standard library only.

Usage: crash-test.py KAGI RUNS"""

import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from kagitest import CHEAP_ARGON2, FLOW_CONFIG, SERVE_CONFIG, Browser, seed_demo, serve, stop

# Per-account and per-address limits lifted: the loops recover the same
# accounts again and again.
CONFIG = SERVE_CONFIG + CHEAP_ARGON2 + FLOW_CONFIG


class Ledger:
    """What the clients were told, per account."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}       # account -> password whose success page arrived
        self.in_flight = {}   # account -> password posted, answer not (yet) seen
        self.sent = 0         # "code/link sent" pages received for real addresses
        self.changes = 0
        self.acknowledged = threading.Event()  # set at each success page
        self.kill = None      # if set, called by a client the instant its success page arrives

    def acknowledge(self, account, password):
        """A success page arrived for `password`; True if the server is
        now to die (a lone run's kill, by the client itself)."""
        with self.lock:
            self.acked[account] = password
            self.in_flight.pop(account, None)
            self.changes += 1
            self.acknowledged.set()
        if self.kill:
            self.kill()
            return True
        return False


def mail_count(b):
    _, _, text = b.request("GET", "/dev/mail.json")
    return len(json.loads(text))


def kaigo_loop(addr, ledger, stop_at, n):
    i = 0
    while time.time() < stop_at:
        b = Browser(addr)
        b.request("GET", "/kaigo/recovery/auth")
        before = mail_count(b)
        _, loc, _ = b.request("POST", "/kaigo/recovery/auth",
                              [("office", "2711111111"), ("email", "office-osaka@example.jp")])
        if loc != "/kaigo/recovery/otp":
            return
        with ledger.lock:
            ledger.sent += 1
        mail = None
        for _ in range(500):
            _, _, text = b.request("GET", "/dev/mail.json")
            mails = json.loads(text)
            if len(mails) > before and "[ワンタイムパスワード]" in mails[0]["body"]:
                mail = mails[0]
                break
            time.sleep(0.005)
        if mail is None:
            return
        code = re.search(r"\[ワンタイムパスワード\]\r?\n(\d{6})", mail["body"]).group(1)
        b.request("GET", "/kaigo/recovery/otp")
        _, loc, _ = b.request("POST", "/kaigo/recovery/otp", [("otp", code)])
        if loc != "/kaigo/recovery/reset":
            continue
        b.request("GET", "/kaigo/recovery/reset")
        pw = f"crash{n}k{i}x"
        i += 1
        with ledger.lock:
            ledger.in_flight["KJ272711111111"] = pw
        _, loc, _ = b.request("POST", "/kaigo/recovery/reset", [("password", pw), ("password_confirm", pw)])
        if loc == "/kaigo/recovery/done":
            if ledger.acknowledge("KJ272711111111", pw):
                return


def portal_loop(addr, ledger, stop_at, n):
    i = 0
    while time.time() < stop_at:
        b = Browser(addr)
        _, _, page = b.request("GET", "/portal/reset")
        cid = re.search(r'name="captcha_id" value="([0-9a-f]+)"', page).group(1)
        _, _, listing = b.request("GET", "/dev/captcha.json")
        answer = next(c["answer"] for c in json.loads(listing) if c["id"] == cid)
        b.request("POST", "/portal/reset", [("captcha_id", cid), ("user", "demo-user"),
                                            ("captcha", answer), ("action", "next")])
        b.request("GET", "/portal/reset/verify")
        _, loc, _ = b.request("POST", "/portal/reset/verify", [("email", "demo-user@example.jp")])
        if loc != "/portal/reset/sent":
            return
        with ledger.lock:
            ledger.sent += 1
        token = None
        for _ in range(500):
            _, _, text = b.request("GET", "/dev/mail.json")
            for m in json.loads(text):
                t = re.search(r"token=([0-9a-f]{64})", m["body"])
                if t and m["to"] == "demo-user@example.jp" and "パスワード変更用URL" in m["subject"]:
                    token = t.group(1)
                    break
            if token:
                break
            time.sleep(0.005)
        if token is None:
            return
        b.request("GET", f"/portal/passwordreset?token={token}")
        pw = f"Crash{n}p{i}x"
        i += 1
        with ledger.lock:
            ledger.in_flight["demo-user"] = pw
        _, loc, _ = b.request("POST", "/portal/passwordreset",
                              [("token", token), ("password", pw), ("password_confirm", pw)])
        if loc == "/portal/passwordreset/done":
            if ledger.acknowledge("demo-user", pw):
                return


def until_killed(loop, *args):
    """Runs a client loop; the kill ends it with a connection error."""
    try:
        loop(*args)
    except (OSError, http.client.HTTPException):
        pass


class CodeMails:
    """Counts the captured mails that carry a code or a reset link, reading
    only what arrived since the last count, a page at a time."""

    SUBJECTS = ("ワンタイムパスワード発行通知", "パスワード変更用URL")

    def __init__(self):
        self.after = 0
        self.count = 0

    def update(self, addr):
        b = Browser(addr)
        while True:
            _, _, text = b.request("GET", f"/dev/mail.json?after={self.after}")
            page = json.loads(text)
            if not page:
                return self.count
            self.count += sum(1 for m in page if any(s in m["subject"] for s in self.SUBJECTS))
            self.after = page[-1]["id"]


def logs_in(addr, account, password):
    b = Browser(addr)
    if account.startswith("KJ"):
        b.request("GET", "/kaigo/login")
        _, loc, _ = b.request("POST", "/kaigo/login", [("user_id", account), ("password", password)])
        return loc in ("/kaigo/menu", "/kaigo/login/code")
    b.request("GET", "/portal/login")
    _, loc, _ = b.request("POST", "/portal/login", [("user", account), ("password", password)])
    return loc == "/portal/home"


def main():
    kagi, runs = sys.argv[1], int(sys.argv[2])
    work = tempfile.mkdtemp(prefix="kagi-crash-")
    data = os.path.join(work, "db")
    config = os.path.join(work, "kagi.toml")
    with open(config, "w") as f:
        f.write(CONFIG.replace("@DATA@", data))
    # The demo accounts, put there by one demo run on the same database.
    seed_demo(kagi, data, config)
    ledger = Ledger()
    code_mails = CodeMails()
    losses = []
    try:
        for n in range(runs):
            proc, addr = serve(kagi, config)
            # After every restart: what the clients were told still holds.
            for account, pw in ledger.acked.items():
                flying = ledger.in_flight.get(account)
                if not logs_in(addr, account, pw) and not (flying and logs_in(addr, account, flying)):
                    losses.append(f"run {n}: {account} lost its acknowledged password")
            for account, flying in list(ledger.in_flight.items()):
                if logs_in(addr, account, flying):
                    ledger.acked[account] = flying
                ledger.in_flight.pop(account, None)
            # Every code or link reported sent is in the mailbox (a mail still
            # queued at the kill is captured within a moment of the restart).
            arrived = code_mails.update(addr)
            deadline = time.time() + 3
            while arrived < ledger.sent and time.time() < deadline:
                time.sleep(0.1)
                arrived = code_mails.update(addr)
            if arrived < ledger.sent:
                losses.append(f"run {n}: {ledger.sent} codes or links reported sent, {arrived} arrived")
            stop_at = time.time() + 5
            kind = n % 3
            loops = (kaigo_loop, portal_loop)
            if kind == 2:
                # One recovery alone, killed by its client the instant the
                # success page arrives: no other request's flush and (most
                # likely) no periodic flush of sled's in between, so a
                # change that was not flushed before its page is lost here.
                loops = (loops[n // 3 % 2],)
                ledger.kill = lambda: proc.send_signal(signal.SIGKILL)
            threads = [threading.Thread(target=until_killed, args=(loop, addr, ledger, stop_at, n), daemon=True)
                       for loop in loops]
            ledger.acknowledged.clear()
            for t in threads:
                t.start()
            if kind == 0:
                # A random moment…
                time.sleep(random.uniform(0.2, 2.0))
            else:
                # …or the moment a success page has just been received: what
                # was not on disk before the page was sent is lost here.
                ledger.acknowledged.wait(timeout=3)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            ledger.kill = None
            for t in threads:
                t.join(timeout=10)
        proc, addr = serve(kagi, config)
        for account, pw in ledger.acked.items():
            flying = ledger.in_flight.get(account)
            if not logs_in(addr, account, pw) and not (flying and logs_in(addr, account, flying)):
                losses.append(f"final: {account} lost its acknowledged password")
        stop(proc)
        audit = subprocess.run([kagi, "audit", "verify", "--data-dir", data], capture_output=True, text=True)
        if audit.returncode != 0:
            losses.append("the audit chain is broken: " + audit.stderr.strip())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"crash-test: {runs} runs killed with SIGKILL, {ledger.changes} acknowledged password changes, "
          f"{ledger.sent} codes and links reported sent, {len(losses)} losses")
    for loss in losses:
        print("  LOSS:", loss)
    sys.exit(1 if losses else 0)


if __name__ == "__main__":
    main()
