#!/usr/bin/env python3
"""Login timing after an import: does a wrong password for an account whose
hash another system made (argon2id at 64 MiB, t=3) cost the same as any
password for a name that does not exist, while kagi serves at its default
cost (19 MiB, t=2)? 200 interleaved tries of each against `kagi serve`;
reports the medians and their gap (the aim: under 1 ms). Reports; it does
not pass or fail. Python standard library only.

With --postgres CLUSTER (a URL that scripts/postgres start prints), the
same on PostgreSQL: the import and `serve` use a database made anew on
that cluster, `kagi_login_timing`.

Usage: login-timing.py KAGI [TRIES] [--postgres CLUSTER]"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from kagitest import SERVE_CONFIG, Browser, fresh_database, postgres_store, serve, stop

# "Imported2020x" hashed by argon2id at m=65536, t=3, p=1, as an older
# system would have stored it.
IMPORTED_PHC = "$argon2id$v=19$m=65536,t=3,p=1$a2FnaS1pbXBvcnRlZC0xNg$5IZu9Fmg45I1bvnyBSeVsI1U9rEaGbeX2zFtWcKzRyo"

# Logins unlimited: the measurement makes hundreds from one address.
CONFIG = SERVE_CONFIG + """[rate_limit]
login = { burst = 1000000, refill_secs = 1 }
"""


def attempt(addr, user):
    b = Browser(addr)
    b.request("GET", "/portal/login")
    began = time.perf_counter()
    b.request("POST", "/portal/login", [("user", user), ("password", "Wrong2020x")])
    return (time.perf_counter() - began) * 1000


def measure(kagi, tries=200, cluster=None):
    """Imports the account and times `tries` wrong-password logins of each
    kind, on sled or (given `cluster`) on PostgreSQL; returns the import's
    output and the medians in ms."""
    work = tempfile.mkdtemp(prefix="kagi-timing-")
    try:
        data = os.path.join(work, "db")
        config = os.path.join(work, "kagi.toml")
        text = CONFIG.replace("@DATA@", data)
        if cluster:
            text += postgres_store(fresh_database(cluster, "kagi_login_timing"), os.path.join(work, "kagi.key"))
        with open(config, "w") as f:
            f.write(text)
        accounts = os.path.join(work, "accounts.jsonl")
        with open(accounts, "w") as f:
            f.write(json.dumps({"site": "portal", "user": "imported-user", "email": "i@example.jp",
                                "password_phc": IMPORTED_PHC}) + "\n")
        imported = subprocess.run([kagi, "import", accounts, "--config", config], capture_output=True,
                                  text=True, check=True).stdout.strip()
        proc, addr = serve(kagi, config)
        try:
            for _ in range(5):  # warm-up, not counted
                attempt(addr, "imported-user")
                attempt(addr, "nobody-here")
            known, unknown = [], []
            for _ in range(tries):
                known.append(attempt(addr, "imported-user"))
                unknown.append(attempt(addr, "nobody-here"))
        finally:
            stop(proc)
        k, u = statistics.median(known), statistics.median(unknown)
        return {"engine": "postgres" if cluster else "sled", "tries": tries, "imported": imported,
                "known_ms": k, "unknown_ms": u, "gap_ms": abs(k - u)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    args = argparse.ArgumentParser(description="Login timing after an import.")
    args.add_argument("kagi")
    args.add_argument("tries", nargs="?", type=int, default=200)
    args.add_argument("--postgres", metavar="CLUSTER", help="the URL of a cluster to measure on instead of sled")
    a = args.parse_args()
    r = measure(a.kagi, a.tries, a.postgres)
    print("login-timing: " + r["imported"].replace("\n", "\nlogin-timing: "))
    print(f"login-timing: {r['tries']} interleaved wrong-password logins each, kagi serve at the default cost, on {r['engine']}")
    print(f"login-timing: imported account (64 MiB, t=3): median {r['known_ms']:.2f} ms")
    print(f"login-timing: unknown user name:              median {r['unknown_ms']:.2f} ms")
    print(f"login-timing: gap {r['gap_ms']:.2f} ms (aim: under 1 ms)")


if __name__ == "__main__":
    main()
