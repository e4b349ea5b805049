"""Test keys and a detector for them, standing in for the real engine where rules don't matter.

A test key reads `lwkey-<severity>-<16 hex>`: nothing a secret scanner would flag, built at run
time. The detector finds them and reports Matches the way the real engine does: an HMAC
fingerprint and a masked preview, the raw value only in `Match.secret`.
"""

from __future__ import annotations

import hashlib
import re

from bot.detection.fingerprint import Fingerprinter
from bot.detection.masking import mask
from bot.detection.types import Match, Severity

_KEY = re.compile(r"lwkey-(critical|high|medium|low)-[0-9a-f]{16}")
FINGERPRINTER = Fingerprinter(b"tests-only fingerprint key")


def key(seed: int | str, severity: str = "critical") -> str:
    digest = hashlib.sha256(str(seed).encode()).hexdigest()[:16]
    return f"lwkey-{severity}-{digest}"


class KeyDetector:
    def __init__(self) -> None:
        self.scanned = 0

    def scan(self, text: str) -> list[Match]:
        self.scanned += 1
        found = []
        for hit in _KEY.finditer(text):
            value = hit.group(0)
            line = text.count("\n", 0, hit.start()) + 1
            column = hit.start() - (text.rfind("\n", 0, hit.start()) + 1) + 1
            found.append(
                Match(
                    rule_id=f"test_{hit.group(1)}_key",
                    provider="testco",
                    name=f"TestCo {hit.group(1)} key",
                    severity=Severity(hit.group(1)),
                    start=hit.start(),
                    end=hit.end(),
                    line=line,
                    column=column,
                    end_column=column + len(value),
                    preview=mask(value),
                    fingerprint=FINGERPRINTER.of(value),
                    secret=value,
                )
            )
        return found
