"""Keyed fingerprints of secrets: the only form in which a secret is ever stored.

A keyed HMAC rather than a plain hash: a short password's SHA-256 can be guessed by brute force,
its HMAC cannot without the key. The key comes from LEAKWATCH_FINGERPRINT_KEY, or is generated
once into a 0600 file beside the database.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import Settings

KEY_BYTES = 32


class Fingerprinter:
    """Turns a secret into a stable hex fingerprint. Thread-safe; holds only the key."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("the fingerprint key must not be empty")
        self._key = key

    def of(self, secret: str) -> str:
        return hmac.new(self._key, secret.encode("utf-8"), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "Fingerprinter(key=<hidden>)"


def fingerprinter_from_settings(settings: Settings) -> Fingerprinter:
    """The key from the settings, else the key file (created on first use, mode 0600)."""
    if settings.fingerprint_key:
        return Fingerprinter(settings.fingerprint_key.encode("utf-8"))
    return Fingerprinter(read_or_create_key(settings.fingerprint_key_file))


def read_or_create_key(path: Path) -> bytes:
    """Read the key file; create it with 32 random bytes, readable by the owner only, if absent."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        pass
    else:
        if not key:
            raise ValueError(f"fingerprint key file {path} is empty")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    # The key is written whole into a temporary file, then linked to its name: a process killed
    # (or out of disk) half-way leaves no empty or partial key, which would stop every later
    # start or silently change every fingerprint. link() fails if the name exists: when two
    # processes start at once, one creates the file and the other reads it.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(key)
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
    except FileExistsError:
        return read_or_create_key(path)
    finally:
        temporary.unlink(missing_ok=True)
    return key
