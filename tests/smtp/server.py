"""Real SMTP servers for kagi's tests, built on aiosmtpd (PyPI; the
versions of tests/requirements.txt).

Usage: python server.py MODE PORT OUTDIR
MODE: plain | slow | starttls | starttls_auth | smtps | reject_data | silent
(slow: plain, but each DATA waits 1.5 s before it is accepted)
Prints READY once it listens. Every message received is saved as
OUTDIR/<n>.eml (the raw bytes) and OUTDIR/<n>.json (envelope, TLS, AUTH)
before it is accepted; every DATA refused in reject_data mode leaves
OUTDIR/<n>.refused (the raw bytes), every EHLO leaves OUTDIR/<n>.ehlo, and
every connection the silent server takes leaves OUTDIR/<n>.accepted. The
TLS modes first write a test CA and a certificate signed by it to
OUTDIR/certs (ca.pem, server.pem, server.key).

What the tests make happen on purpose is not reported as trouble: a
client that refuses this server's certificate (the test CA is not one it
trusts) ends its TLS handshake, and that is logged as one line saying it
was expected; aiosmtpd's warnings about AUTH without STARTTLS (on a
connection that is TLS from its start) and about its own deprecations are
not shown. Anything else it logs, warnings and errors, still is.
"""
import json
import logging
import os
import signal
import socket
import ssl
import sys
import threading
import time
import uuid
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from certs import make_certs  # noqa: E402  (tests/certs.py, shared with the PostgreSQL tests)

USER, PASSWORD = b"kagi", b"relay-secret"


class Save:
    def __init__(self, outdir):
        self.outdir = outdir

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # One EHLO a session (two with STARTTLS): counts the connections.
        open(os.path.join(self.outdir, uuid.uuid4().hex + ".ehlo"), "w").close()
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        name = os.path.join(self.outdir, uuid.uuid4().hex)
        with open(name + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        with open(name + ".json", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "tls": session.ssl is not None,
                       "authenticated": bool(session.authenticated)}, f)
        os.rename(name + ".eml.tmp", name + ".eml")
        return "250 Message accepted for delivery"


class Slow(Save):
    async def handle_DATA(self, server, session, envelope):
        import asyncio
        await asyncio.sleep(1.5)
        return await super().handle_DATA(server, session, envelope)


class RefuseData(Save):
    async def handle_DATA(self, server, session, envelope):
        with open(os.path.join(self.outdir, uuid.uuid4().hex + ".refused"), "wb") as f:
            f.write(envelope.original_content)
        return "554 5.6.0 Message refused for good"


def authenticator(server, session, envelope, mechanism, auth_data):
    from aiosmtpd.smtp import AuthResult, LoginPassword
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == USER and auth_data.password == PASSWORD)
    # handled=False: aiosmtpd answers the client itself, success or not.
    return AuthResult(success=ok, handled=False)


def tls_context(certdir):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.path.join(certdir, "server.pem"), os.path.join(certdir, "server.key"))
    return ctx


def silent(port, outdir):
    """Accepts connections and never says a word."""
    srv = socket.create_server(("127.0.0.1", port))
    print("READY", flush=True)
    held = []
    while True:
        conn, _ = srv.accept()
        held.append(conn)
        open(os.path.join(outdir, uuid.uuid4().hex + ".accepted"), "w").close()


class Expected(logging.Filter):
    """Lets through what aiosmtpd logs, but for what the tests cause on
    purpose: a refused certificate is one line, said to be expected; the
    warning about AUTH without STARTTLS (the smtps mode is TLS from the
    start) and the one about its own deprecated login_data are dropped."""

    def filter(self, record):
        from aiosmtpd.smtp import TLSSetupException
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, TLSSetupException):
            cause = exc.__cause__ or exc
            print(f"smtp test server: the client refused the TLS handshake ({cause}); "
                  f"expected where it does not trust the test CA", file=sys.stderr)
            return False
        message = record.getMessage()
        return not ("auth_require_tls == False" in message or "login_data is deprecated" in message)


def quiet_expected_noise():
    # aiosmtpd also warns (UserWarning) that AUTH without STARTTLS is
    # unsafe, which smtps is not.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    logging.basicConfig(level=logging.WARNING, format="smtp test server: %(levelname)s %(message)s")
    logging.getLogger("mail.log").addFilter(Expected())


def main():
    mode, port, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.makedirs(outdir, exist_ok=True)
    if mode == "silent":
        return silent(port, outdir)
    quiet_expected_noise()
    certdir = os.path.join(outdir, "certs")
    if mode in ("starttls", "starttls_auth", "smtps"):
        make_certs(certdir)
    from aiosmtpd.controller import Controller
    handler = {"reject_data": RefuseData, "slow": Slow}.get(mode, Save)(outdir)
    options = {}
    if mode in ("starttls", "starttls_auth"):
        options.update(tls_context=tls_context(certdir), require_starttls=True)
    if mode == "smtps":
        options.update(ssl_context=tls_context(certdir), auth_require_tls=False)
    if mode in ("starttls_auth", "smtps"):
        options.update(authenticator=authenticator, auth_required=True)
    controller = Controller(handler, hostname="127.0.0.1", port=port,
                            server_hostname="localhost", **options)
    controller.start()
    print("READY", flush=True)
    try:
        signal.pause()
    finally:
        controller.stop()


def exit_with_parent():
    """Ends this server when the test process that started it is gone,
    even if that process died without killing it."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    exit_with_parent()
    main()
