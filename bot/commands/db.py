"""`python -m bot db upgrade | downgrade REVISION | current`: the schema, through Alembic."""

from __future__ import annotations

import argparse

from bot.config import Settings
from bot.store.db import Database


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("upgrade", help="apply every migration not yet applied (to head)")
    downgrade = actions.add_parser("downgrade", help="revert migrations down to REVISION")
    downgrade.add_argument("revision", help='a revision id, "-1" for one step, "base" for none')
    actions.add_parser("current", help="print the applied revision and the latest one")


def run(args: argparse.Namespace, settings: Settings) -> int:
    db = Database(settings.database_url)
    try:
        if args.action == "upgrade":
            db.upgrade()
            print(f"database at revision {db.current_revision()} (head)")
        elif args.action == "downgrade":
            db.downgrade(args.revision)
            print(f"database at revision {db.current_revision() or 'base (empty)'}")
        else:
            current, head = db.current_revision(), db.head_revision()
            state = "up to date" if current == head else f"behind: head is {head}"
            print(f"{current or 'base (empty)'} ({state})")
        return 0
    finally:
        db.dispose()
