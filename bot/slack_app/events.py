"""Message events: new messages, edits, thread broadcasts, file shares and deletions.

Bolt acknowledges each event before the listener runs. The listener then:
  1. turns the message into Documents with the poller's code (connectors.slack), reading
     shared text files;
  2. in one transaction, records the event id (ProcessedEvent) and runs the pipeline, so a
     retried delivery (X-Slack-Retry-Num, same event_id) finds its id and does nothing, even if
     it arrives while the first delivery is still being handled;
  3. asks the notifier to send what the pipeline queued.
An edit is the message's new text: a key it adds is found, and a key it removes marks that
occurrence removed (the pipeline compares with what the item held). A deletion marks the
message's occurrences, and those of its files, removed. The key still needs rotating.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from slack_bolt import App

from bot.pipeline import ingest, mark_item_removed
from bot.store import queries
from bot.store.models import utcnow
from connectors.base import Document, SourceError
from connectors.slack import item_id

if TYPE_CHECKING:
    from bot.slack_app.app import Services

log = logging.getLogger(__name__)

NEW_MESSAGE_SUBTYPES = frozenset(
    {None, "thread_broadcast", "file_share", "bot_message", "me_message"}
)


def register(app: App, services: Services) -> None:
    @app.event("message")
    def on_message(body: dict[str, Any], event: dict[str, Any]) -> None:
        handle_message_event(services, body, event)


def handle_message_event(services: Services, body: Mapping[str, Any],
                         event: Mapping[str, Any]) -> None:
    event_id = str(body.get("event_id") or "")
    workspace = str(body.get("team_id") or "")
    channel = str(event.get("channel") or "")
    subtype = event.get("subtype")
    now = utcnow()
    documents: list[Document] = []
    removed: list[str] = []
    try:
        if subtype in NEW_MESSAGE_SUBTYPES:
            documents = services.source.message_documents(channel, event)
        elif subtype == "message_changed":
            message = event.get("message") or {}
            documents = services.source.message_documents(channel, message)
        elif subtype == "message_deleted":
            removed = _deleted_items(channel, event)
        else:
            return
    except SourceError as error:
        log.warning("event %s in %s not read: %s", event_id, channel, error)
        raise
    with services.db.session() as session:
        if event_id and not queries.mark_event_processed(
            session, event_id=event_id, now=now, workspace=workspace
        ):
            log.info("event %s already handled: a retried delivery", event_id)
            return
        if documents:
            ingest(session, documents, services.detector, now=now,
                   workspace=workspace or None)
        for item in removed:
            mark_item_removed(session, source="slack", workspace=workspace, item_id=item, now=now)
    if documents and services.notifier is not None:
        services.notifier.send_pending()


def _deleted_items(channel: str, event: Mapping[str, Any]) -> list[str]:
    ts = str(event.get("deleted_ts") or "")
    if not ts:
        return []
    previous = event.get("previous_message") or {}
    files = [f.get("id") for f in previous.get("files") or [] if isinstance(f, Mapping)]
    return [item_id(channel, ts), *(item_id(channel, ts, str(f)) for f in files if f)]
