"""Documents per second through the pipeline (detect, store, queue), on SQLite and PostgreSQL.

    .venv/bin/python -m bench.pipeline_bench                      # 200,000 documents, SQLite
    .venv/bin/python -m bench.pipeline_bench --documents 1000000  # the long run, RSS sampled
    .venv/bin/python -m bench.pipeline_bench --database postgresql+psycopg://postgres@127.0.0.1/test
        (creates a scratch database on that server and drops it afterwards)

Documents are Slack-like messages of 80-200 characters; 1 in 100 holds a fake key (from a pool
of 2,000 distinct keys, so keys also come back in new places). They are ingested the way a poll
does it: `--batch` documents per transaction. The detector alone is timed over the same texts
first, so the store's share of the cost can be read off. Resident memory (VmRSS) is sampled
every `--sample` documents: documents are generated lazily, so a flat line means the pipeline
keeps nothing per document.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bot.detection.engine import Detector
from bot.detection.fakes import fake_secret
from bot.detection.fingerprint import Fingerprinter
from bot.pipeline import IngestResult, ingest
from bot.store.db import Database
from connectors.base import Document, Exposure

KEY_RULES = ("openai_project_key", "anthropic_api_key", "github_classic_pat", "aws_access_key",
             "stripe_test_secret_key", "slack_bot_token")  # fmt: skip
WORDS = ("deploy", "review", "the", "staging", "build", "is", "green", "again", "please",
         "check", "dashboard", "latency", "after", "release", "rollback", "ticket", "on-call",
         "today")  # fmt: skip
EXPOSURES = (Exposure(audience=1240, is_public=True), Exposure(audience=14), Exposure(audience=2))


def key_pool(size: int) -> list[str]:
    return [fake_secret(KEY_RULES[n % len(KEY_RULES)], n) for n in range(size)]


def documents(count: int, keys: list[str], run: str, every: int = 100) -> Iterator[Document]:
    for n in range(count):
        words = " ".join(WORDS[(n * 7 + i * 3) % len(WORDS)] for i in range(12 + n % 20))
        text = f"{words} #{n}"
        if n % every == every // 2:
            text = f"{words}\nhere is the key: {keys[(n // every) % len(keys)]} #{n}"
        yield Document(
            source="slack", unit=f"C{n % 40:04d}", unit_name=f"#channel-{n % 40}",
            item_id=f"{run}:{n}", text=text, workspace="T0BENCH", author=f"U{n % 500:05d}",
            permalink=f"https://example.slack.com/archives/C{n % 40:04d}/p{n}",
            posted_at=datetime(2026, 3, 1, tzinfo=UTC), exposure=EXPOSURES[n % 3],
        )  # fmt: skip


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Timing:
    documents: int = 0
    wall: float = 0.0  # seconds inside ingest() and the commit
    cpu: float = 0.0  # CPU seconds of this process in the same spans

    def rate(self, cpu: bool = False) -> float:
        return self.documents / (self.cpu if cpu else self.wall)


def detector_only(detector: Detector, count: int, keys: list[str]) -> Timing:
    texts = [document.text for document in documents(count, keys, "scan")]
    timing = Timing(documents=count)
    wall, cpu = time.perf_counter(), time.process_time()
    for text in texts:
        detector.scan(text)
    timing.wall, timing.cpu = time.perf_counter() - wall, time.process_time() - cpu
    return timing


def through_pipeline(
    db: Database, detector: Detector, count: int, keys: list[str], batch: int, sample: int
) -> tuple[Timing, float, IngestResult, list[tuple[int, float]]]:
    """Ingest `count` documents in transactions of `batch`; time only ingest() and commit."""
    total = IngestResult()
    timing = Timing()
    samples = [(0, rss_mib())]
    stream = documents(count, keys, uuid.uuid4().hex[:8])
    start = time.perf_counter()
    while True:
        chunk = list(itertools.islice(stream, batch))
        if not chunk:
            break
        wall, cpu = time.perf_counter(), time.process_time()
        with db.session() as session:
            total.add(ingest(session, chunk, detector))
        timing.wall += time.perf_counter() - wall
        timing.cpu += time.process_time() - cpu
        total.secret_ids.clear()  # the bench keeps counts only
        timing.documents += len(chunk)
        if timing.documents % sample < batch:
            samples.append((timing.documents, rss_mib()))
    end_to_end = count / (time.perf_counter() - start)
    return timing, end_to_end, total, samples


@contextmanager
def scratch_database(server: str | None, tmp: str) -> Iterator[str]:
    """A fresh SQLite file, or a fresh database on the given PostgreSQL server, dropped after."""
    if server is None:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    url = make_url(server)
    name = f"leakwatch_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--database", help="a PostgreSQL server URL (a scratch database is "
                        "created on it and dropped); default: a fresh SQLite file")  # fmt: skip
    parser.add_argument("--batch", type=int, default=5000, help="documents per transaction")
    parser.add_argument("--sample", type=int, default=100_000, help="RSS every N documents")
    parser.add_argument("--keys", type=int, default=2000, help="distinct fake keys in the pool")
    args = parser.parse_args()

    keys = key_pool(args.keys)
    detector = Detector.default(Fingerprinter(b"bench fingerprint key"))
    scan = detector_only(detector, min(args.documents, 100_000), keys)

    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.database, tmp) as url:
        db = Database(url)
        db.upgrade()
        timing, end_to_end, result, samples = through_pipeline(
            db, detector, args.documents, keys, args.batch, args.sample
        )
        backend = db.url.get_backend_name()
        db.dispose()

    print(f"engine: {detector.engine}; database: {backend}; {args.batch} documents a transaction")
    print(f"load average at the end: {Path('/proc/loadavg').read_text().split()[0]}")
    print(f"detector alone:   {scan.rate():>9,.0f} documents/s "
          f"({scan.rate(cpu=True):,.0f} per CPU second)")  # fmt: skip
    print(f"through pipeline: {timing.rate():>9,.0f} documents/s "
          f"({timing.rate(cpu=True):,.0f} per CPU second) over {args.documents:,} documents")
    print(f"  end to end, generating the documents too: {end_to_end:,.0f} documents/s")
    print(
        f"matches {result.matches:,}, new secrets {result.new_secrets:,}, "
        f"new occurrences {result.new_occurrences:,}, notifications {result.notifications:,}"
    )
    print("RSS (MiB) by documents done: " + ", ".join(f"{n:,}: {mib:.0f}" for n, mib in samples))

if __name__ == "__main__":
    main()
