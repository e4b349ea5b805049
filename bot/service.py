"""The running bot: the Slack app, the scheduler, and how Slack reaches it.

    bot = BotService(settings)       # store upgraded, detector compiled, app and jobs built
    bot.start(socket_mode=True)      # or start(http_port=3000); returns at once
    bot.wait()                       # until SIGINT/SIGTERM, then a clean stop

Socket Mode (SLACK_APP_TOKEN) needs no public URL: the bot opens a WebSocket to Slack. HTTP mode
serves /slack/events and /health. Either way the scheduler polls every configured source at its
interval, flushes the outbox, sends reminders, and posts the weekly digest; a digest missed while
the bot was down is posted at start, once.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from bot import wiring
from bot.config import ConfigError, Settings
from bot.scheduler import poll_job, post_missed_digest, schedule_bot
from bot.slack_app.app import HttpServer, build_app, serve_http

log = logging.getLogger(__name__)


class BotService:
    def __init__(self, settings: Settings) -> None:
        if settings.slack is None:
            raise ConfigError("SLACK_BOT_TOKEN is not set (needed to run the Slack bot)")
        self.settings = settings
        self.db = wiring.open_database(settings)
        self.detector = wiring.build_detector(settings)
        client = wiring.build_slack_client(settings)
        assert client is not None
        self.client = client
        notifier = wiring.build_notifier(settings, self.db, client)
        assert notifier is not None
        self.notifier = notifier
        self._stopped = threading.Event()
        self._socket_handler: Any = None
        self._http: HttpServer | None = None
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

    def start(self, *, socket_mode: bool = False, http_port: int | None = None,
              http_host: str = "0.0.0.0") -> None:
        slack = self.settings.slack
        assert slack is not None
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
