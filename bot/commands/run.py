"""`python -m bot run`: start the bot; without Slack settings, scan the bundled samples.

Without SLACK_BOT_TOKEN there is nothing to watch, so a newcomer's first `make run` builds the
samples (a Slack export, an mbox, a Confluence page, a .env and a config file, with fake keys
made at run time) into data/samples/, scans them, prints what it found, and says how to connect
Slack.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from bot import ignore, samples
from bot.config import ConfigError, Settings

CONNECT_SLACK = """\
These were fake keys in the bundled samples ({path}).

To watch your own workspace:
  1. Create a Slack app from the manifest app.yaml (api.slack.com/apps > Create New App >
     From a manifest) and install it into the workspace.
  2. Put its tokens in .env (or the environment):
       SLACK_BOT_TOKEN=xoxb-...        (OAuth & Permissions > Bot User OAuth Token)
       SLACK_APP_TOKEN=xapp-...        (Basic Information > App-Level Tokens, connections:write)
       LEAKWATCH_SECURITY_CHANNEL=C... (where high-risk findings and the weekly digest go)
  3. Run `make run` again.

To scan your own files or exports now: .venv/bin/python -m bot scan PATH...
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--http", action="store_true",
        help="serve Slack's Events API at /slack/events instead of Socket Mode",
    )
    parser.add_argument("--port", type=int, default=3000, help="HTTP port (default 3000)")
    parser.add_argument("--host", default="0.0.0.0", help="HTTP address (default 0.0.0.0)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if settings.slack is None:
        return scan_samples(settings, sys.stdout)
    from bot.service import BotService

    slack = settings.slack
    http = args.http or not slack.app_token
    if http and not slack.signing_secret:
        raise ConfigError(
            "SLACK_SIGNING_SECRET is not set: HTTP mode needs it to verify Slack's requests "
            "(or set SLACK_APP_TOKEN to use Socket Mode, which needs no public URL)"
        )
    bot = BotService(settings)
    bot.start(socket_mode=not http, http_port=args.port if http else None, http_host=args.host)
    mode = f"HTTP on port {bot.http_port}" if http else "Socket Mode"
    print(f"LeakWatch is running ({mode}). Press Ctrl+C to stop.", file=sys.stderr)
    if settings.slack_oauth is not None:
        print(
            "Many workspaces: each one installs LeakWatch at /slack/install on this server's "
            "public URL (the app's redirect URL is /slack/oauth_redirect).",
            file=sys.stderr,
        )
    bot.wait()
    return 0


def scan_samples(settings: Settings, out: TextIO) -> int:
    """Build data/samples/, scan it, print the findings table; 0 unless the scan failed."""
    from bot.commands.scan import Scan
    from bot.detection.engine import Detector
    from bot.detection.fingerprint import fingerprinter_from_settings

    destination = samples.build(settings.data_dir / "samples")
    out.write(f"Scanning the bundled samples in {destination} (no Slack configured yet)\n\n")
    out.flush()
    scan = Scan(
        paths=[str(destination)],
        detector=Detector.default(
            fingerprinter_from_settings(settings), cache_dir=settings.cache_dir
        ),
        rules=ignore.IgnoreRules(),
        progress=False,
        settings=settings,
        store=True,
    )
    status = scan.run(out, sys.stderr)
    if status not in (0, 1):
        return status
    from datetime import UTC, datetime

    from bot.preview import print_digest, print_pending_messages
    from bot.store.db import Database

    now = datetime.now(UTC)
    db = Database(settings.database_url)
    try:
        out.write("\nWhat LeakWatch would send once Slack is connected:\n\n")
        print_pending_messages(db, out, now=now)
        print_digest(db, settings, out, now=now)
    finally:
        db.dispose()
    out.write("\n" + CONNECT_SLACK.format(path=destination))
    return 0
