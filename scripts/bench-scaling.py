#!/usr/bin/env python3
"""kagi on more than one instance (docs/scaling.md), in one run: one
`kagi serve` on sled, one on PostgreSQL, and two on one PostgreSQL
database. On each: browsers (threads) doing whole kaigo and portal
recoveries in turn, each on accounts of its own, and the CPU that kagi,
PostgreSQL and this script used meanwhile; then pages under wrk. Last,
the login timing (login-timing.py) on sled and on PostgreSQL. Reports
figures; it does not pass or fail. Run through `scripts/bench scaling`,
which builds kagi and starts (and stops) the private cluster.

Usage: bench-scaling.py CLUSTER_URL CLUSTER_DIR   (what scripts/postgres
start DIR prints, and that DIR)"""

import collections
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

from bench import KAGI, PHC, Inbox, kaigo_flow, pctl, portal_flow, wrk
from kagitest import (FLOW_CONFIG, SERVE_CONFIG, Browser, cpu_seconds, fresh_database, postgres_store, serve,
                      stop)

# (engine, instances)
SETUPS = (("sled", 1), ("postgres", 1), ("postgres", 2))
# Browsers at once, and how long each such run lasts: one browser is the
# latency of each step without queueing; 4 and 8 load the two cores.
RUNS = ((1, 30), (4, 20), (8, 20))
# Accounts per site: browser i recovers kaigo account i and portal
# account i; the last kaigo account holds the pages' live flow.
ACCOUNTS = 16
PAGE_ACCOUNT = ACCOUNTS - 1


def label(engine, instances):
    return f"{'sled' if engine == 'sled' else 'PostgreSQL'}, {instances} instance{'s' if instances > 1 else ''}"


def kaigo_account(i):
    return {"office": f"13{i:08d}", "email": f"o{i}@example.jp"}


def portal_account(i):
    return {"user": f"user{i}", "email": f"u{i}@example.jp"}


def write_accounts(path):
    with open(path, "w") as f:
        for i in range(ACCOUNTS):
            f.write(json.dumps({"site": "kaigo", "prefecture": "13", "password_phc": PHC,
                                **kaigo_account(i)}) + "\n")
            f.write(json.dumps({"site": "portal", "password_phc": PHC, **portal_account(i)}) + "\n")


class Cpu:
    """CPU used from now on by kagi's processes, by PostgreSQL (its
    postmaster and backends) and by this script (the browsers)."""

    def __init__(self, kagis, postmaster):
        self.kagis, self.postmaster = kagis, postmaster
        self.began, self.at = time.perf_counter(), self.read()

    def read(self):
        own = os.times()
        return {"kagi": sum(cpu_seconds(p.pid) for p in self.kagis),
                "postgres": cpu_seconds(self.postmaster, children=True) if self.postmaster else 0.0,
                "bench": own.user + own.system}

    def cores(self):
        """The cores each used on average since the start."""
        now, elapsed = self.read(), time.perf_counter() - self.began
        return {k: (now[k] - self.at[k]) / elapsed for k in now}


def browse(addrs, inbox, browsers, seconds, cpu_of):
    """`browsers` threads, each doing a kaigo then a portal recovery, again
    and again, until `seconds` have passed; each pair of recoveries goes to
    the next instance. Returns flows per second, per-step latencies and
    the cores used."""
    steps = [{} for _ in range(browsers)]
    done = [collections.Counter() for _ in range(browsers)]
    failed = []
    ready = threading.Barrier(browsers + 1)
    until = [0.0]

    def browser(i):
        ready.wait()
        k = 0
        try:
            while time.perf_counter() < until[0]:
                addr = addrs[(i + k // 2) % len(addrs)]
                n = i * 1000 + k  # a new password each time, within 16 characters
                if k % 2 == 0:
                    kaigo_flow(addr, steps[i], n, 0, inbox=inbox, **kaigo_account(i))
                    done[i]["kaigo"] += 1
                else:
                    portal_flow(addr, steps[i], n, 0, inbox=inbox, **portal_account(i))
                    done[i]["portal"] += 1
                k += 1
        except Exception:  # noqa: BLE001 — reported after the run
            failed.append(f"browser {i}: {traceback.format_exc(limit=-2)}")

    threads = [threading.Thread(target=browser, args=(i,)) for i in range(browsers)]
    for t in threads:
        t.start()
    until[0] = time.perf_counter() + seconds
    cpu = cpu_of()
    ready.wait()
    for t in threads:
        t.join()
    cores = cpu.cores()
    elapsed = time.perf_counter() - cpu.began
    if failed:
        raise SystemExit("bench-scaling: " + "; ".join(failed))
    merged = {}
    for s in steps:
        for name, values in s.items():
            merged.setdefault(name, []).extend(values)
    total = sum(done, collections.Counter())
    return {"browsers": browsers, "seconds": elapsed, "kaigo": total["kaigo"], "portal": total["portal"],
            "flows_per_s": (total["kaigo"] + total["portal"]) / elapsed,
            "steps": {k: {**pctl(v), "n": len(v)} for k, v in merged.items()}, "cores": cores}


def pages(addrs, cpu_of):
    """Three pages under wrk: one that reads no record, one that reads the
    live flow, one that writes a CAPTCHA challenge (and, on PostgreSQL,
    the CAPTCHA rate-limit bucket). Two instances: one wrk each at once,
    8 connections each, as one wrk with 16 against one instance."""
    b = Browser(addrs[0])
    b.request("GET", "/kaigo/recovery/auth")
    st, loc, _ = b.request("POST", "/kaigo/recovery/auth", list(kaigo_account(PAGE_ACCOUNT).items()))
    assert loc == "/kaigo/recovery/otp", (st, loc)
    cookie = "Cookie: " + "; ".join(f"{k}={v}" for k, v in b.cookies.items())
    out = []
    for name, path, headers in (("kaigo login (reads no record)", "/kaigo/login", ()),
                                ("kaigo OTP page (reads the live flow)", "/kaigo/recovery/otp", (cookie,)),
                                ("portal ① (writes a new CAPTCHA)", "/portal/reset", ())):
        cpu = cpu_of()
        if len(addrs) == 1:
            r = wrk(f"http://{addrs[0]}{path}", headers)
            each = [r]
        else:
            each = [None] * len(addrs)

            def one(k):
                each[k] = wrk(f"http://{addrs[k]}{path}", headers, connections=16 // len(addrs))
            threads = [threading.Thread(target=one, args=(k,)) for k in range(len(addrs))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        out.append({"name": name, "rps": sum(r["rps"] for r in each),
                    "p50_ms": max(r["p50_ms"] for r in each), "p99_ms": max(r["p99_ms"] for r in each),
                    "non2xx": sum(r["non2xx"] for r in each), "errors": "; ".join(r["errors"] for r in each if r["errors"]),
                    "cores": cpu.cores()})
    return out


def setup(work, cluster, postmaster, engine, instances, accounts):
    """Starts the setup on a store made anew, runs the browsers and the
    pages on it, and stops it."""
    d = os.path.join(work, f"{engine}-{instances}")
    os.makedirs(d)
    store = ""
    if engine == "postgres":
        url = fresh_database(cluster, f"kagi_bench_{instances}")
        store = postgres_store(url, os.path.join(d, "kagi.key"))
    configs = []
    for k in range(instances):
        path = os.path.join(d, f"kagi-{k}.toml")
        with open(path, "w") as f:
            f.write(SERVE_CONFIG.replace("@DATA@", os.path.join(d, f"data-{k}")) + FLOW_CONFIG + store)
        configs.append(path)
    subprocess.run([KAGI, "import", accounts, "--config", configs[0]], check=True, stdout=subprocess.DEVNULL)
    procs = []
    try:
        for c in configs:
            procs.append(serve(KAGI, c))
        kagis, addrs = [p for p, _ in procs], [a for _, a in procs]
        pg = postmaster if engine == "postgres" else None
        inbox = Inbox(addrs)
        try:
            # One recovery per site on each instance first, not counted:
            # the first write after a start is not what this measures.
            for k, addr in enumerate(addrs):
                kaigo_flow(addr, {}, 900 + k, 0, inbox=inbox, **kaigo_account(0))
                portal_flow(addr, {}, 900 + k, 0, inbox=inbox, **portal_account(0))
            runs = [browse(addrs, inbox, n, seconds, lambda: Cpu(kagis, pg)) for n, seconds in RUNS]
        finally:
            inbox.stop()
        return {"engine": engine, "instances": instances, "label": label(engine, instances), "runs": runs,
                "pages": pages(addrs, lambda: Cpu(kagis, pg))}
    finally:
        for p, _ in procs:
            stop(p)


def main():
    # Stopped from outside (scripts/bench's trap, a terminal closed), the
    # `finally`s still stop the kagi processes this run started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cluster, cluster_dir = sys.argv[1], sys.argv[2]
    with open(os.path.join(cluster_dir, "data", "postmaster.pid")) as f:
        postmaster = int(f.readline())
    login_timing = importlib.import_module("login-timing")
    work = tempfile.mkdtemp(prefix="kagi-bench-scaling-")
    r = {"date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(), "load_before": os.getloadavg()}
    try:
        accounts = os.path.join(work, "accounts.jsonl")
        write_accounts(accounts)
        r["setups"] = [setup(work, cluster, postmaster, e, n, accounts) for e, n in SETUPS]
        r["login_timing"] = [login_timing.measure(KAGI, 200), login_timing.measure(KAGI, 200, cluster)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    r["load_after"] = os.getloadavg()
    report(r)


def report(r):
    load = lambda l: " / ".join(f"{x:.1f}" for x in l)  # noqa: E731
    print(f"\n## Scaling ({r['date']}, {r['cores']} cores; load average {load(r['load_before'])} before, "
          f"{load(r['load_after'])} after)\n")
    print("Browsers (threads of this script, on the same cores) each doing a whole kaigo recovery, then a whole "
          "portal recovery, again and again, each on accounts of its own; with two instances each pair of "
          "recoveries goes to the next instance. Cores: CPU time ÷ wall time of kagi (all instances), of "
          "PostgreSQL (postmaster and backends) and of this script.\n")
    print("| setup | browsers | recoveries/s | kaigo + portal done | cores: kagi / PostgreSQL / browsers |")
    print("|---|---|---|---|---|")
    for s in r["setups"]:
        for run in s["runs"]:
            c = run["cores"]
            print(f"| {s['label']} | {run['browsers']} | {run['flows_per_s']:.2f} | {run['kaigo']} + {run['portal']} "
                  f"in {run['seconds']:.0f} s | {c['kagi']:.2f} / {c['postgres']:.2f} / {c['bench']:.2f} |")
    print("\n### Pages (wrk -t1 -c16 -d10s; two instances: one wrk -c8 at each at once, requests/s summed, "
          "the higher p50 and p99 of the two)\n")
    print("| page | setup | requests/s | p50 | p99 | cores: kagi / PostgreSQL |")
    print("|---|---|---|---|---|---|")
    names = [p["name"] for p in r["setups"][0]["pages"]]
    for i, name in enumerate(names):
        for s in r["setups"]:
            p = s["pages"][i]
            flag = "" if p["non2xx"] == 0 and not p["errors"] else f" ({p['non2xx']} non-2xx, {p['errors']})"
            print(f"| {name} | {s['label']} | {p['rps']:,.0f}{flag} | {p['p50_ms']:.2f} ms | {p['p99_ms']:.2f} ms | "
                  f"{p['cores']['kagi']:.2f} / {p['cores']['postgres']:.2f} |")
    sled, pg = r["setups"][0], r["setups"][1]
    for k, (n, _) in enumerate(RUNS):
        if n not in (1, RUNS[-1][0]):
            continue
        a, b = sled["runs"][k]["steps"], pg["runs"][k]["steps"]
        print(f"\n### Each step on PostgreSQL over sled ({n} browser{'s' if n > 1 else ''}, one instance each)\n")
        print("| step | sled p50 | sled p99 | PostgreSQL p50 | PostgreSQL p99 | added p50 | added p99 | samples (sled, PostgreSQL) |")
        print("|---|---|---|---|---|---|---|---|")
        for name, v in a.items():
            w = b.get(name)
            if not w:
                continue
            print(f"| {name} | {v['p50_ms']:.1f} ms | {v['p99_ms']:.1f} ms | {w['p50_ms']:.1f} ms | {w['p99_ms']:.1f} ms | "
                  f"{w['p50_ms'] - v['p50_ms']:+.1f} ms | {w['p99_ms'] - v['p99_ms']:+.1f} ms | {v['n']}, {w['n']} |")
    print("\n### Login timing after an import (scripts/login-timing.py, kagi serve at the default cost)\n")
    print("| engine | wrong passwords, each kind | imported account (64 MiB, t=3), median | unknown name, median | gap (aim: under 1 ms) |")
    print("|---|---|---|---|---|")
    for t in r["login_timing"]:
        name = "sled" if t["engine"] == "sled" else "PostgreSQL"
        print(f"| {name} | {t['tries']} | {t['known_ms']:.2f} ms | {t['unknown_ms']:.2f} ms | {t['gap_ms']:.2f} ms |")
    print("\n" + json.dumps(r))


if __name__ == "__main__":
    main()
