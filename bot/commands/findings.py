"""`python -m bot findings`."""

from __future__ import annotations

import argparse

from bot.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace, settings: Settings) -> int:
    print("leakwatch: 'findings' is not available in this build yet")
    return 2
