"""Messages per second read from a real Dovecot over IMAP.

    .venv/bin/python -m bench.email_imap [--messages 3000] [--batch 100 500]

Starts its own Dovecot on 127.0.0.1 (tests/email/dovecot.py), appends the mails of
bench/email_mbox.py with IMAP APPEND, then reads the folder with ImapSource from scratch for
each batch size and each transport (plain on loopback and implicit TLS).
"""

from __future__ import annotations

import argparse
import os
import random
import time

from bench.email_mbox import _mail
from connectors.base import Unit
from connectors.email import ImapSource
from tests.email.dovecot import DovecotServer, append, dovecot_missing


class _Settings:
    def __init__(self, server: DovecotServer, user: str, password: str, security: str) -> None:
        self.host = server.host
        self.user = user
        self.password = password
        self.security = security
        self.port = server.tls_port if security == "ssl" else server.port
        self.folders = ("INBOX",)
        self.allow_plain = False
        self.attachment_max_bytes = 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--batch", type=int, nargs="+", default=[100, 500])
    args = parser.parse_args()
    reason = dovecot_missing()
    if reason:
        raise SystemExit(reason)
    server = DovecotServer().start()
    try:
        account = server.add_user()
        client = server.client(account)
        rng = random.Random(7)
        started = time.perf_counter()
        size = 0
        for number in range(args.messages):
            raw = _mail(number, rng)
            size += len(raw)
            append(client, "INBOX", raw)
        elapsed = time.perf_counter() - started
        print(f"appended {args.messages} mails ({size / 1e6:.1f} MB) in {elapsed:.1f} s")
        client.logout()
        for security in ("plain", "ssl"):
            for batch in args.batch:
                settings = _Settings(server, account.user, account.password, security)
                source = ImapSource(settings, ssl_context=server.tls_context(), batch_size=batch)
                started, cpu_started = time.perf_counter(), time.process_time()
                count = sum(1 for _ in source.documents(Unit("INBOX"), None))
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
                source.close()
                print(
                    f"{security:5} batch {batch:4}: {count} mails in {elapsed:.2f} s, "
                    f"{count / elapsed:,.0f} mails/s ({count / cpu:,.0f} per CPU second of ours)"
                )
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
