"""`python -m bot findings`: stored findings, as a table or as JSON Lines.

    python -m bot findings --status open --provider openai
    python -m bot findings --format jsonl      # one finding a line, its occurrences inside

Only masked previews and fingerprints are printed; the store holds nothing more.
Exit status: 0 when nothing matches, 1 when findings are listed (as `scan` does).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from bot.config import Settings
from bot.store import queries
from bot.store.db import Database
from bot.store.models import SECRET_STATUSES, SOURCES, Occurrence, Secret


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", action="append", choices=SECRET_STATUSES,
                        help="only findings with this status (repeatable)")  # fmt: skip
    parser.add_argument("--provider", action="append",
                        help="only this provider: openai, aws… (repeatable)")  # fmt: skip
    parser.add_argument("--source", action="append", choices=SOURCES,
                        help="only findings seen in this source (repeatable)")  # fmt: skip
    parser.add_argument("--workspace", help="only this Slack workspace (team id)")
    parser.add_argument("--format", choices=("table", "jsonl"), default="table")
    parser.add_argument("--limit", type=int, default=None, help="at most this many findings")


def run(args: argparse.Namespace, settings: Settings, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    db = Database(settings.database_url)
    try:
        db.upgrade()
        with db.session() as session:
            findings = queries.list_findings(
                session,
                workspace=args.workspace,
                status=args.status,
                provider=args.provider,
                source=args.source,
                limit=args.limit,
            )
            if args.format == "jsonl":
                for secret in findings:
                    out.write(json.dumps(finding_record(secret), ensure_ascii=False) + "\n")
            else:
                out.write(render_table(findings))
    finally:
        db.dispose()
    return 1 if findings else 0


def finding_record(secret: Secret) -> dict[str, Any]:
    return {
        "id": secret.id,
        "workspace": secret.workspace,
        "rule_id": secret.rule_id,
        "provider": secret.provider,
        "name": secret.name,
        "preview": secret.preview,
        "fingerprint": secret.fingerprint,
        "severity": secret.severity,
        "risk": {
            "score": secret.risk_score,
            "level": secret.risk_level,
            "reasons": list(secret.risk_reasons),
        },
        "status": secret.status,
        "status_by": secret.status_by,
        "status_at": _time(secret.status_at),
        "status_reason": secret.status_reason,
        "first_seen": _time(secret.first_seen),
        "last_seen": _time(secret.last_seen),
        "regressions": secret.regressions,
        "occurrences": [_occurrence_record(o) for o in secret.occurrences],
    }


def _occurrence_record(occurrence: Occurrence) -> dict[str, Any]:
    return {
        "source": occurrence.source,
        "container": occurrence.unit,
        "container_name": occurrence.unit_name,
        "item_id": occurrence.item_id,
        "title": occurrence.title,
        "author": occurrence.author,
        "author_email": occurrence.author_email,
        "permalink": occurrence.permalink,
        "line": occurrence.line,
        "column": occurrence.column,
        "posted_at": _time(occurrence.posted_at),
        "detected_at": _time(occurrence.detected_at),
        "removed_at": _time(occurrence.removed_at),
    }


HEADERS = ("ID", "RISK", "STATUS", "TYPE", "PREVIEW", "SEEN IN", "FIRST SEEN")


def render_table(findings: Sequence[Secret]) -> str:
    if not findings:
        return "No findings.\n"
    rows = [HEADERS] + [
        (
            str(secret.id),
            f"{secret.risk_level} {secret.risk_score}",
            secret.status,
            secret.name,
            secret.preview,
            _places(secret.occurrences),
            secret.first_seen.strftime("%Y-%m-%d %H:%M"),
        )
        for secret in findings
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]  # fmt: skip
    return "\n".join(lines) + f"\n\n{len(findings)} finding{'s' if len(findings) != 1 else ''}\n"


def _places(occurrences: Sequence[Occurrence]) -> str:
    if not occurrences:
        return "-"
    first = occurrences[0]
    where = f"{first.source}:{first.unit_name or first.unit}"
    others = len(occurrences) - 1
    return where + (f" (+{others} more)" if others else "")


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
