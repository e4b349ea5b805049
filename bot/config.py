"""Settings from the environment and an optional .env file.

This is the only module that reads os.environ. Everything else receives a `Settings` (or one of
its sections) from bot/__main__.py. Each section belongs to one part of the bot; a connector's
section is None when that source is not configured.

A missing or malformed setting raises `ConfigError`, whose message names the variable. Secret
values (tokens, passwords, keys) are kept out of every repr.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_DATA_DIR = Path("data")


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names it and says what is expected."""


@dataclass(frozen=True)
class SlackSettings:
    bot_token: str = field(repr=False)
    signing_secret: str = field(default="", repr=False)
    app_token: str = field(default="", repr=False)  # xapp-…: Socket Mode
    admin_token: str = field(default="", repr=False)  # an admin's xoxp-…: deletes others' messages
    api_url: str = "https://slack.com/api/"
    history_page_size: int = 15  # Slack's cap for apps outside its Marketplace
    # Seconds between two history/replies calls: 60 for apps outside the Marketplace (1/min),
    # 0 for internal apps (Tier 3); 429 + Retry-After is honoured either way.
    history_pace_seconds: float = 0.0
    poll_interval_seconds: int = 300
    join_public_channels: bool = False
    scan_bot_messages: bool = False
    file_max_bytes: int = 1_000_000


@dataclass(frozen=True)
class SlackOAuthSettings:
    """Many workspaces: Slack's OAuth install flow, each workspace's token encrypted at rest."""

    client_id: str
    client_secret: str = field(repr=False)
    token_key: str = field(repr=False)  # LEAKWATCH_TOKEN_KEY


@dataclass(frozen=True)
class ConfluenceSettings:
    url: str
    user: str = ""
    token: str = field(default="", repr=False)  # Cloud: API token with CONFLUENCE_USER
    pat: str = field(default="", repr=False)  # Data Center: personal access token
    spaces: tuple[str, ...] = ()  # empty: every space the account can read
    poll_interval_seconds: int = 900
    attachment_max_bytes: int = 1_000_000


@dataclass(frozen=True)
class ImapSettings:
    host: str
    user: str
    password: str = field(repr=False)
    port: int = 993
    security: str = "ssl"  # ssl, starttls or plain (plain only on loopback or when allowed)
    folders: tuple[str, ...] = ("INBOX",)
    allow_plain: bool = False
    poll_interval_seconds: int = 900
    attachment_max_bytes: int = 1_000_000


@dataclass(frozen=True)
class Settings:
    database_url: str
    data_dir: Path = DEFAULT_DATA_DIR
    fingerprint_key: str = field(default="", repr=False)  # empty: generated into data_dir
    security_channel: str = ""
    digest_channel: str = ""
    admins: tuple[str, ...] = ()  # Slack user ids (U…) or user group ids (S…)
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    digest_day: str = "mon"
    digest_time: str = "09:00"
    reminder_hours: float = 24.0
    escalation_hours: float = 72.0
    company_domains: tuple[str, ...] = ()
    # Many workspaces: the team whose people are told about Confluence and email findings.
    home_workspace: str = ""
    log_level: str = "INFO"
    slack: SlackSettings | None = None
    slack_oauth: SlackOAuthSettings | None = None
    confluence: ConfluenceSettings | None = None
    imap: ImapSettings | None = None

    @property
    def fingerprint_key_file(self) -> Path:
        return self.data_dir / "fingerprint.key"

    @property
    def cache_dir(self) -> Path:
        """Derived files that are safe to delete: the compiled detection database."""
        return self.data_dir / "cache"


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")
) -> Settings:
    """Read settings from `environ` (default: os.environ), after loading `env_file` if present.

    Variables already set in the environment win over the .env file.
    """
    if environ is None:
        if env_file is not None and env_file.is_file():
            from dotenv import load_dotenv

            load_dotenv(env_file, override=False)
        environ = os.environ
    env = _Env(environ)
    data_dir = Path(env.text("LEAKWATCH_DATA_DIR", str(DEFAULT_DATA_DIR)))
    return Settings(
        database_url=env.text("DATABASE_URL", f"sqlite:///{data_dir / 'leakwatch.db'}"),
        data_dir=data_dir,
        fingerprint_key=env.text("LEAKWATCH_FINGERPRINT_KEY", ""),
        security_channel=env.text("LEAKWATCH_SECURITY_CHANNEL", ""),
        digest_channel=env.text(
            "LEAKWATCH_DIGEST_CHANNEL", env.text("LEAKWATCH_SECURITY_CHANNEL", "")
        ),
        admins=env.items("LEAKWATCH_ADMINS"),
        timezone=env.zone("LEAKWATCH_TIMEZONE", "UTC"),
        digest_day=env.choice(
            "LEAKWATCH_DIGEST_DAY", "mon", ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        ),
        digest_time=env.clock("LEAKWATCH_DIGEST_TIME", "09:00"),
        reminder_hours=env.number("LEAKWATCH_REMINDER_HOURS", 24.0),
        escalation_hours=env.number("LEAKWATCH_ESCALATION_HOURS", 72.0),
        company_domains=tuple(d.lower() for d in env.items("LEAKWATCH_COMPANY_DOMAINS")),
        home_workspace=env.text("LEAKWATCH_HOME_WORKSPACE", ""),
        log_level=env.choice(
            "LEAKWATCH_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"), upper=True
        ),
        slack=_slack(env),
        slack_oauth=_slack_oauth(env),
        confluence=_confluence(env),
        imap=_imap(env),
    )


def _slack(env: _Env) -> SlackSettings | None:
    """Slack is on with a bot token (one workspace) or an OAuth client id (many workspaces)."""
    if not env.text("SLACK_BOT_TOKEN", "") and not env.text("SLACK_CLIENT_ID", ""):
        return None
    api_url = env.text("SLACK_API_URL", "https://slack.com/api/")
    return SlackSettings(
        bot_token=env.text("SLACK_BOT_TOKEN", ""),
        signing_secret=env.text("SLACK_SIGNING_SECRET", ""),
        app_token=env.text("SLACK_APP_TOKEN", ""),
        admin_token=env.text("SLACK_ADMIN_TOKEN", ""),
        api_url=api_url if api_url.endswith("/") else api_url + "/",
        history_page_size=env.integer("SLACK_HISTORY_PAGE_SIZE", 15, low=1, high=999),
        history_pace_seconds=float(env.integer("SLACK_HISTORY_PACE_SECONDS", 0, low=0, high=3600)),
        poll_interval_seconds=env.integer("SLACK_POLL_INTERVAL", 300, low=10),
        join_public_channels=env.flag("SLACK_JOIN_PUBLIC_CHANNELS", False),
        scan_bot_messages=env.flag("SLACK_SCAN_BOT_MESSAGES", False),
        file_max_bytes=env.integer("SLACK_FILE_MAX_BYTES", 1_000_000, low=0),
    )


def _slack_oauth(env: _Env) -> SlackOAuthSettings | None:
    client_id = env.text("SLACK_CLIENT_ID", "")
    if not client_id:
        return None
    env.required("SLACK_SIGNING_SECRET", "needed with SLACK_CLIENT_ID: HTTP mode verifies requests")
    return SlackOAuthSettings(
        client_id=client_id,
        client_secret=env.required("SLACK_CLIENT_SECRET", "needed with SLACK_CLIENT_ID"),
        token_key=env.required(
            "LEAKWATCH_TOKEN_KEY", "needed with SLACK_CLIENT_ID, to encrypt workspace tokens"
        ),
    )


def _confluence(env: _Env) -> ConfluenceSettings | None:
    url = env.text("CONFLUENCE_URL", "")
    if not url:
        return None
    user, token, pat = (
        env.text("CONFLUENCE_USER", ""),
        env.text("CONFLUENCE_TOKEN", ""),
        env.text("CONFLUENCE_PAT", ""),
    )
    if not pat and not (user and token):
        raise ConfigError(
            "CONFLUENCE_URL is set but no credentials: set CONFLUENCE_USER and CONFLUENCE_TOKEN "
            "(Cloud) or CONFLUENCE_PAT (Data Center)"
        )
    return ConfluenceSettings(
        url=url.rstrip("/"),
        user=user,
        token=token,
        pat=pat,
        spaces=env.items("CONFLUENCE_SPACES"),
        poll_interval_seconds=env.integer("CONFLUENCE_POLL_INTERVAL", 900, low=10),
        attachment_max_bytes=env.integer("CONFLUENCE_ATTACHMENT_MAX_BYTES", 1_000_000, low=0),
    )


def _imap(env: _Env) -> ImapSettings | None:
    host = env.text("IMAP_HOST", "")
    if not host:
        return None
    security = env.choice("IMAP_SECURITY", "ssl", ("ssl", "starttls", "plain"))
    default_port = 993 if security == "ssl" else 143
    return ImapSettings(
        host=host,
        user=env.required("IMAP_USER", "needed with IMAP_HOST"),
        password=env.required("IMAP_PASSWORD", "needed with IMAP_HOST"),
        port=env.integer("IMAP_PORT", default_port, low=1, high=65535),
        security=security,
        folders=env.items("IMAP_FOLDERS") or ("INBOX",),
        allow_plain=env.flag("IMAP_ALLOW_PLAIN", False),
        poll_interval_seconds=env.integer("IMAP_POLL_INTERVAL", 900, low=10),
        attachment_max_bytes=env.integer("IMAP_ATTACHMENT_MAX_BYTES", 1_000_000, low=0),
    )


class _Env:
    """Typed reads of environment variables, each failure naming the variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str) -> str:
        return self._environ.get(name, default).strip()

    def required(self, name: str, why: str) -> str:
        value = self.text(name, "")
        if not value:
            raise ConfigError(f"{name} is not set ({why})")
        return value

    def items(self, name: str) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.text(name, "").split(",") if part.strip())

    def integer(
        self, name: str, default: int, low: int | None = None, high: int | None = None
    ) -> int:
        raw = self.text(name, "")
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
        return value

    def number(self, name: str, default: float) -> float:
        raw = self.text(name, "")
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if value <= 0:
            raise ConfigError(f"{name} must be positive, got {raw!r}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name, "").lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")

    def choice(self, name: str, default: str, allowed: tuple[str, ...], upper: bool = False) -> str:
        raw = self.text(name, default)
        value = raw.upper() if upper else raw.lower()
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
        return value

    def zone(self, name: str, default: str) -> ZoneInfo:
        raw = self.text(name, default)
        try:
            return ZoneInfo(raw)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"{name} must be an IANA time zone like Europe/Berlin, got {raw!r}"
            ) from None

    def clock(self, name: str, default: str) -> str:
        raw = self.text(name, default)
        hours, _, minutes = raw.partition(":")
        if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
            raise ConfigError(f"{name} must be a time like 09:00, got {raw!r}")
        return f"{int(hours):02d}:{int(minutes):02d}"
