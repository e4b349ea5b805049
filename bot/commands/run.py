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
from bot.config import Settings

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
    pass


def run(args: argparse.Namespace, settings: Settings) -> int:
    if settings.slack is None:
        return scan_samples(settings, sys.stdout)
    print(
        "leakwatch: the Slack bot is not available in this build yet; "
        "`python -m bot scan PATH` works offline",
        file=sys.stderr,
    )
    return 2


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
        detector=Detector.default(fingerprinter_from_settings(settings)),
        rules=ignore.IgnoreRules(),
        progress=False,
    )
    status = scan.run(out, sys.stderr)
    out.write("\n" + CONNECT_SLACK.format(path=destination))
    return 0 if status in (0, 1) else status
