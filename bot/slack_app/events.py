"""Message events: new messages, edits, thread broadcasts, file shares and deletions.

Bolt acknowledges each event before the listener runs. The listener queues the event on its
channel's lane (events of one channel are handled one at a time, in arrival order), where:
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
import zlib
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from slack_bolt import App, BoltContext

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


LANES = 4


class Lanes:
    """Runs work in arrival order per channel: an edit is never handled before the message it
    edits (Bolt's own listener pool would run them side by side), while channels go in parallel.
    """

    def __init__(self, count: int = LANES) -> None:
        self._lanes = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"slack-events-{n}")
            for n in range(count)
        ]

    def submit(self, key: str, work: Callable[[], None]) -> Future[None]:
        lane = self._lanes[zlib.crc32(key.encode()) % len(self._lanes)]
        return lane.submit(_logged, work)

    def shutdown(self) -> None:
        for lane in self._lanes:
            lane.shutdown(wait=True)


def _logged(work: Callable[[], None]) -> None:
    try:
        work()
    except Exception:  # the lane goes on with the next event; Slack does not see this one fail
        log.exception("message event not handled")


def register(app: App, services: Services, lanes: Lanes | None = None) -> Lanes:
    lanes = lanes or Lanes()

    @app.event("message")
    def on_message(body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
        channel = str(event.get("channel") or "")
        team = services.for_team(str(body.get("team_id") or ""), context.bot_token)
        lanes.submit(channel, lambda: handle_message_event(team, body, event))

    return lanes


def handle_message_event(
    services: Services, body: Mapping[str, Any], event: Mapping[str, Any]
) -> None:
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
        elif subtype == "message_changed" and _is_tombstone(event):
            # a deleted thread parent stays as "This message was deleted." with its replies
            removed = _deleted_items(channel, {
                "deleted_ts": (event.get("message") or {}).get("ts"),
                "previous_message": event.get("previous_message") or {},
            })
        elif subtype == "message_changed":
            documents = services.source.message_documents(channel, _edited(event))
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
            ingest(session, documents, services.detector, now=now, workspace=workspace or None)
        for item in removed:
            mark_item_removed(session, source="slack", workspace=workspace, item_id=item, now=now)
    if documents and services.notifier is not None:
        services.notifier.send_pending()


def _is_tombstone(event: Mapping[str, Any]) -> bool:
    return (event.get("message") or {}).get("subtype") == "tombstone"


def _edited(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The new message of an edit, without the files it already had: those were read when they
    were shared, and an edit of the text (or an unfurl) does not change them."""
    message = dict(event.get("message") or {})
    before = {f.get("id") for f in (event.get("previous_message") or {}).get("files") or []
              if isinstance(f, Mapping)}
    files = [f for f in message.get("files") or []
             if isinstance(f, Mapping) and f.get("id") not in before]
    if files:
        message["files"] = files
    else:
        message.pop("files", None)
    return message


def _deleted_items(channel: str, event: Mapping[str, Any]) -> list[str]:
    ts = str(event.get("deleted_ts") or "")
    if not ts:
        return []
    previous = event.get("previous_message") or {}
    files = [f.get("id") for f in previous.get("files") or [] if isinstance(f, Mapping)]
    return [item_id(channel, ts), *(item_id(channel, ts, str(f)) for f in files if f)]
