"""`python -m bot poll`: one poll of every configured source, then send what it queued.

For cron jobs and first backfills. Each source is read from its stored cursors; a source that
cannot be read is reported with what to fix and the others still run. Exit 0 when every source
was read, 2 when one could not be (its error is printed), or when no source is configured.
"""

from __future__ import annotations

import argparse
import sys

from bot import wiring
from bot.config import Settings
from bot.polling import PollAborted, poll_source
from connectors.base import SourceAuthError, SourceError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-send", action="store_true", help="store findings and queue DMs, but send nothing"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    if settings.slack is None and settings.confluence is None and settings.imap is None:
        print(
            "leakwatch: no source is configured: set SLACK_BOT_TOKEN, CONFLUENCE_URL or "
            "IMAP_HOST (see the README's configuration table)",
            file=sys.stderr,
        )
        return 2
    db = wiring.open_database(settings)
    detector = wiring.build_detector(settings)
    client = wiring.build_slack_client(settings)
    failed = False
    for configured in wiring.build_sources(settings, slack_client=client):
        kind = configured.source.kind
        try:
            report = poll_source(
                db, configured.source, detector, workspace=configured.workspace()
            )
        except SourceAuthError as error:
            print(f"leakwatch: {kind}: access refused ({error}); check {configured.credentials}",
                  file=sys.stderr)
            failed = True
            continue
        except (PollAborted, SourceError) as error:
            print(f"leakwatch: {kind}: {error}", file=sys.stderr)
            failed = True
            continue
        print(
            f"{kind}: {len(report.units_ok)} read, {len(report.units_failed)} skipped, "
            f"{report.documents} documents, {report.findings} new findings, "
            f"{report.notifications} notifications queued"
        )
        for unit, reason in report.units_failed:
            print(f"  skipped {unit}: {reason}")
        if report.stopped:
            print(f"  stopped early: {report.stopped}")
    notifier = wiring.build_notifier(settings, db, client)
    if notifier is not None and not args.no_send:
        sent = notifier.send_pending()
        print(f"slack: {sent} notifications sent")
    return 2 if failed else 0
