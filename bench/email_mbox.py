"""Messages per second from a generated mbox, and the memory the reader holds.

    .venv/bin/python -m bench.email_mbox [--messages 100000] [--scan]

Writes an mbox of realistic mails (plain, quoted-printable, HTML alternatives, forwarded mails,
.env and .json attachments, a PNG) into a temporary directory, then reads it with
connectors.email.read_archive. `--scan` also runs the detector over every text when the
detection package is installed. Peak memory is the process's maximum resident set size, so a
reader that loaded the file whole would show it.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from connectors.email import read_archive
from tests.email.messages import fake_key


def _mail(number: int, rng: random.Random) -> bytes:
    kind = number % 6
    key = fake_key(number) if number % 100 == 0 else "no key here"
    head = (
        f"From: person{number % 500}@corp.example\r\n"
        f"To: team{number % 40}@corp.example, vendor{number % 7}@partner.test\r\n"
        f"Subject: weekly note {number}\r\n"
        f"Date: Tue, 03 Nov 2026 09:{number % 60:02d}:00 +0000\r\n"
        f"Message-ID: <bench-{number}@corp.example>\r\nMIME-Version: 1.0\r\n"
    )
    prose = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(40, 250)))
    if kind == 0:
        body = f"Content-Type: text/plain; charset=utf-8\r\n\r\n{prose}\r\n{key}\r\n"
    elif kind == 1:
        wrapped = "=\r\n".join(prose[i : i + 72] for i in range(0, len(prose), 72))
        body = (
            "Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: quoted-printable\r\n\r\n{wrapped}\r\n{key}\r\n"
        )
    elif kind == 2:
        body = (
            'Content-Type: multipart/alternative; boundary="a"\r\n\r\n'
            f"--a\r\nContent-Type: text/plain\r\n\r\n{prose}\r\n"
            f"--a\r\nContent-Type: text/html\r\n\r\n<p>{prose}</p><p>{key}</p>\r\n--a--\r\n"
        )
    elif kind == 3:
        env = base64.b64encode(f"DEBUG=1\nAPI_KEY={key}\n".encode()).decode()
        body = (
            'Content-Type: multipart/mixed; boundary="m"\r\n\r\n'
            f"--m\r\nContent-Type: text/plain\r\n\r\n{prose}\r\n"
            "--m\r\nContent-Type: application/octet-stream\r\n"
            'Content-Disposition: attachment; filename=".env"\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n{env}\r\n--m--\r\n"
        )
    elif kind == 4:
        body = (
            'Content-Type: multipart/mixed; boundary="f"\r\n\r\n'
            "--f\r\nContent-Type: text/plain\r\n\r\nforwarding\r\n"
            "--f\r\nContent-Type: message/rfc822\r\n\r\n"
            f"From: a@partner.test\r\nSubject: inner\r\n\r\n{prose}\r\n{key}\r\n--f--\r\n"
        )
    else:
        png = base64.b64encode(rng.randbytes(3000)).decode()
        png = "\r\n".join(png[i : i + 76] for i in range(0, len(png), 76))
        body = (
            'Content-Type: multipart/mixed; boundary="p"\r\n\r\n'
            f"--p\r\nContent-Type: text/plain\r\n\r\n{prose}\r\n{key}\r\n"
            "--p\r\nContent-Type: image/png\r\n"
            'Content-Disposition: attachment; filename="x.png"\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n{png}\r\n--p--\r\n"
        )
    return (head + body).encode()


_WORDS = [
    "the",
    "deploy",
    "is",
    "done",
    "please",
    "rotate",
    "staging",
    "token",
    "config",
    "meeting",
    "notes",
    "vendor",
    "access",
    "release",
    "build",
    "failed",
    "retry",
    "dashboard",
    "metrics",
    "invoice",
    "contract",
    "review",
    "approved",
]


def write_mbox(path: Path, messages: int) -> None:
    rng = random.Random(7)
    with path.open("wb") as handle:
        for number in range(messages):
            handle.write(b"From bench@corp.example Tue Nov  3 09:15:00 2026\n")
            handle.write(_mail(number, rng).replace(b"\r\n", b"\n"))
            handle.write(b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--scan", action="store_true", help="also run the detector")
    args = parser.parse_args()
    detector = _detector() if args.scan else None
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.mbox"
        started = time.perf_counter()
        write_mbox(path, args.messages)
        size = path.stat().st_size
        took = time.perf_counter() - started
        print(f"wrote {args.messages} mails, {size / 1e6:.1f} MB in {took:.1f} s")
        rss_before = _max_rss_mb()
        count = chars = found = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        for document in read_archive(path, company_domains=("corp.example",)):
            count += 1
            chars += len(document.text)
            if detector is not None:
                found += len(detector.scan(document.text))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(
        f"read {count} mails in {elapsed:.1f} s: {count / elapsed:,.0f} mails/s, "
        f"{size / 1e6 / elapsed:.1f} MB/s, {chars / 1e6:.0f} M chars of text; "
        f"CPU {cpu:.1f} s: {count / cpu:,.0f} mails per CPU second"
    )
    if detector is not None:
        print(f"detector matches: {found}")
    peak = _max_rss_mb()
    print(f"max RSS {peak:.0f} MB (before reading {rss_before:.0f} MB); mbox {size / 1e6:.0f} MB")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")


def _detector():  # type: ignore[no-untyped-def]
    from bot.detection.engine import Detector
    from bot.detection.fingerprint import Fingerprinter

    return Detector.default(Fingerprinter(b"bench-key-0123456789abcdef"))


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
