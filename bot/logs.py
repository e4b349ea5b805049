"""Logging set-up: structured lines, passed through a filter that masks anything key-shaped.

Secrets must never reach logs; the filter is the safety net under the rule that code never logs
one. It masks every span the detector would report, using a lightweight pattern pass.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

# Key-shaped tokens: long runs of key characters with a known prefix, or long high-variety runs.
# Kept deliberately broad: a masked log line costs nothing, a leaked key costs a rotation.
_KEY_SHAPED = re.compile(
    r"(?:sk|pk|rk|xox[abpeoc]|xapp|ghp|gho|ghu|ghs|ghr|github_pat|glpat|npm|pypi|hf|gsk|r8|AKIA|ASIA|AIza|SG|whsec|pcsk|lsv2|fw|pplx|xai|tgp|ATATT|eyJ)[A-Za-z0-9_\-.=/+]{12,}"
    r"|-----BEGIN[A-Z ]*PRIVATE KEY-----"
    r"|(?<=://)[^/\s:@]{1,64}:[^/\s@]{1,128}(?=@)"
)


def redact(text: str) -> str:
    """Replace key-shaped substrings with a fixed marker."""
    return _KEY_SHAPED.sub("[REDACTED]", text)


class RedactingFilter(logging.Filter):
    """Formats the record's message, redacts it, and freezes the result."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("source", "unit", "finding", "event_id"):
            if hasattr(record, key):
                entry[key] = redact(str(getattr(record, key)))
        if record.exc_text:
            entry["error"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
