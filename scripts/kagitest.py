"""What kagi's scripts share: starting and stopping kagi, a browser that
keeps kagi's cookie and CSRF token, and the configurations the scripts
build on. Python standard library only. The scripts run as
`python3 scripts/NAME.py`, so this file's folder is on their path and
they import it as it is: `from kagitest import ...`."""

import http.client
import os
import re
import signal
import subprocess
import urllib.parse


def minor_faults(pid):
    """The page faults a process has taken that needed no disk."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


def thread_times(pid):
    """{thread name: (CPU ns, ns waited for a CPU)} of a process, summed over
    threads of one name with the digits at its end taken as N
    (/proc/PID/task/TID/schedstat)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = re.sub(r"\d+$", "N", f.read().strip())
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                cpu, wait, _ = (int(x) for x in f.read().split())
        except OSError:
            continue
        c, w = out.get(name, (0, 0))
        out[name] = (c + cpu, w + wait)
    return out


def cpu_seconds(pid, children=False):
    """CPU time (user + system) a process has used; with `children`, also
    that of its children, living (by their parent PID) and reaped
    (/proc/PID/stat)."""
    def fields(p):
        with open(f"/proc/{p}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    f = fields(pid)
    total = int(f[11]) + int(f[12])
    if children:
        total += int(f[13]) + int(f[14])
        for other in os.listdir("/proc"):
            if not other.isdigit():
                continue
            try:
                g = fields(other)
            except OSError:
                continue
            if int(g[1]) == pid:
                total += int(g[11]) + int(g[12])
    return total / tick


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start(cmd, pattern, env=None):
    """Starts `cmd`, waits for a stdout line matching `pattern`; returns
    (process, match)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)
    for line in proc.stdout:
        m = re.search(pattern, line)
        if m:
            return proc, m
    raise SystemExit(f"{cmd[0]} did not start")


def serve(kagi, config, stderr=subprocess.DEVNULL):
    """Starts `kagi serve --config CONFIG`; returns (process, address)."""
    proc = subprocess.Popen([kagi, "serve", "--config", config], stdout=subprocess.PIPE,
                            stderr=stderr, text=True)
    for line in proc.stdout:
        m = re.search(r" on http://(\S+)", line)
        if m:
            return proc, m.group(1)
    raise SystemExit("kagi serve did not start: the database did not open")


def seed_demo(kagi, data, config):
    """Puts the demo accounts into `data` with one demo run (serve loads none)."""
    demo, _ = start([kagi, "demo", "--listen", "127.0.0.1:0", "--data-dir", data, "--config", config],
                    r"ready in")
    stop(demo)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def postgres_store(url, key_file):
    """A config's [store] on the PostgreSQL database at `url`; `key_file`
    is the one every instance on that database uses."""
    return f'''[store]
engine = "postgres"
key_file = "{key_file}"
[store.postgres]
url = "{url}"
'''


def fresh_database(cluster, name):
    """Makes database `name` anew (dropped first if there) on the cluster
    whose URL is `cluster` (scripts/postgres start DIR prints it), with
    psql; returns the database's URL."""
    assert re.fullmatch(r"[a-z_][a-z0-9_]*", name), name
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", cluster,
                    "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", "-c", f"CREATE DATABASE {name}"],
                   check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "PGOPTIONS": "-c client_min_messages=warning"})
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(cluster)._replace(path="/" + name))


class Browser:
    """Keeps kagi's cookie and CSRF token, as the tests' client does."""

    def __init__(self, addr, source=None):
        self.host, self.port = addr.rsplit(":", 1)
        self.source = (source, 0) if source else None
        self.cookies = {}
        self.csrf = None

    def request(self, method, path, fields=None):
        conn = http.client.HTTPConnection(self.host, int(self.port), timeout=30,
                                          source_address=self.source)
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if fields is not None:
            if self.csrf:
                fields = [("csrf", self.csrf)] + list(fields)
            body = urllib.parse.urlencode(fields)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie":
                k, v = value.split(";")[0].split("=", 1)
                self.cookies[k] = v
        m = re.search(r'name="csrf" value="([0-9a-f]+)"', text)
        if m:
            self.csrf = m.group(1)
        conn.close()
        return resp.status, resp.getheader("Location"), text


FLOW_CONFIG = """[guard]
send_cooldown_secs = 0
otps_per_day = 1000000
links_per_day = 1000000
[rate_limit]
recovery = { burst = 1000000, refill_secs = 1 }
otp = { burst = 1000000, refill_secs = 1 }
captcha = { burst = 1000000, refill_secs = 1 }
login = { burst = 1000000, refill_secs = 1 }
"""


# `serve` as a lab: the capture transport keeps mail, and /dev/ shows it
# and the CAPTCHA answers. The other scripts build on it.
SERVE_CONFIG = """listen = "127.0.0.1:0"
public_url = "http://127.0.0.1"
data_dir = "@DATA@"
[mail]
transport = "capture"
"""

# Cheap hashing, for scripts that measure everything but the hash.
CHEAP_ARGON2 = """[argon2]
memory_kib = 1024
iterations = 1
"""
