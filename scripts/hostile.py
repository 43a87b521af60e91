#!/usr/bin/env python3
"""Hostile clients against kagi serve: 500 slowloris connections (a header
byte a second), 500 idle keep-alive connections, 1,000 requests with
oversized headers or bodies, and garbage bytes. During each, a normal
client fetches the login page every 10 ms; reports its p99, and the
server's threads and open descriptors before and after. Exits 1 if a
page p99 is 100 ms or more, or threads or descriptors leak.

Usage: hostile.py KAGI [SECONDS_PER_ATTACK]"""

import os
import random
import re
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import SERVE_CONFIG, Browser, serve, stop  # noqa: E402



def counts(pid):
    threads = int(re.search(r"Threads:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1))
    return threads, len(os.listdir(f"/proc/{pid}/fd"))


def probe(addr, until):
    """The normal client: the login page every 10 ms; its latencies."""
    waits = []
    while time.time() < until:
        began = time.perf_counter()
        try:
            status, _, _ = Browser(addr).request("GET", "/kaigo/login")
            ok = status == 200
        except OSError:
            ok = False
        waits.append((time.perf_counter() - began) * 1000 if ok else float("inf"))
        time.sleep(0.01)
    return waits


def connect(host, port):
    s = socket.socket()
    s.settimeout(5)
    s.connect((host, port))
    return s


def slowloris(host, port, until, n=500):
    socks = []
    for _ in range(n):
        try:
            s = connect(host, port)
            s.sendall(b"GET /kaigo/login HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except OSError:
            pass
    while time.time() < until:
        for s in list(socks):
            try:
                s.sendall(b"X")
            except OSError:
                socks.remove(s)
        time.sleep(1)
    for s in socks:
        s.close()


def idle(host, port, until, n=500):
    socks = []
    for _ in range(n):
        try:
            s = connect(host, port)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        except OSError:
            pass
    while time.time() < until:
        time.sleep(0.2)
    for s in socks:
        s.close()


def oversized(host, port, until, n=1000):
    sent = 0
    while sent < n and time.time() < until:
        try:
            s = connect(host, port)
            if sent % 2:
                s.sendall(b"GET /kaigo/login HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n")
            else:
                s.sendall(b"POST /kaigo/login HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n" + b"a" * 65536)
            s.recv(100)
            s.close()
        except OSError:
            pass
        sent += 1
    while time.time() < until:
        time.sleep(0.1)


def garbage(host, port, until):
    while time.time() < until:
        try:
            s = connect(host, port)
            s.sendall(os.urandom(random.randint(1, 4096)))
            s.close()
        except OSError:
            pass
        time.sleep(0.002)


def main():
    kagi = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10
    work = tempfile.mkdtemp(prefix="kagi-hostile-")
    config = os.path.join(work, "kagi.toml")
    with open(config, "w") as f:
        f.write(SERVE_CONFIG.replace("@DATA@", os.path.join(work, "db")))
    proc, addr = serve(kagi, config)
    host, port = addr.rsplit(":", 1)
    port = int(port)
    failures = []
    try:
        probe(addr, time.time() + 1)
        before = counts(proc.pid)
        print(f"hostile: before: {before[0]} threads, {before[1]} open descriptors")
        for name, attack in (("500 slowloris connections", slowloris), ("500 idle keep-alive connections", idle),
                             ("1,000 oversized requests", oversized), ("garbage bytes", garbage)):
            until = time.time() + seconds
            t = threading.Thread(target=attack, args=(host, port, until))
            t.start()
            time.sleep(min(2, seconds / 4))
            waits = sorted(probe(addr, until))
            t.join()
            p99 = waits[int(len(waits) * 0.99)]
            during = counts(proc.pid)
            print(f"hostile: {name}: {len(waits)} pages, p99 {p99:.1f} ms, longest {waits[-1]:.1f} ms "
                  f"({during[0]} threads, {during[1]} descriptors at the end)")
            if p99 >= 100:
                failures.append(f"{name}: page p99 {p99:.1f} ms")
        # Back to normal: connections closed, idle ones timed out, and
        # tiny_http's idle workers gone (they leave after 5 s without work).
        after_waits = sorted(probe(addr, time.time() + 2))
        settle = time.time() + 20
        after = counts(proc.pid)
        while (after[0] > before[0] + 4 or after[1] > before[1] + 4) and time.time() < settle:
            time.sleep(0.5)
            after = counts(proc.pid)
        print(f"hostile: after: {after[0]} threads, {after[1]} open descriptors; "
              f"pages p99 {after_waits[int(len(after_waits) * 0.99)]:.1f} ms")
        if after[0] > before[0] + 4 or after[1] > before[1] + 4:
            failures.append(f"leak: {before} before, {after} after (threads, descriptors)")
    finally:
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)
    for f in failures:
        print("  FAILED:", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
