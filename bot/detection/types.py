"""The values detection hands to the rest of the bot."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    """Impact if the credential is abused; the first factor of risk."""

    CRITICAL = "critical"  # LLM and cloud keys with billing, admin keys, private keys
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"  # test-mode keys, tokens that expire within hours

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}


@dataclass(frozen=True, slots=True)
class Match:
    """A credential found in a text. `secret` stays in memory: store and print only the rest."""

    rule_id: str
    provider: str
    name: str  # what a person calls this credential type: "OpenAI project API key"
    severity: Severity
    start: int  # character offsets of the secret in the scanned text
    end: int
    line: int  # 1-based, of the secret's first character
    column: int  # 1-based, in characters
    end_column: int  # 1-based column just after the secret, on its last line (PEM keys span lines)
    preview: str  # masked: "sk-proj-…9fQa"
    fingerprint: str  # HMAC-SHA256 hex of the secret
    secret: str = field(repr=False, compare=False)
