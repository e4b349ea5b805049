"""The command line: `python -m bot COMMAND`.

Each command lives in bot/commands/<name>.py with `add_arguments(parser)` and
`run(args, settings) -> int`; this module builds the parser, loads settings and maps errors to
exit codes (0 nothing found or done, 1 findings, 2 error).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from bot.config import ConfigError, load_settings

COMMANDS = {
    "run": "start the bot (Slack), or scan the bundled samples when Slack is not configured",
    "scan": "scan files, folders, exports and archives offline",
    "poll": "poll every configured source once, send queued notifications, and exit",
    "findings": "list stored findings",
    "digest": "print or post the weekly digest",
    "db": "database schema: upgrade, downgrade, current",
}


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; only the command named in `argv` has its module imported for its options.

    Importing every command (the database layer, Slack, the scheduler) would cost a scan of a
    single file about half a second before it starts.
    """
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = argparse.ArgumentParser(prog="python -m bot", description="LeakWatch")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            _command_module(name).add_arguments(command_parser)
    return parser


def _command_module(name: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"bot.commands.{name}")


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    args = build_parser(argv).parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"leakwatch: configuration error: {error}", file=sys.stderr)
        return 2
    from bot.logs import configure_logging

    configure_logging(settings.log_level)
    try:
        result: int = _command_module(args.command).run(args, settings)
        return result
    except ConfigError as error:
        print(f"leakwatch: configuration error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as error:  # the last line of defence: a clear message, never a traceback
        logging.getLogger("bot").debug("command failed", exc_info=True)
        print(f"leakwatch: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
