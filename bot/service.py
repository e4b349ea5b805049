"""The running bot: the Slack app, the scheduler, and how Slack reaches it.

    bot = BotService(settings)       # store upgraded, detector compiled, app and jobs built
    bot.start(socket_mode=True)      # or start(http_port=3000); returns at once
    bot.wait()                       # until SIGINT/SIGTERM, then a clean stop

Socket Mode (SLACK_APP_TOKEN) needs no public URL: the bot opens a WebSocket to Slack. HTTP mode
serves /slack/events and /health. Either way the scheduler polls every configured source at its
interval, flushes the outbox, sends reminders, and posts the weekly digest; a digest missed while
the bot was down is posted at start, once.

Many workspaces (SLACK_CLIENT_ID, no single bot token): HTTP only, with the OAuth install flow
at /slack/install. Every job goes through the installed workspaces (bot/slack_app/workspaces.py):
the "slack" poll reads each workspace with its own token, each workspace's outbox is sent with
its own token, and each gets its own weekly digest of its own findings in its digest channel.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from slack_sdk import WebClient

from bot import wiring
from bot.config import ConfigError, Settings
from bot.notify.notifier import Notifier
from bot.scheduler import (
    PollJob,
    build_scheduler,
    poll_job,
    post_missed_digest,
    queue_reminders_and_send,
    schedule_bot,
)
from bot.slack_app.app import HttpServer, build_app, serve_http
from bot.slack_app.workspaces import InstalledWorkspaces, poll_workspaces, post_due_digests

log = logging.getLogger(__name__)


class BotService:
    def __init__(self, settings: Settings) -> None:
        if settings.slack is None:
            raise ConfigError("SLACK_BOT_TOKEN is not set (needed to run the Slack bot)")
        self.settings = settings
        self.db = wiring.open_database(settings)
        self.detector = wiring.build_detector(settings)
        self._stopped = threading.Event()
        self._socket_handler: Any = None
        self._http: HttpServer | None = None
        # Many workspaces: no single token; the installed workspaces' own tokens do the work.
        self.workspaces: InstalledWorkspaces | None = None
        self.client: WebClient | None = None
        self.notifier: Notifier | None = None
        if settings.slack_oauth is not None:
            workspaces = self.workspaces = InstalledWorkspaces(settings, self.db)
            self.scheduler = build_scheduler(
                settings,
                polls=self._many_workspace_polls(workspaces),
                digest=lambda: post_due_digests(workspaces, self.db, settings),
                flush=workspaces.send_pending,
                reminders=lambda: queue_reminders_and_send(self.db, workspaces, settings),
            )
            return
        client = wiring.build_slack_client(settings)
        assert client is not None
        self.client = client
        notifier = wiring.build_notifier(settings, self.db, client)
        assert notifier is not None
        self.notifier = notifier
        self.scheduler = schedule_bot(
            settings,
            db=self.db,
            client=client,
            notifier=notifier,
            polls=[
                poll_job(
                    configured.source,
                    configured.interval_seconds,
                    db=self.db,
                    detector=self.detector,
                    notifier=notifier,
                    workspace=configured.workspace(),
                )
                for configured in wiring.build_sources(settings, slack_client=client)
            ],
        )

    def _many_workspace_polls(self, workspaces: InstalledWorkspaces) -> list[PollJob]:
        """One "slack" poll over every installed workspace, the other sources as configured."""
        settings, db, detector = self.settings, self.db, self.detector
        assert settings.slack is not None
        polls = [
            PollJob(
                "slack",
                settings.slack.poll_interval_seconds,
                lambda: poll_workspaces(workspaces, db, detector),
            )
        ]
        home = settings.home_workspace
        for configured in wiring.build_sources(settings):
            if configured.source.kind == "slack":
                continue  # the job above, one token per workspace
            # Confluence and email belong to no workspace by themselves. With
            # LEAKWATCH_HOME_WORKSPACE their findings belong to that team and are sent with its
            # token; without it they are stored and counted, but no workspace's token sends them.
            if not home:
                log.warning(
                    "%s findings are stored but not sent to Slack: set LEAKWATCH_HOME_WORKSPACE "
                    "to the team id whose people should be told",
                    configured.source.kind,
                )
            polls.append(
                poll_job(configured.source, configured.interval_seconds, db=db, detector=detector,
                         notifier=workspaces if home else None, workspace=home)
            )
        return polls

    def start(self, *, socket_mode: bool = False, http_port: int | None = None,
              http_host: str = "0.0.0.0") -> None:
        slack = self.settings.slack
        assert slack is not None
        if self.workspaces is not None:
            self._start_many(socket_mode=socket_mode, http_port=http_port, http_host=http_host)
            return
        assert self.client is not None and self.notifier is not None
        if socket_mode:
            if not slack.app_token:
                raise ConfigError("SLACK_APP_TOKEN is not set (needed for Socket Mode)")
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            app = build_app(self.settings, self.db, self.detector, self.client, self.notifier,
                            socket_mode=True)
            self._socket_handler = SocketModeHandler(app, slack.app_token)
            self._socket_handler.connect()
            log.info("connected to Slack in Socket Mode")
        if http_port is not None:
            app = build_app(self.settings, self.db, self.detector, self.client, self.notifier)
            self._http = serve_http(app, host=http_host, port=http_port)
            self._http.start_in_background()
            log.info("serving Slack events on port %d", self._http.port)
        post_missed_digest(self.db, self.client, self.settings)
        self.scheduler.start()

    def _start_many(self, *, socket_mode: bool, http_port: int | None, http_host: str) -> None:
        assert self.workspaces is not None
        if socket_mode:
            raise ConfigError(
                "Socket Mode serves one workspace: with SLACK_CLIENT_ID (many workspaces) run "
                "`python -m bot run --http` behind a public URL, or set SLACK_BOT_TOKEN and "
                "SLACK_APP_TOKEN instead of SLACK_CLIENT_ID for one workspace"
            )
        if http_port is None:
            raise ConfigError("many workspaces (SLACK_CLIENT_ID) need HTTP mode: give a port")
        app = build_app(self.settings, self.db, self.detector)
        self._http = serve_http(app, host=http_host, port=http_port)
        self._http.start_in_background()
        log.info(
            "serving Slack events and the install page (/slack/install) on port %d",
            self._http.port,
        )
        post_due_digests(self.workspaces, self.db, self.settings)  # a digest missed while down
        self.scheduler.start()

    @property
    def http_port(self) -> int | None:
        return self._http.port if self._http is not None else None

    def wait(self) -> None:
        """Block until SIGINT or SIGTERM (or stop() from another thread), then stop."""
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: self._stopped.set())
        self._stopped.wait()
        self.stop()

    def stop(self) -> None:
        self._stopped.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._socket_handler is not None:
            self._socket_handler.close()
            self._socket_handler = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        self.db.engine.dispose()
