"""/leakwatch: `status`, `help`; for security admins `scan #channel` and `digest preview`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.notify.interactions import FindingActions
from connectors.base import Document, SourceKind, Unit

if TYPE_CHECKING:
    from bot.notify.notifier import Notifier
    from bot.pipeline import Scanner
    from bot.store.db import Database
    from connectors.slack import SlackSource

Backfill = Callable[[str, str], str]  # (workspace, channel id) -> what was scanned, in words

HELP = (
    "*LeakWatch* finds credentials pasted in Slack, Confluence and email, and helps you rotate "
    "them.\n"
    "• `/leakwatch status`: your open findings\n"
    "• `/leakwatch help`: this text\n"
    "Security admins also have:\n"
    "• `/leakwatch scan #channel`: scan a channel's history now\n"
    "• `/leakwatch digest preview`: this week's digest so far, only to you\n"
    "Your open findings, with their buttons, are on the app's *Home* tab."
)
_CHANNEL = re.compile(r"^<#([CG][A-Z0-9]+)(?:\|[^>]*)?>$|^([CG][A-Z0-9]{6,})$")
ADMIN_ONLY = "Only security admins can do that."


def register(app: App, service: FindingActions, *, backfill: Backfill | None = None) -> None:
    @app.command("/leakwatch")
    def leakwatch(ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        words = str(command.get("text") or "").split()
        user_id = str(command["user_id"])
        workspace = str(command.get("team_id") or "")
        verb = words[0].lower() if words else "help"
        if verb == "status":
            respond(text=service.status_text(client, workspace, user_id), response_type="ephemeral")
        elif verb in ("scan", "digest"):
            service.record_command(workspace, user_id, f"command:{' '.join(words[:2])[:60]}")
            if not service.is_admin(client, user_id):
                service.record_command(workspace, user_id, "refused:command")
                respond(text=ADMIN_ONLY, response_type="ephemeral")
            elif verb == "scan":
                if words[1:]:
                    respond(text=f"Scanning {words[1][:80]}…", response_type="ephemeral")
                respond(
                    text=_scan(client, workspace, words[1:], backfill), response_type="ephemeral"
                )
            elif words[1:2] == ["preview"]:
                text, digest_blocks = _digest_preview(service)
                respond(text=text, blocks=digest_blocks, response_type="ephemeral")
            else:
                respond(text="Try `/leakwatch digest preview`.", response_type="ephemeral")
        else:
            respond(text=HELP, response_type="ephemeral")


def _scan(client: WebClient, workspace: str, args: list[str], backfill: Backfill | None) -> str:
    if not args:
        return "Which channel? `/leakwatch scan #channel`"
    if backfill is None:
        return "Scanning on demand is not available in this deployment."
    channel = _channel_id(client, args[0])
    if channel is None:
        return f"I cannot find the channel {args[0][:80]!s}. Invite me to it and try again."
    return backfill(workspace, channel)


def _channel_id(client: WebClient, ref: str) -> str | None:
    found = _CHANNEL.match(ref)
    if found:
        return found.group(1) or found.group(2)
    name = ref.lstrip("#").lower()
    for page in client.conversations_list(types="public_channel,private_channel", limit=200):
        for channel in page.get("channels") or []:
            if channel.get("name") == name:
                return str(channel["id"])
    return None


def _digest_preview(service: FindingActions) -> tuple[str, list[dict[str, Any]]]:
    from bot.notify import digest

    now = service.clock()
    week = digest.Week.containing(now, service.settings.timezone)
    with service.db.session() as session:
        weekly = digest.compute_digest(session, week, now=now)
        return "Preview: " + digest.digest_summary(weekly), digest.digest_blocks(weekly)


class _OneChannel:
    """The Slack source narrowed to one channel, for a backfill on request."""

    kind: SourceKind = "slack"

    def __init__(self, source: SlackSource, channel: str) -> None:
        self.source = source
        self.channel = channel

    def units(self) -> Iterator[Unit]:
        facts = self.source.channel(self.channel)
        yield Unit(facts.id, facts.unit_name)

    def documents(self, unit: Unit, cursor: str | None) -> Iterator[tuple[Document, str | None]]:
        return self.source.documents(unit, cursor)


def make_backfill(
    db: Database, source: SlackSource, detector: Scanner, notifier: Notifier | None
) -> Backfill:
    """`/leakwatch scan #channel`: poll that channel now from its cursor (all of its history
    when it was never read) through the pipeline, then send what it queued."""

    def backfill(workspace: str, channel: str) -> str:
        from bot.polling import PollAborted, poll_source

        try:
            report = poll_source(db, _OneChannel(source, channel), detector, workspace=workspace)
        except PollAborted as error:
            return f"The scan stopped: {error.reason}"
        if notifier is not None:
            notifier.send_pending()
        if report.units_failed:
            return f"Could not scan <#{channel}>: {report.units_failed[0][1]}"
        result = report.result
        return (
            f"Scanned <#{channel}>: {result.documents} messages read, "
            f"{result.new_secrets} new credential{'s' if result.new_secrets != 1 else ''} found."
        )

    return backfill
