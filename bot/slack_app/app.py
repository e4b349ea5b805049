"""The Slack app: Bolt in HTTP mode, and a small threaded HTTP server for /slack/events.

    app = build_app(settings, db, detector)          # listeners registered, nothing started
    server = serve_http(app, port=3000)              # POST /slack/events (events, actions,
    server.serve_forever()                           #   slash commands), GET /health

Bolt checks every request: the v0 signature with the signing secret and a timestamp within
five minutes, and answers url_verification. Events are acknowledged at once
(process_before_response=False); message events are then handled in arrival order per channel
(bot/slack_app/events.py), interactions on Bolt's listener threads.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

from bot.config import ConfigError, Settings, SlackSettings
from bot.notify.notifier import Notifier
from bot.pipeline import Scanner
from bot.store.db import Database
from connectors.slack import SlackSource, build_client

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


@dataclass
class Services:
    """What listeners use; built once by build_app and passed to every register()."""

    settings: Settings
    slack: SlackSettings
    db: Database
    detector: Scanner
    client: WebClient
    source: SlackSource  # messages to Documents, the same code the poller runs
    notifier: Notifier | None
    _teams: dict[str, Services] = field(default_factory=dict, repr=False)
    _teams_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def for_team(self, team_id: str, bot_token: str | None) -> Services:
        """The services of one installed workspace (many-workspace mode): its own bot token,
        connector and notifier. With a single workspace's token, these services themselves."""
        if not bot_token or bot_token == self.slack.bot_token:
            return self
        with self._teams_lock:
            team = self._teams.get(team_id)
            if team is None or team.client.token != bot_token:  # new, or its token was replaced
                from bot.slack_app.workspaces import InstalledWorkspace

                installed = InstalledWorkspace.connect(
                    self.settings, self.db, team_id, "", bot_token
                )
                team = Services(self.settings, self.slack, self.db, self.detector,
                                installed.client, installed.source, installed.notifier)
                self._teams[team_id] = team
            return team


def build_app(
    settings: Settings,
    db: Database,
    detector: Scanner,
    client: WebClient | None = None,
    notifier: Notifier | None = None,
    *,
    socket_mode: bool = False,
) -> App:
    """The Bolt app with every listener; `socket_mode` apps need no signing secret."""
    slack = settings.slack
    if slack is None:
        raise ConfigError(
            "SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID (many) is needed for the Slack app"
        )
    if not socket_mode and not slack.signing_secret:
        raise ConfigError("SLACK_SIGNING_SECRET is not set (needed for HTTP mode)")
    client = client or build_client(slack)
    if notifier is None:
        admin = build_client(slack, slack.admin_token) if slack.admin_token else None
        notifier = Notifier(client, db, settings, admin_client=admin)
    if settings.slack_oauth is None:
        app = App(
            client=client,
            signing_secret=slack.signing_secret,
            token_verification_enabled=False,  # auth.test runs on the first request instead
            process_before_response=False,
        )
    else:  # many workspaces: Bolt finds each request's token in the installation store
        from bot.slack_app.oauth import build_oauth_settings

        app = App(
            client=client,
            signing_secret=slack.signing_secret,
            oauth_settings=build_oauth_settings(settings, db.engine),
            process_before_response=False,
        )
        app.enable_token_revocation_listeners()  # uninstalls delete the workspace's tokens
    services = Services(
        settings, slack, db, detector, client, SlackSource(slack, client=client), notifier
    )
    from bot.slack_app import events

    events.register(app, services)
    from bot.slack_app import actions, commands

    backfill = commands.make_backfill(db, services.source, detector, notifier)
    if settings.slack_oauth is not None:  # each workspace's channels, read with its own token
        from bot.slack_app.workspaces import InstalledWorkspaces

        installed = InstalledWorkspaces(settings, db)

        def backfill(workspace: str, channel: str) -> str:
            team = installed.get(workspace)
            if team is None:
                return "This workspace has no LeakWatch installation: install it again."
            return commands.make_backfill(db, team.source, detector, team.notifier)(
                workspace, channel
            )

    actions.register(app, db, settings, backfill=backfill)  # buttons, modals, Home, /leakwatch

    @app.error
    def log_error(error: Exception, body: dict[str, Any]) -> None:
        # never the body: it can hold the very secret the bot is about
        log.error(
            "listener failed: %s (%s)", type(error).__name__, body.get("type"), exc_info=error
        )

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)


class HttpServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # socketserver's default backlog is 5: a burst of Slack deliveries overflows it, and each
    # dropped SYN costs the sender a 1 s, then 3 s retransmission, past Slack's 3 s ack limit.
    request_queue_size = 128

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, daemon=True, name="slack-http")
        thread.start()
        return thread


def serve_http(app: App, host: str = "0.0.0.0", port: int = 3000) -> HttpServer:
    """A threaded WSGI server with Bolt at /slack/events and a health check at /health."""
    handler = SlackRequestHandler(app, path=EVENTS_PATH)

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/health":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        return handler(environ, start_response)

    server = make_server(host, port, wsgi, server_class=HttpServer, handler_class=_QuietHandler)
    assert isinstance(server, HttpServer)
    return server
