"""Fake keys of a chosen severity, and the real detector that finds them.

Keys come from `fake_secret` (format-valid, built at run time), so nothing in the tree looks
like a live credential.
"""

from __future__ import annotations

import zlib

from bot.detection.engine import Detector
from bot.detection.fakes import fake_secret
from bot.detection.fingerprint import Fingerprinter
from bot.detection.types import Match

FINGERPRINTER = Fingerprinter(b"tests-only fingerprint key")
RULE_FOR_SEVERITY = {
    "critical": "openai_project_key",
    "high": "github_classic_pat",
    "medium": "slack_webhook_url",
    "low": "stripe_test_secret_key",
}


def key(seed: int | str, severity: str = "critical") -> str:
    """A fake credential of `severity`; the same seed gives the same key."""
    number = seed if isinstance(seed, int) else zlib.crc32(seed.encode())
    return fake_secret(RULE_FOR_SEVERITY[severity], number)


class KeyDetector:
    """The default detector, counting the texts it scans."""

    _shared: Detector | None = None

    def __init__(self) -> None:
        if KeyDetector._shared is None:
            KeyDetector._shared = Detector.default(FINGERPRINTER)
        self.detector = KeyDetector._shared
        self.scanned = 0

    def scan(self, text: str) -> list[Match]:
        self.scanned += 1
        return self.detector.scan(text)
