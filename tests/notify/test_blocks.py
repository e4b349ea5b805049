"""Block Kit builders: what the DM says, that it never carries a key, and Slack's limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.notify import blocks as b
from bot.notify.playbooks import load_playbooks, playbook_for

WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def finding(**changes: Any) -> b.Finding:
    place = changes.pop("place", None) or b.Place(
        source="slack",
        unit="C0GENERAL",
        unit_name="general",
        item_id="1700000000.000100",
        permalink="https://acme.slack.com/archives/C0GENERAL/p1700000000000100",
        author="U0POSTER",
        posted_at=WHEN,
    )
    base: dict[str, Any] = dict(
        id=42,
        rule_id="openai_project_key",
        provider="OpenAI",
        name="OpenAI project API key",
        preview="sk-proj-…9fQa",
        risk_level="critical",
        risk_score=92,
        risk_reasons=("LLM key with billing", "channel has 340 members"),
        place=place,
        first_seen=WHEN,
    )
    base.update(changes)
    return b.Finding(**base)


def all_text(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False)


def buttons(message_blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for block in message_blocks:
        for element in block.get("elements", []):
            if element.get("type") == "button":
                found[element["action_id"]] = element
    return found


def assert_valid_message(message: b.Message) -> None:
    assert len(message.blocks) <= b.MESSAGE_MAX_BLOCKS
    for block in message.blocks:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()  # raises on any per-block limit
        text = block.get("text")
        if isinstance(text, dict):
            assert len(text["text"]) <= b.SECTION_MAX
        for element in block.get("elements", []):
            if element.get("type") == "button":
                assert len(element["text"]["text"]) <= b.BUTTON_TEXT_MAX
                assert element.get("value", "").isdigit()


def test_alert_dm_shows_what_where_when_risk_and_the_buttons() -> None:
    f = finding()
    message = b.alert_message(f, playbook_for(f.rule_id, f.provider), can_delete=False)
    assert_valid_message(message)
    text = all_text(message.blocks)
    assert "OpenAI project API key" in text and "sk-proj-…9fQa" in text
    assert "#general" in text and "p1700000000000100|Open the message>" in text
    assert f"<!date^{int(WHEN.timestamp())}^" in text
    assert "Critical risk" in text and "channel has 340 members" in text
    found = buttons(message.blocks)
    assert found[b.ACTION_OPEN_KEYS]["url"] == "https://platform.openai.com/api-keys"
    assert found[b.ACTION_OPEN_KEYS]["text"]["text"] == "Open OpenAI keys"
    assert {b.ACTION_STEPS, b.ACTION_ROTATED, b.ACTION_NOT_SECRET} <= set(found)
    assert b.ACTION_DELETE not in found
    assert "Delete message" in text  # tells the poster how to delete it themselves
    assert all(button["value"] == "42" for button in found.values())


def test_delete_button_only_with_an_admin_token_and_only_for_slack() -> None:
    f = finding()
    with_token = b.alert_message(f, playbook_for(f.rule_id, f.provider), can_delete=True)
    assert b.ACTION_DELETE in buttons(with_token.blocks)
    assert "Delete message" not in all_text(with_token.blocks)
    mail = finding(place=b.Place(source="email", title="Prod creds", author="ana@acme.test"))
    from_mail = b.alert_message(mail, playbook_for(mail.rule_id, mail.provider), can_delete=True)
    assert b.ACTION_DELETE not in buttons(from_mail.blocks)


def test_dm_for_each_source_names_the_place() -> None:
    conf = finding(
        place=b.Place(
            source="confluence",
            unit="OPS",
            unit_name="Operations",
            title="Deploy runbook",
            permalink="https://wiki.acme.test/x/1",
        )
    )
    mail = finding(place=b.Place(source="email", unit="INBOX", title="Re: staging access"))
    pb = playbook_for("openai_project_key", "OpenAI")
    conf_text = all_text(b.alert_message(conf, pb).blocks)
    mail_text = all_text(b.alert_message(mail, pb).blocks)
    assert "Confluence page *Deploy runbook* (space Operations)" in conf_text
    assert "<https://wiki.acme.test/x/1|Open the page>" in conf_text
    assert "email *Re: staging access*" in mail_text
    assert "Page history" in conf_text and "cannot be recalled" in mail_text


def test_user_controlled_text_cannot_inject_links_mentions_or_pings() -> None:
    hostile = "<!here> <@U0BOSS> *urgent* <https://evil.test|click> @channel & co"
    f = finding(
        place=b.Place(
            source="confluence", title=hostile, unit_name=hostile, permalink="javascript:alert(1)"
        )
    )
    message = b.alert_message(f, playbook_for(f.rule_id, f.provider))
    text = "".join(blk.get("text", {}).get("text", "") for blk in message.blocks)
    assert "<!here>" not in text and "<@U0BOSS>" not in text and "<https://evil" not in text
    assert "&lt;!here&gt;" in text and "&amp; co" in text
    assert "@channel" not in text and "*urgent*" not in text
    assert "javascript:" not in text  # a non-http link is dropped, the label stays


def test_after_a_click_the_dm_shows_the_state_and_who_set_it() -> None:
    f = finding(
        status="not_a_secret",
        status_by="U0ADMIN",
        status_at=WHEN,
        status_reason="<b>a doc sample</b>",
    )
    message = b.alert_message(f, playbook_for(f.rule_id, f.provider))
    assert_valid_message(message)
    text = all_text(message.blocks)
    assert "Not a secret" in text and "<@U0ADMIN>" in text and "&lt;b&gt;a doc sample" in text
    found = buttons(message.blocks)
    assert b.ACTION_ROTATED not in found and b.ACTION_NOT_SECRET not in found
    assert b.ACTION_REOPEN in found


def test_thread_reply_security_alert_reminder_and_escalation() -> None:
    f = finding()
    pb = playbook_for(f.rule_id, f.provider)
    reply = b.further_occurrence_message(f)
    security = b.security_alert_message(f, pb)
    reminder = b.reminder_message(f, pb, hours_open=24)
    escalation = b.escalation_message(f, pb, hours_open=72)
    for message in (reply, security, reminder, escalation):
        assert_valid_message(message)
    assert "seen again" in all_text(reply.blocks)
    assert "<@U0POSTER>" in all_text(security.blocks)
    assert "DELETE /v1/organization/projects" in all_text(security.blocks)
    assert "open for 24 hours" in all_text(reminder.blocks)
    assert "Still open after 3 days" in all_text(escalation.blocks)


def test_modals_are_valid_views() -> None:
    f = finding()
    pb = playbook_for(f.rule_id, f.provider)
    steps = b.rotation_steps_view(f, pb)
    View(**steps).validate_json()
    assert steps["callback_id"] == b.VIEW_STEPS
    assert "1. Open the API keys page" in all_text(steps)
    assert "https://platform.openai.com/usage" in all_text(steps)
    reason = b.not_a_secret_view(f, "42|D123|1700.1")
    View(**reason).validate_json()
    assert reason["blocks"][1]["block_id"] == b.REASON_BLOCK


text_strategy = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=6000
)
places = st.builds(
    b.Place,
    source=st.sampled_from(["slack", "confluence", "email", "file", "weird<src>"]),
    unit=text_strategy,
    unit_name=text_strategy,
    title=text_strategy,
    item_id=text_strategy,
    permalink=st.one_of(st.none(), st.builds(lambda t: "https://x.test/" + t, text_strategy)),
    author=text_strategy,
    posted_at=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
    removed=st.booleans(),
)
findings = st.builds(
    b.Finding,
    id=st.integers(min_value=1, max_value=2**62),
    rule_id=st.sampled_from(["openai_project_key", "private_key_pem", "nope"]),
    provider=st.sampled_from(["OpenAI", "any", "Unknown <x>"]),
    name=text_strategy,
    preview=text_strategy,
    risk_level=st.sampled_from(["critical", "high", "medium", "low", "<odd>"]),
    place=places,
    risk_score=st.integers(0, 100),
    risk_reasons=st.lists(text_strategy, max_size=40).map(tuple),
    status=st.sampled_from(["open", "rotated", "not_a_secret", "accepted"]),
    status_by=st.one_of(st.none(), text_strategy, st.just("U0ADMIN")),
    status_at=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
    status_reason=st.one_of(st.none(), text_strategy),
    first_seen=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
    occurrence_count=st.integers(1, 10_000),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(f=findings, can_delete=st.booleans())
def test_any_finding_fits_slack_limits(f: b.Finding, can_delete: bool) -> None:
    pb = playbook_for(f.rule_id, f.provider)
    for message in (
        b.alert_message(f, pb, can_delete),
        b.further_occurrence_message(f),
        b.security_alert_message(f, pb, can_delete),
        b.reminder_message(f, pb, 30, can_delete),
        b.escalation_message(f, pb, 100, can_delete),
    ):
        assert_valid_message(message)
        assert "<!here" not in all_text(message.blocks)
    View(**b.rotation_steps_view(f, pb)).validate_json()
    View(**b.not_a_secret_view(f, str(f.id))).validate_json()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(own=st.lists(findings, max_size=45), oldest=st.lists(findings, max_size=15))
def test_app_home_stays_within_100_blocks(own: list[b.Finding], oldest: list[b.Finding]) -> None:
    book = load_playbooks()
    own = [f if i == 0 else b.Finding(**{**f.__dict__, "id": f.id + i}) for i, f in enumerate(own)]
    playbooks = {f.id: book.for_rule(f.rule_id, f.provider) for f in own}
    summary = b.AdminSummary(
        by_status={"open": 3},
        by_provider={"OpenAI": 2, "<x>": 1},
        by_source={"slack": 3},
        oldest_open=oldest,
    )
    view = b.home_view(own, playbooks, can_delete=True, summary=summary)
    View(**view).validate_json()
    assert len(view["blocks"]) <= b.VIEW_MAX_BLOCKS
    shown = sum(1 for blk in view["blocks"] if str(blk.get("block_id", "")).startswith("home:"))
    assert shown == len(own) or f"And {len(own) - shown} more not shown" in all_text(view)
    assert shown >= min(len(own), 25)
