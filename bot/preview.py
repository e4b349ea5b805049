"""What the bot would send, printed in a terminal instead: the DMs waiting in the outbox and
this week's digest. `python -m bot run` shows it on the bundled samples before Slack is set up.

The DMs are the notifier's own Block Kit messages (bot/notify/blocks.py), flattened to text:
what a person would read, buttons shown as [labels].
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TextIO

from bot.config import Settings
from bot.notify import blocks
from bot.notify.digest import Week, compute_digest, digest_text
from bot.notify.findings import finding_of
from bot.notify.playbooks import playbook_for
from bot.store import queries
from bot.store.db import Database

RULE = "─" * 72
# Slack's <!date^…|fallback> shows the reader's local time; a terminal gets the fallback.
_DATE_TOKEN = re.compile(r"<!date\^[^|>]*\|([^>]*)>")
_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]*)>")


def print_pending_messages(db: Database, out: TextIO, *, now: datetime, limit: int = 20) -> int:
    """Print the queued DMs and security-channel alerts; returns how many are queued."""
    with db.session() as session:
        pending = queries.pending_notifications(session, now=now, limit=limit)
        for row in pending:
            finding = finding_of(row.secret, row.occurrence)
            playbook = playbook_for(finding.rule_id, finding.provider)
            if row.kind == "security_alert":
                message = blocks.security_alert_message(finding, playbook)
                heading = "To the security channel"
            else:
                message = blocks.alert_message(
                    finding, playbook, regression=row.kind == "regression"
                )
                heading = f"DM to {_recipient(row.recipient)}"
            out.write(f"{RULE}\n{heading}\n{RULE}\n{blocks_as_text(message.blocks)}\n\n")
    return len(pending)


def print_digest(db: Database, settings: Settings, out: TextIO, *, now: datetime) -> None:
    with db.session() as session:
        digest = compute_digest(session, Week.containing(now, settings.timezone), now=now)
    out.write(f"{RULE}\nWeekly digest, to the security channel\n{RULE}\n{digest_text(digest)}\n")


def _recipient(recipient: str) -> str:
    kind, _, who = recipient.partition(":")
    if kind == "email":
        return f"the author, found in Slack by their address {who}"
    if kind == "user":
        return f"the poster, Slack user {who}"
    return "the security channel (no author to tell)"


def blocks_as_text(message_blocks: Iterable[Mapping[str, Any]]) -> str:
    """Block Kit to the lines a person reads; mrkdwn kept as written."""
    lines: list[str] = []
    for block in message_blocks:
        kind = block.get("type")
        if kind in ("header", "section"):
            lines.append(_text(block.get("text")))
            lines.extend(_text(field) for field in block.get("fields") or ())
        elif kind == "context":
            lines.extend(_text(element) for element in block.get("elements") or ())
        elif kind == "actions":
            lines.append("  ".join(f"[{_text(e.get('text'))}]" for e in block.get("elements", ())))
        elif kind == "divider":
            lines.append("")
    text = "\n".join(line for line in lines if line is not None)
    return _LINK.sub(r"\2 (\1)", _DATE_TOKEN.sub(r"\1", text))


def _text(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("text", ""))
    return "" if value is None else str(value)
