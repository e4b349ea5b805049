"""`python -m bot digest`: print the weekly digest, or post it now.

    python -m bot digest --preview                 the last complete week, in the terminal
    python -m bot digest --preview --blocks        its Block Kit JSON (for Block Kit Builder)
    python -m bot digest --week 2026-10-19         any day of the week to report on
    python -m bot digest --post                    post to LEAKWATCH_DIGEST_CHANNEL now
    python -m bot digest --post --force            post even if that week's digest went out

A posted week is recorded in the Digest table, so the scheduler does not post it again.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime, timedelta

from bot.config import Settings
from bot.notify.digest import Week, compute_digest, digest_blocks, digest_text
from bot.store.db import Database


def add_arguments(parser: argparse.ArgumentParser) -> None:
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--preview", action="store_true", help="print the digest here (the default)"
    )
    action.add_argument(
        "--post", action="store_true", help="post it now to LEAKWATCH_DIGEST_CHANNEL"
    )
    parser.add_argument(
        "--week",
        type=_day,
        metavar="YYYY-MM-DD",
        help="a day of the week to report on (default: the last complete week)",
    )
    parser.add_argument(
        "--blocks", action="store_true", help="with --preview: print the Block Kit JSON"
    )
    parser.add_argument(
        "--force", action="store_true", help="with --post: post even if the week was posted"
    )


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-10-19, got {text!r}") from None


def run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.scheduler import utc_now

    now = utc_now()
    if args.week is None:
        week = Week.last_complete(now, settings.timezone)
    else:
        week = Week(args.week - timedelta(days=args.week.weekday()), settings.timezone)
    if args.post:
        problem = _cannot_post(settings)
        if problem:
            print(f"leakwatch: cannot post the digest: {problem}", file=sys.stderr)
            return 2
    db = Database(settings.database_url)
    try:
        db.upgrade()
        if args.post:
            return _post(db, settings, week, now, force=args.force)
        with db.session() as session:
            digest = compute_digest(session, week, now=now)
        if args.blocks:
            print(json.dumps({"blocks": digest_blocks(digest)}, indent=2, ensure_ascii=False))
        else:
            sys.stdout.write(digest_text(digest))
        return 0
    finally:
        db.dispose()


def _cannot_post(settings: Settings) -> str:
    if settings.slack is None:
        return "Slack is not configured (set SLACK_BOT_TOKEN)"
    if not settings.digest_channel:
        return "no channel to post to (set LEAKWATCH_DIGEST_CHANNEL, or LEAKWATCH_SECURITY_CHANNEL)"
    return ""


def _post(db: Database, settings: Settings, week: Week, now: datetime, *, force: bool) -> int:
    from slack_sdk import WebClient

    from bot.scheduler import post_digest_for_week

    assert settings.slack is not None  # checked by _cannot_post
    client = WebClient(token=settings.slack.bot_token, base_url=settings.slack.api_url)
    result = post_digest_for_week(db, client, settings, week, now=now, force=force)
    where = f"{settings.digest_channel} for the week of {week.start.isoformat()}"
    if result.outcome == "posted":
        print(f"posted the digest to {where} (ts {result.slack_ts})")
        return 0
    if result.outcome == "already_claimed":
        print(
            f"leakwatch: the digest was already posted to {where}; use --force to post it again",
            file=sys.stderr,
        )
        return 0
    if result.outcome == "released":
        print(f"leakwatch: Slack refused the digest for {where}: {result.error}", file=sys.stderr)
        return 2
    print(
        f"leakwatch: the digest for {where} may not have been posted ({result.error}); check "
        "the channel, and use --force to post it again",
        file=sys.stderr,
    )
    return 2
