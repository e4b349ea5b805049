"""Pages per second from the stand-in Confluence, and API calls per idle space per poll.

    .venv/bin/python -m bench.confluence_poll [--spaces 20] [--pages 100] [--versions 3]
                                              [--pipeline]

The stand-in (tests/standins/confluence.py) runs in a child process, so the CPU time reported
is the connector's alone (atlassian-python-api, JSON, storage XHTML to text). Each space holds
`--pages` pages of 2 to 6 kB storage XHTML (paragraphs, tables, code macros with CDATA), one
comment per page, one `.env` attachment per ten pages and a PNG per twenty (skipped), and
`--versions` versions per page; one page in fifty carries a fake key.

Measured: a backfill of every space (with and without page history), then polls with nothing
changed (the idle cost), then a poll after one edit in one space. `--pipeline` also runs the
backfill through bot.polling.poll_source into SQLite with the real detector.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

from bot.detection.fakes import fake_secret
from connectors.base import Document
from connectors.confluence import ConfluenceSource

TOKEN = "bench-api-token"
EMAIL = "reader@example.com"
WORDS = [
    "deploy", "service", "cluster", "token", "rotate", "staging", "production", "runbook",
    "incident", "owner", "team", "database", "backup", "restore", "config", "secret", "vault",
    "pipeline", "build", "release", "metrics", "alert",
]  # fmt: skip


@dataclass
class Config:
    url: str
    user: str = EMAIL
    token: str = TOKEN
    pat: str = ""
    spaces: tuple[str, ...] = ()
    attachment_max_bytes: int = 1_000_000


def _body(rng: random.Random, seed: int) -> str:
    parts = []
    for _ in range(rng.randint(4, 12)):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60)))
        parts.append(f"<p>{words} <strong>{rng.choice(WORDS)}</strong> &amp; more</p>")
    rows = "".join(
        f"<tr><td>{rng.choice(WORDS)}</td><td><code>{rng.randint(1000, 9999)}</code></td></tr>"
        for _ in range(rng.randint(2, 8))
    )
    parts.append(f"<table><tbody>{rows}</tbody></table>")
    secret = f"OPENAI_API_KEY={fake_secret('openai_project_key', seed)}" if seed % 50 == 0 else ""
    parts.append(
        '<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">bash</ac:parameter>'
        f"<ac:plain-text-body><![CDATA[export REGION=eu-west-1\n{secret}\n./deploy.sh]]>"
        "</ac:plain-text-body></ac:structured-macro>"
    )
    return "".join(parts)


def _serve(spaces: int, pages: int, versions: int, cloud: bool, pipe: Connection) -> None:
    """Child process: build the site, serve it, answer commands until told to stop."""
    from tests.standins.confluence import ConfluenceSite, ConfluenceStandin

    rng = random.Random(7)
    site = ConfluenceSite(cloud=cloud)
    reader = site.add_user("Reader", EMAIL)
    site.add_api_token(reader, TOKEN)
    site.add_pat(reader, TOKEN)
    authors = [site.add_user(f"Author {n}", f"author{n}@example.com") for n in range(30)]
    start = datetime.now(UTC) - timedelta(days=30)
    seed = 0
    page_ids = []
    for s in range(spaces):
        space = site.add_space(f"S{s:03d}", f"Space {s}")
        for p in range(pages):
            seed += 1
            when = start + timedelta(minutes=seed)
            page = site.add_page(
                space, f"Page {p}", _body(rng, seed), rng.choice(authors), when=when
            )
            for v in range(2, versions + 1):
                site.edit(page, _body(rng, seed + 100_000 * v), rng.choice(authors), when=when)
            site.add_comment(
                page, f"<p>{' '.join(rng.choices(WORDS, k=30))}</p>", reader, when=when
            )
            if p % 10 == 0:
                site.add_attachment(page, "app.env", b"LOG_LEVEL=info\n" * 50, reader, when=when)
            if p % 20 == 0:
                site.add_attachment(
                    page,
                    "shot.png",
                    b"\x89PNG" + bytes(3000),
                    reader,
                    media_type="image/png",
                    when=when,
                )
            page_ids.append(page)
    with ConfluenceStandin(site) as standin:
        pipe.send(standin.url)
        while True:
            command = pipe.recv()
            if command == "calls":
                pipe.send(len(standin.calls))
            elif command == "edit":
                site.edit(page_ids[0], _body(rng, 50) + "<p>edited</p>", reader)
                pipe.send("ok")
            else:
                pipe.send("bye")
                return


def _read(source: ConfluenceSource, cursors: dict[str, str | None]) -> Iterator[Document]:
    for unit in source.units():
        for document, cursor in source.documents(unit, cursors.get(unit.id)):
            if cursor is not None:
                cursors[unit.id] = cursor
            yield document


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measure(
    label: str, source: ConfluenceSource, cursors: dict[str, str | None], pipe: Connection
) -> dict[str, float]:
    pipe.send("calls")
    before_calls = pipe.recv()
    wall, cpu = time.perf_counter(), _cpu()
    documents = list(_read(source, cursors))
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    pipe.send("calls")
    calls = pipe.recv() - before_calls
    items = {d.extra.get("content_id") for d in documents}
    pages = {
        d.item_id
        for d in documents
        if d.extra.get("content_type") in ("page", "blogpost") and not d.exposure.is_history
    }
    row = {
        "documents": len(documents),
        "items": len(items),
        "pages": len(pages),
        "calls": calls,
        "wall": wall,
        "cpu": cpu,
    }
    print(
        f"{label:<34} {len(pages):>6} pages {len(documents):>7} docs {calls:>6} calls "
        f"{wall:8.2f} s wall {cpu:7.2f} s cpu  "
        f"{(len(pages) / wall if wall else 0):8.1f} pages/s wall  "
        f"{(len(pages) / cpu if cpu else 0):8.1f} pages/CPU s"
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--spaces", type=int, default=20)
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--versions", type=int, default=3)
    parser.add_argument("--pipeline", action="store_true")
    parser.add_argument(
        "--data-center", action="store_true", help="a Data Center site: offset paging, a PAT"
    )
    args = parser.parse_args(argv)
    cloud = not args.data_center

    def config(url: str) -> Config:
        return Config(url) if cloud else Config(url, user="", token="", pat=TOKEN)

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(
        target=_serve, args=(args.spaces, args.pages, args.versions, cloud, child)
    )
    server.start()
    try:
        url = parent.recv()
        print(f"site: {args.spaces} spaces x {args.pages} pages, {args.versions} versions each")

        no_history = ConfluenceSource(config(url), history_max_versions=0, cloud=cloud)
        _measure("backfill, current versions only", no_history, {}, parent)

        source = ConfluenceSource(config(url), cloud=cloud)
        cursors: dict[str, str | None] = {}
        _measure("backfill with page history", source, cursors, parent)

        for n in range(3):
            idle = _measure(f"idle poll {n + 1}", source, cursors, parent)
            print(f"    API calls per idle space per poll: {idle['calls'] / args.spaces:.2f}")
        restarted = ConfluenceSource(config(url), cloud=cloud)
        idle = _measure("idle poll, new source object", restarted, cursors, parent)
        print(f"    API calls per idle space per poll: {idle['calls'] / args.spaces:.2f}")
        parent.send("edit")
        parent.recv()
        _measure("poll after one page edit", source, cursors, parent)

        if args.pipeline:
            _pipeline(config(url), cloud)
    finally:
        parent.send("stop")
        parent.recv()
        server.join(timeout=10)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of the reading process: {peak:.0f} MB RSS")
    return 0


def _pipeline(config: Config, cloud: bool) -> None:
    from bot.detection.engine import Detector
    from bot.detection.fingerprint import Fingerprinter
    from bot.polling import poll_source
    from bot.store.db import Database

    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{Path(folder) / 'bench.db'}")
        db.upgrade()
        detector = Detector.default(Fingerprinter(b"bench fingerprint key"))
        source = ConfluenceSource(config, cloud=cloud)
        wall, cpu = time.perf_counter(), _cpu()
        report = poll_source(db, source, detector)
        wall, cpu = time.perf_counter() - wall, _cpu() - cpu
        print(
            f"{'poll_source backfill (SQLite)':<34} {report.documents:>7} docs "
            f"{report.findings:>4} findings {wall:8.2f} s wall {cpu:7.2f} s cpu"
        )
        db.dispose()


if __name__ == "__main__":
    sys.exit(main())
