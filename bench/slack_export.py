"""Messages per second reading a generated Slack workspace export, and the memory it holds.

    .venv/bin/python -m bench.slack_export [--messages 1000000] [--scan] [--folder]

Writes an export zip (users.json, channels.json, groups.json; 100 channels, one JSON file per
channel per day, threads, edits, file entries with `?t=` links, one message in 500 with a fake
key) into a temporary directory, then reads it with connectors.slack.read_archive. `--scan`
also runs the detector over every document. Peak memory is the process's maximum resident set
size (measured after generation, which writes day by day), so a reader that loaded the export
whole would show it.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
import zipfile
from pathlib import Path

from bot.detection.fakes import fake_secret
from connectors.slack import read_archive

CHANNELS = 100
PER_DAY = 100
WORDS = [
    "deploy",
    "staging",
    "review",
    "the",
    "config",
    "before",
    "we",
    "ship",
    "it",
    "to",
    "prod",
    "tomorrow",
    "please",
]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(path: Path, messages: int) -> None:
    users = [
        {"id": f"U{i:08d}", "name": f"user{i}", "profile": {"real_name": f"User {i}"}}
        for i in range(500)
    ]
    channels = [
        {
            "id": f"C{c:08d}",
            "name": f"channel-{c}",
            "created": 1700000000,
            "members": [u["id"] for u in users[: 10 + c]],
        }
        for c in range(CHANNELS)
    ]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("users.json", json.dumps(users))
        archive.writestr("channels.json", json.dumps(channels[:-10]))
        archive.writestr("groups.json", json.dumps(channels[-10:]))
        written, day = 0, 0
        while written < messages:
            date = time.strftime("%Y-%m-%d", time.gmtime(1767225600 + day * 86400))
            for c in range(CHANNELS):
                if written >= messages:
                    break
                base = 1767225600 + day * 86400 + c
                batch = []
                for m in range(min(PER_DAY, messages - written)):
                    n = written + m
                    text = " ".join(WORDS[(n + i) % len(WORDS)] for i in range(14))
                    if n % 500 == 0:
                        text += f" `{fake_secret('openai_project_key', seed=n)}`"
                    msg = {
                        "type": "message",
                        "user": users[n % 500]["id"],
                        "text": f"<@{users[(n + 1) % 500]['id']}> {text} &amp; <https://x.test|x>",
                        "ts": f"{base + m * 60}.{n % 1000000:06d}",
                        "team": "T0EXPORT",
                    }
                    if m % 20 == 1:
                        msg["thread_ts"] = batch[0]["ts"]
                    if n % 300 == 0:
                        msg["files"] = [
                            {
                                "id": f"F{n:09d}",
                                "name": "log.txt",
                                "mode": "hosted",
                                "url_private": f"https://files.slack.com/x/{n}?t=tok",
                            }
                        ]
                    if n % 150 == 0:
                        msg["edited"] = {"user": msg["user"], "ts": msg["ts"]}
                    batch.append(msg)
                archive.writestr(f"{channels[c]['name']}/{date}.json", json.dumps(batch))
                written += len(batch)
            day += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--scan", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.zip"
        started = time.perf_counter()
        generate(path, args.messages)
        print(
            f"generated {args.messages:,} messages in {time.perf_counter() - started:.0f} s "
            f"({path.stat().st_size / 1e6:.0f} MB zip); peak RSS so far {rss_mb():.0f} MB"
        )
        detector = None
        if args.scan:
            from bot.detection.engine import Detector
            from bot.detection.fingerprint import Fingerprinter

            detector = Detector.default(Fingerprinter(b"bench-fingerprint-key-0000000001"))
        started = time.perf_counter()
        documents = matches = 0
        for document in read_archive(path):
            documents += 1
            if detector is not None:
                matches += len(detector.scan(document.text))
        elapsed = time.perf_counter() - started
        what = f", {matches} keys found" if detector is not None else ""
        print(
            f"read{' and scanned' if detector else ''}: {documents:,} documents in "
            f"{elapsed:.1f} s = {documents / elapsed:,.0f} documents/s{what}; "
            f"peak RSS {rss_mb():.0f} MB"
        )


if __name__ == "__main__":
    main()
