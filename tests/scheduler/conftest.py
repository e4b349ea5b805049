"""Scheduler fixtures: the digest package's store and stand-in Slack."""

from tests.digest.conftest import Slack, db, slack

__all__ = ["Slack", "db", "slack"]
