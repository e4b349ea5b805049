"""app.yaml asks for exactly the scopes and events the code uses: no more, no fewer.

The code's use is read from the source: every Web API method called through slack_sdk
(`client.chat_postMessage(...)` or `api_call("chat.postMessage")`), every Bolt listener
(`app.event(...)`, `app.command(...)`), and Bolt's token-revocation listeners.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CODE = [*ROOT.glob("bot/**/*.py"), ROOT / "connectors" / "slack.py"]

# Bot-token scopes per Web API method (docs.slack.dev/reference/methods/<method>). A method
# needing one of several scopes lists all: public channels and private ones.
SCOPES_BY_METHOD: dict[str, set[str]] = {
    "auth.test": set(),
    "apps.connections.open": set(),  # the app-level token's connections:write
    "chat.delete": {"chat:write"},
    "chat.getPermalink": set(),
    "chat.postEphemeral": {"chat:write"},
    "chat.postMessage": {"chat:write"},
    "chat.update": {"chat:write"},
    # and im:history: the notifier reads its own DM back to tell whether a post went through
    "conversations.history": {"channels:history", "groups:history", "im:history"},
    "conversations.info": {"channels:read", "groups:read"},
    "conversations.join": {"channels:join"},
    "conversations.list": {"channels:read", "groups:read"},
    "conversations.members": {"channels:read", "groups:read"},
    "conversations.open": {"im:write"},
    "conversations.replies": {"channels:history", "groups:history"},
    "files.info": {"files:read"},
    "team.info": {"team:read"},
    "usergroups.users.list": {"usergroups:read"},
    "users.info": {"users:read"},
    "users.lookupByEmail": {"users:read.email"},
    "views.open": set(),
    "views.publish": set(),
    "views.update": set(),
}
SNAKE_CALL = re.compile(
    r"\.(auth|apps|chat|conversations|files|team|usergroups|users|views)_([A-Za-z_]+)\("
)
QUOTED_METHOD = re.compile(
    r"[\"']((?:auth|apps|chat|conversations|files|team|usergroups|users|views)\.[A-Za-z.]+)[\"']"
)
EVENT_LISTENER = re.compile(r"app\.event\(\s*[\"'{]\s*(?:\"type\"\s*:\s*)?[\"']?([a-z_]+)")


def _manifest() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "app.yaml").read_text())


def _source() -> str:
    return "\n".join(path.read_text() for path in CODE)


def methods_called() -> set[str]:
    source = _source()
    methods = {f"{a}.{b.replace('_', '.')}" for a, b in SNAKE_CALL.findall(source)}
    methods |= {m for m in QUOTED_METHOD.findall(source) if not m.endswith(".json")}
    # snake_case loses the camel case of a few names; map back to Slack's spelling
    by_lower = {name.lower(): name for name in SCOPES_BY_METHOD}
    return {by_lower.get(m.lower(), m) for m in methods}


def test_every_method_the_code_calls_is_known() -> None:
    unknown = methods_called() - set(SCOPES_BY_METHOD)
    assert not unknown, f"add these methods and their scopes to SCOPES_BY_METHOD: {unknown}"


def test_bot_scopes_are_exactly_what_the_code_needs() -> None:
    needed: set[str] = set()
    for method in methods_called():
        needed |= SCOPES_BY_METHOD.get(method, set())
    if "app.command(" in _source():
        needed.add("commands")
    granted = set(_manifest()["oauth_config"]["scopes"]["bot"])
    assert granted - needed == set(), "scopes in app.yaml that no code uses"
    assert needed - granted == set(), "scopes the code needs that app.yaml lacks"


def test_bot_events_are_exactly_what_the_code_listens_to() -> None:
    source = _source()
    listened = set(EVENT_LISTENER.findall(source))
    expected: set[str] = set()
    for event in listened:
        if event == "message":  # one listener, delivered per kind of conversation we read
            expected |= {"message.channels", "message.groups"}
        else:
            expected.add(event)
    if "enable_token_revocation_listeners" in source:
        expected |= {"app_uninstalled", "tokens_revoked"}
    subscribed = set(_manifest()["settings"]["event_subscriptions"]["bot_events"])
    assert subscribed == expected


def test_the_manifest_is_complete_for_a_newcomer() -> None:
    manifest = _manifest()
    info = manifest["display_information"]
    assert 1 <= len(info["name"]) <= 35 and len(info["description"]) <= 140
    assert 175 <= len(info["long_description"]) <= 4000
    features = manifest["features"]
    assert features["app_home"]["home_tab_enabled"] is True
    assert features["bot_user"]["display_name"]
    assert [c["command"] for c in features["slash_commands"]] == ["/leakwatch"]
    assert "app.command(\"/leakwatch\")" in _source()
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True


def test_the_oauth_install_asks_for_the_manifest_scopes() -> None:
    from bot.slack_app.oauth import BOT_SCOPES

    assert set(BOT_SCOPES) == set(_manifest()["oauth_config"]["scopes"]["bot"])
