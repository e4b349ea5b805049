"""Block Kit for everything LeakWatch shows in Slack. Pure functions: data in, blocks out.

Builders take a `Finding` (one secret and the occurrence a message is about) and return a
`Message` (fallback text + blocks) or a view dict. They never see a secret: only the masked
preview. Button values carry the finding id and nothing else.

Everything a user or another system controls (channel names, page titles, mail subjects, file
names, reasons typed into a modal) goes through `escape()`, so it cannot add links, mentions or
formatting to the message. Every text is cut to Slack's limits (docs.slack.dev/reference/
block-kit/blocks: 50 blocks a message, 100 a view, 3,000 characters a section, 75 a button text).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.notify.playbooks import Playbook

# action_id of each button; slack_app/actions.py listens on these
ACTION_OPEN_KEYS = "leakwatch_open_keys"
ACTION_OPEN_USAGE = "leakwatch_open_usage"
ACTION_STEPS = "leakwatch_rotation_steps"
ACTION_ROTATED = "leakwatch_rotated"
ACTION_NOT_SECRET = "leakwatch_not_secret"
ACTION_DELETE = "leakwatch_delete_message"
ACTION_REOPEN = "leakwatch_reopen"
# callback_id of the modals; slack_app/views.py listens on these
VIEW_NOT_SECRET = "leakwatch_not_secret_reason"
VIEW_STEPS = "leakwatch_rotation_steps_view"
REASON_BLOCK = "reason"
REASON_INPUT = "reason_input"

MESSAGE_MAX_BLOCKS = 50
VIEW_MAX_BLOCKS = 100
SECTION_MAX = 3000
BUTTON_TEXT_MAX = 75
HEADER_MAX = 150
CONTEXT_MAX_ELEMENTS = 10
FIELD_MAX = 200  # our own cap for one user-controlled name inside a sentence

RISK_ICON = {
    "critical": ":red_circle:",
    "high": ":large_orange_circle:",
    "medium": ":large_yellow_circle:",
    "low": ":white_circle:",
}
STATUS_TEXT = {
    "open": "Open",
    "rotated": "Rotated",
    "not_a_secret": "Not a secret",
    "accepted": "Risk accepted",
}


@dataclass(frozen=True)
class Place:
    """Where a secret was seen: one occurrence, as the messages describe it."""

    source: str  # slack | confluence | email | file | ...
    unit: str = ""  # channel id, space key, mail folder
    unit_name: str = ""  # channel name, space name, folder name
    title: str = ""  # page title, mail subject, file name
    item_id: str = ""
    permalink: str | None = None
    author: str = ""  # Slack user id, or an email address
    posted_at: datetime | None = None
    removed: bool = False


@dataclass(frozen=True)
class Finding:
    """One secret (never its value) and the occurrence this message is about."""

    id: int
    rule_id: str
    provider: str
    name: str  # "OpenAI project API key"
    preview: str  # masked: "sk-proj-…9fQa"
    risk_level: str
    place: Place
    risk_score: int = 0
    risk_reasons: tuple[str, ...] = ()
    status: str = "open"
    status_by: str | None = None
    status_at: datetime | None = None
    status_reason: str | None = None
    first_seen: datetime | None = None
    occurrence_count: int = 1

    @property
    def is_open(self) -> bool:
        return self.status == "open"


@dataclass(frozen=True)
class Message:
    """A chat.postMessage / chat.update payload: the fallback text and the blocks."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class AdminSummary:
    """What security admins see on top of App Home."""

    by_status: dict[str, int]
    by_provider: dict[str, int]
    by_source: dict[str, int]
    oldest_open: Sequence[Finding] = ()


# -- text safety ---------------------------------------------------------------------------

_ENTITY_TAIL = re.compile(r"&[a-z#0-9]*$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")
_BROADCAST = re.compile(r"@(here|channel|everyone)\b", re.IGNORECASE)
_FORMATTING = re.compile(r"([*_~`])")


def escape(
    text: str | None, limit: int = FIELD_MAX, single_line: bool = True, code: bool = False
) -> str:
    """Make user-controlled text inert in mrkdwn, and cut it to `limit` characters.

    `&`, `<` and `>` are escaped as Slack documents (no links, mentions or `<!here>`),
    broadcast words get a word joiner so no client turns them into pings, and formatting
    characters get a zero-width space so `*bold*` stays literal.
    """
    raw = (text or "").replace("\r", " ")
    if single_line:
        raw = " ".join(raw.split())
    raw = _cut(raw, limit)
    raw = raw.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    raw = _BROADCAST.sub(lambda m: "@\u2060" + m.group(1), raw)
    if code:  # inside `…` formatting is off already; only a backtick could end the span
        return raw.replace("`", "ˋ")
    return _FORMATTING.sub("\u200b\\1", raw)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def fit(mrkdwn: str, limit: int = SECTION_MAX) -> str:
    """Cut composed mrkdwn to `limit` without leaving half a link or half an entity."""
    if len(mrkdwn) <= limit:
        return mrkdwn
    cut = mrkdwn[: limit - 1]
    opened, closed = cut.rfind("<"), cut.rfind(">")
    if opened > closed:
        cut = cut[:opened]
    cut = _ENTITY_TAIL.sub("", cut)
    return cut + "…"


def user_ref(user: str | None) -> str:
    """`<@U123>` for a Slack user id; anything else (an email, a name) as escaped text."""
    if not user:
        return "someone"
    return f"<@{user}>" if _USER_ID.match(user) else escape(user, 120)


def link(url: str | None, label: str) -> str:
    """A mrkdwn link to an http(s) URL, with `label` already escaped; the label alone otherwise."""
    if not url:
        return label
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 2000:
        return label
    safe = quote(url, safe=":/?#[]@!$&'()*+,;=%~")
    return f"<{safe}|{label}>"


def when(moment: datetime | None) -> str:
    """Slack date formatting: shown in the reader's time zone, UTC text as fallback."""
    if moment is None:
        return "at an unknown time"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    fallback = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def _is_url(url: str | None) -> bool:
    return bool(url) and urlsplit(url or "").scheme == "https" and len(url or "") <= 3000


# -- pieces --------------------------------------------------------------------------------


def describe_place(place: Place) -> str:
    """Where, in words: "in #general", "on the Confluence page *Runbook* (space OPS)", ..."""
    title = escape(place.title)
    unit = escape(place.unit_name or place.unit)
    if place.source == "slack":
        where = f"in #{unit}" if unit else "in a Slack conversation"
        if title:
            where += f" (file {title})"
        label = "the message"
    elif place.source == "confluence":
        where = f"on the Confluence page *{title or 'untitled'}*"
        if unit:
            where += f" (space {unit})"
        label = "the page"
    elif place.source == "email":
        where = f"in the email *{title or '(no subject)'}*"
        if unit:
            where += f" (folder {unit})"
        label = "the email"
    else:
        where = f"in {escape(place.source)} *{title or unit or place.item_id or 'an item'}*"
        label = "the item"
    if place.permalink and _is_url(place.permalink):
        where += f" · {link(place.permalink, 'Open ' + label)}"
    return where


def _risk_line(finding: Finding) -> str:
    level = finding.risk_level.lower()
    icon = RISK_ICON.get(level, ":white_circle:")
    return f"{icon} *{escape(level.capitalize(), 20)} risk*"


def _reasons(finding: Finding) -> str:
    if not finding.risk_reasons:
        return ""
    lines = [f"• {escape(reason, 300)}" for reason in finding.risk_reasons[:10]]
    if len(finding.risk_reasons) > 10:
        lines.append(f"• and {len(finding.risk_reasons) - 10} more")
    return "\n".join(lines)


def status_line(finding: Finding) -> str:
    """The state of a finding and who set it: "Marked rotated by @ana on ..."."""
    if finding.is_open:
        return ":hourglass_flowing_sand: *Open*: rotate it, then press *I rotated it*."
    label = STATUS_TEXT.get(finding.status, escape(finding.status, 40))
    text = f":white_check_mark: *{label}*, set by {user_ref(finding.status_by)}"
    if finding.status_at is not None:
        text += f" {when(finding.status_at)}"
    if finding.status_reason:
        text += f"\n> {escape(finding.status_reason, 500)}"
    return text


def _button(
    text: str,
    action_id: str,
    value: str | None = None,
    url: str | None = None,
    style: str | None = None,
    confirm: ConfirmObject | None = None,
) -> ButtonElement:
    return ButtonElement(
        text=PlainTextObject(text=_cut(text, BUTTON_TEXT_MAX), emoji=True),
        action_id=action_id,
        value=value,
        url=url,
        style=style,
        confirm=confirm,
    )


def finding_buttons(
    finding: Finding, playbook: Playbook, can_delete: bool, block_id: str | None = None
) -> ActionsBlock:
    """The buttons of an alert; only link buttons and the steps once the finding is closed."""
    value = str(finding.id)
    elements: list[ButtonElement] = []
    if playbook.keys_url:
        elements.append(
            _button(
                f"Open {playbook.name} keys",
                ACTION_OPEN_KEYS,
                value,
                url=playbook.keys_url,
                style="primary" if finding.is_open else None,
            )
        )
    elements.append(_button("Rotation steps", ACTION_STEPS, value))
    if finding.is_open:
        elements.append(
            _button(
                "I rotated it",
                ACTION_ROTATED,
                value,
                style=None if playbook.keys_url else "primary",
            )
        )
        elements.append(_button("Not a secret", ACTION_NOT_SECRET, value))
        if can_delete and finding.place.source == "slack" and not finding.place.removed:
            elements.append(
                _button(
                    "Delete the message",
                    ACTION_DELETE,
                    value,
                    style="danger",
                    confirm=ConfirmObject(
                        title="Delete the message?",
                        text="This deletes the Slack message that holds the key, for everyone.",
                        confirm="Delete",
                        deny="Keep it",
                        style="danger",
                    ),
                )
            )
    else:
        elements.append(_button("Reopen", ACTION_REOPEN, value))
    return ActionsBlock(elements=elements, block_id=block_id or f"finding:{finding.id}")


def how_to_delete(place: Place) -> str:
    """What the poster does to remove the key from where they pasted it."""
    if place.removed:
        return ":wastebasket: The original has been deleted."
    if place.source == "slack":
        return (
            ":wastebasket: Please delete the message: hover over it, choose *More actions* "
            "(⋯), then *Delete message*. Deleting does not make the key safe: rotate it too."
        )
    if place.source == "confluence":
        return (
            ":wastebasket: Please edit the page to remove the key, then delete the old "
            "versions in *Page history*: the key stays readable there."
        )
    if place.source == "email":
        return (
            ":wastebasket: Mail cannot be recalled from everyone's inbox: rotating the key "
            "is the only fix. Ask recipients to delete it."
        )
    return ":wastebasket: Remove the key from where it is stored, and rotate it."


def _context(*texts: str) -> ContextBlock:
    return ContextBlock(
        elements=[
            MarkdownTextObject(text=fit(t, SECTION_MAX)) for t in texts[:CONTEXT_MAX_ELEMENTS]
        ]
    )


def _section(text: str, block_id: str | None = None) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=fit(text)), block_id=block_id)


def _dicts(blocks: Iterable[Block]) -> list[dict[str, Any]]:
    return [b.to_dict() for b in blocks]


def _what(finding: Finding) -> str:
    return f"{escape(finding.name, 120)} `{escape(finding.preview, 60, code=True)}`"


def _fallback(prefix: str, finding: Finding) -> str:
    return _cut(f"{prefix}: {finding.name} ({finding.preview}), {finding.risk_level} risk", 300)


# -- messages ------------------------------------------------------------------------------


def alert_message(
    finding: Finding, playbook: Playbook, can_delete: bool = False, regression: bool = False
) -> Message:
    """The DM to the poster; also the updated DM after a click (the status line changes).

    `regression`: the key had been marked rotated and was seen again, so it alerts again.
    """
    place = finding.place
    if regression:
        title = "A key marked rotated was seen again"
    elif finding.is_open:
        title = "A credential you shared is exposed"
    else:
        title = "Credential alert"
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=_cut(title, HEADER_MAX))),
        _section(
            f"LeakWatch found {'an' if finding.name[:1].lower() in 'aeiou' else 'a'} "
            f"*{_what(finding)}* {describe_place(place)}, posted {when(place.posted_at)}.\n"
            f"Only the masked form is shown here; the full key is never stored or sent.",
            block_id=f"what:{finding.id}",
        ),
        _section(f"{_risk_line(finding)}\n{_reasons(finding)}".rstrip(), block_id="risk"),
    ]
    if finding.is_open:
        blocks.append(
            _section(
                f"*What someone with this key can do:* {escape(playbook.can_do, 600, False)}\n"
                f"Rotate it now: open the keys page, create a new key, then revoke this one.",
                block_id="impact",
            )
        )
    blocks.append(_section(status_line(finding), block_id="status"))
    blocks.append(finding_buttons(finding, playbook, can_delete))
    notes = []
    if finding.is_open and (place.removed or not (can_delete and place.source == "slack")):
        notes.append(how_to_delete(place))
    if finding.occurrence_count > 1:
        notes.append(
            f"Seen in {finding.occurrence_count} places; further sightings are in this thread."
        )
    if notes:
        blocks.append(_context(*notes))
    return Message(
        text=_fallback("LeakWatch found a credential you shared", finding), blocks=_dicts(blocks)
    )


def further_occurrence_message(finding: Finding) -> Message:
    """A thread reply under the first DM: the same key, seen in another place."""
    text = (
        f":eyes: The same key was seen again {describe_place(finding.place)}, "
        f"posted {when(finding.place.posted_at)}."
    )
    if finding.is_open:
        text += "\nIt is still open: rotating it covers every place it appears."
    return Message(
        text=_fallback("The same credential was seen again", finding),
        blocks=_dicts([_section(text, block_id=f"again:{finding.id}")]),
    )


def security_alert_message(
    finding: Finding,
    playbook: Playbook,
    can_delete: bool = False,
    escalation_hours: float | None = None,
    note: str | None = None,
) -> Message:
    """The security channel's copy: high-risk findings at once, escalations, and alerts whose
    poster could not be reached (`note` says why, as plain words we wrote)."""
    place = finding.place
    if escalation_hours is not None:
        title = f"Still open after {_hours(escalation_hours)}"
        prefix = "Escalation"
    else:
        title = f"{finding.risk_level.capitalize()}-risk credential exposed"
        prefix = "Security alert"
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=_cut(title, HEADER_MAX))),
        _section(
            f"*{_what(finding)}* {describe_place(place)}\n"
            f"Posted by {user_ref(place.author)} {when(place.posted_at)}.",
            block_id=f"what:{finding.id}",
        ),
        _section(f"{_risk_line(finding)}\n{_reasons(finding)}".rstrip(), block_id="risk"),
    ]
    if playbook.revoke_api and finding.is_open:
        blocks.append(_context(f"Revoke API: `{escape(playbook.revoke_api, 300, code=True)}`"))
    if note:
        blocks.append(_context(f":warning: {escape(note, 500)}"))
    blocks.append(_section(status_line(finding), block_id="status"))
    blocks.append(finding_buttons(finding, playbook, can_delete))
    return Message(text=_fallback(prefix, finding), blocks=_dicts(blocks))


def reminder_message(
    finding: Finding, playbook: Playbook, hours_open: float, can_delete: bool = False
) -> Message:
    """A nudge to the poster while the finding stays open."""
    blocks: list[Block] = [
        _section(
            f":bell: Reminder: the *{_what(finding)}* you shared {describe_place(finding.place)} "
            f"has been open for {_hours(hours_open)}. Please rotate it; it takes a few minutes.",
            block_id=f"reminder:{finding.id}",
        ),
        _section(f"{_risk_line(finding)}", block_id="risk"),
        _section(status_line(finding), block_id="status"),
        finding_buttons(finding, playbook, can_delete),
    ]
    return Message(
        text=_fallback("Reminder: rotate the credential you shared", finding), blocks=_dicts(blocks)
    )


def escalation_message(
    finding: Finding, playbook: Playbook, hours_open: float, can_delete: bool = False
) -> Message:
    return security_alert_message(finding, playbook, can_delete, escalation_hours=hours_open)


def _hours(hours: float) -> str:
    if hours >= 48:
        return f"{round(hours / 24)} days"
    whole = round(hours)
    return f"{whole} hour" if whole == 1 else f"{whole} hours"


def refusal_text(finding_id: int) -> str:
    return (
        f"Only the person who posted this key, or a security admin, can change finding "
        f"{finding_id}. Ask them, or your security team."
    )


# -- modals --------------------------------------------------------------------------------


def rotation_steps_view(finding: Finding, playbook: Playbook) -> dict[str, Any]:
    """The "Rotation steps" modal: the playbook for this credential type."""
    steps = "\n".join(
        f"{i}. {escape(step, 600, False)}" for i, step in enumerate(playbook.steps, 1)
    )
    blocks: list[Block] = [
        _section(f"*{_what(finding)}*\n{_risk_line(finding)}"),
        _section(f"*Rotate it*\n{steps}", block_id="steps"),
        _section(
            f"*What someone with it can do*\n{escape(playbook.can_do, 600, False)}",
            block_id="can_do",
        ),
    ]
    if playbook.revoke_api:
        blocks.append(
            _context(f"Revoke API (for admins): `{escape(playbook.revoke_api, 300, code=True)}`")
        )
    links = [
        b
        for b in (
            _button(
                f"Open {playbook.name} keys",
                ACTION_OPEN_KEYS,
                str(finding.id),
                url=playbook.keys_url,
                style="primary",
            )
            if playbook.keys_url
            else None,
            _button(
                "Check usage and billing",
                ACTION_OPEN_USAGE,
                str(finding.id),
                url=playbook.usage_url,
            )
            if playbook.usage_url
            else None,
        )
        if b is not None
    ]
    if links:
        blocks.append(ActionsBlock(elements=links, block_id="links"))
    blocks.append(_context("When it is done, press *I rotated it* in the alert."))
    view = View(
        type="modal",
        callback_id=VIEW_STEPS,
        title=_cut("Rotation steps", 24),
        close="Close",
        blocks=blocks,
        private_metadata=str(finding.id),
    )
    return view.to_dict()


def not_a_secret_view(finding: Finding, private_metadata: str) -> dict[str, Any]:
    """The modal asking why the finding is not a secret."""
    view = View(
        type="modal",
        callback_id=VIEW_NOT_SECRET,
        title="Not a secret",
        submit="Save",
        close="Cancel",
        private_metadata=private_metadata[:3000],
        blocks=[
            _section(f"Why is *{_what(finding)}* not a real credential?"),
            InputBlock(
                block_id=REASON_BLOCK,
                label="Reason",
                hint="For example: a revoked test key, a documentation sample, a placeholder.",
                element=PlainTextInputElement(
                    action_id=REASON_INPUT, multiline=True, min_length=3, max_length=500
                ),
            ),
            _context("The security team sees this reason."),
        ],
    )
    return view.to_dict()


# -- App Home ------------------------------------------------------------------------------


def home_view(
    own_open: Sequence[Finding],
    playbooks: dict[int, Playbook],
    can_delete: bool = False,
    summary: AdminSummary | None = None,
    total_own_open: int | None = None,
) -> dict[str, Any]:
    """App Home: the user's own open findings with the alert buttons; stats for admins."""
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text="LeakWatch"))]
    budget = VIEW_MAX_BLOCKS - 4  # header, the "more" notes, the footer
    if summary is not None:
        admin_blocks = _admin_blocks(summary)
        blocks.extend(admin_blocks)
        budget -= len(admin_blocks)
    blocks.append(_section("*Your open findings*"))
    budget -= 1
    total = len(own_open) if total_own_open is None else total_own_open
    if not own_open:
        blocks.append(_section(":tada: Nothing open. Thank you for keeping keys out of chat."))
    shown = 0
    for finding in own_open:
        if budget < 3:
            break
        playbook = playbooks[finding.id]
        blocks.append(
            _section(
                f"{_risk_line(finding)} · *{_what(finding)}* {describe_place(finding.place)}, "
                f"posted {when(finding.place.posted_at)}",
                block_id=f"home:{finding.id}",
            )
        )
        blocks.append(
            finding_buttons(finding, playbook, can_delete, block_id=f"home-actions:{finding.id}")
        )
        blocks.append(DividerBlock())
        budget -= 3
        shown += 1
    if total > shown:
        blocks.append(_context(f"And {total - shown} more not shown here."))
    blocks.append(
        _context("LeakWatch never stores or shows full keys. `/leakwatch help` for commands.")
    )
    return View(type="home", blocks=blocks[:VIEW_MAX_BLOCKS]).to_dict()


def _counts(title: str, counts: dict[str, int]) -> str:
    if not counts:
        return f"*{title}*: none"
    parts = [f"{escape(k, 60)} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:30]]
    return f"*{title}*: " + " · ".join(parts)


def _admin_blocks(summary: AdminSummary) -> list[Block]:
    blocks: list[Block] = [
        _section("*Security overview*"),
        _section(
            "\n".join(
                [
                    _counts(
                        "By status",
                        {STATUS_TEXT.get(k, k): v for k, v in summary.by_status.items()},
                    ),
                    _counts("Open by provider", summary.by_provider),
                    _counts("Open by source", summary.by_source),
                ]
            )
        ),
    ]
    if summary.oldest_open:
        lines = [
            f"• {_risk_line(f)} {_what(f)} from {user_ref(f.place.author)}, "
            f"first seen {when(f.first_seen)} {describe_place(f.place)}"
            for f in summary.oldest_open[:10]
        ]
        blocks.append(_section("*Oldest open findings*\n" + "\n".join(lines)))
    blocks.append(DividerBlock())
    return blocks
