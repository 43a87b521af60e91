#!/usr/bin/env python3
"""Where the slow requests on a large database spend their time. Imports
ACCOUNTS synthetic accounts, starts `serve` on them, and runs 20 kaigo and
20 portal recoveries twice: at once after the start, and again once the
start-up work in the background is done. For each round it reports the
client's p50/p99 per step, kagi's own time for the same requests (from its
log: from the request thread taking the request to the answer written),
and for every kagi thread the CPU it used and the time it waited for a
CPU (/proc/PID/task/TID/schedstat), the off-CPU share that a busy core
causes.

Usage: stalls.py KAGI [ACCOUNTS]   (default 1,000,000)"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from bench import PHC, kaigo_flow, portal_flow, pctl
from kagitest import FLOW_CONFIG, SERVE_CONFIG, serve, stop, thread_times as threads


def logged(log_path, since):
    """kagi's own times per `METHOD PATH` from its log, after byte `since`."""
    times = {}
    with open(log_path) as f:
        f.seek(since)
        for line in f:
            m = re.match(r"kagi: (GET|POST) (\S+) \d+ ([\d.]+) ms", line)
            if m:
                times.setdefault(f"{m.group(1)} {m.group(2)}", []).append(float(m.group(3)))
    return times


def round_of_flows(addr, pid, log_path, mails, tag):
    before = threads(pid)
    since = os.path.getsize(log_path)
    began = time.perf_counter()
    steps = {}
    for i in range(20):
        mails = kaigo_flow(addr, steps, i, mails, office=f"13{i:08d}", email=f"o{i}@example.jp")
    for i in range(20):
        mails = portal_flow(addr, steps, i, mails, user=f"user{i}", email=f"u{i}@example.jp")
    wall = time.perf_counter() - began
    after = threads(pid)
    time.sleep(0.2)
    own = logged(log_path, since)
    print(f"\n### {tag} ({wall:.1f} s)\n")
    print("| step (client) | p50 | p99 |\n|---|---|---|")
    for name, v in steps.items():
        p = pctl(v)
        print(f"| {name} | {p['p50_ms']:.1f} ms | {p['p99_ms']:.1f} ms |")
    print("\n| request (kagi's log) | n | p50 | p99 |\n|---|---|---|---|")
    for name, v in sorted(own.items()):
        if name.startswith("POST"):
            p = pctl(v)
            print(f"| {name} | {len(v)} | {p['p50_ms']:.1f} ms | {p['p99_ms']:.1f} ms |")
    print("\n| thread | CPU | waited for a CPU |\n|---|---|---|")
    for name in sorted(after, key=lambda n: -(after[n][0] - before.get(n, (0, 0))[0])):
        cpu = (after[name][0] - before.get(name, (0, 0))[0]) / 1e6
        wait = (after[name][1] - before.get(name, (0, 0))[1]) / 1e6
        if cpu >= 1 or wait >= 1:
            print(f"| {name} | {cpu:.0f} ms | {wait:.0f} ms |")
    return mails


def main():
    kagi = os.path.abspath(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    work = tempfile.mkdtemp(prefix="kagi-stalls-")
    try:
        lines = os.path.join(work, "accounts.jsonl")
        with open(lines, "w") as f:
            for i in range(count // 2):
                f.write(f'{{"site":"kaigo","office":"13{i:08d}","prefecture":"13","email":"o{i}@example.jp","password_phc":"{PHC}"}}\n')
                f.write(f'{{"site":"portal","user":"user{i}","email":"u{i}@example.jp","password_phc":"{PHC}"}}\n')
        data = os.path.join(work, "data")
        subprocess.run([kagi, "import", lines, "--data-dir", data], check=True, stdout=subprocess.DEVNULL)
        os.remove(lines)
        config = os.path.join(work, "serve.toml")
        with open(config, "w") as f:
            f.write(SERVE_CONFIG.replace("@DATA@", data) + FLOW_CONFIG)
        log_path = os.path.join(work, "kagi.log")
        log = open(log_path, "w")
        proc, addr = serve(kagi, config, stderr=log)
        print(f"## {count:,} accounts, {time.strftime('%Y-%m-%d %H:%M')}")
        mails = kaigo_flow(addr, {}, 999, 0, office="1300000999", email="o999@example.jp")
        mails = portal_flow(addr, {}, 999, mails, user="user999", email="u999@example.jp")
        mails = round_of_flows(addr, proc.pid, log_path, mails, "at once after the start")
        # Until kagi's threads have been quiet for 5 s: the start-up work
        # in the background is done.
        quiet_since, last = time.perf_counter(), threads(proc.pid)
        deadline = time.perf_counter() + 300
        while time.perf_counter() - quiet_since < 5 and time.perf_counter() < deadline:
            time.sleep(1)
            now = threads(proc.pid)
            busy = sum(now[n][0] - last.get(n, (0, 0))[0] for n in now) / 1e6
            if busy > 50:
                quiet_since = time.perf_counter()
            last = now
        round_of_flows(addr, proc.pid, log_path, mails, "once the background is quiet")
        stop(proc)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
