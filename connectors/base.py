"""What every connector hands to the pipeline, and how connectors report failure.

A connector reads one kind of source (Slack, Confluence, email, files) in two phases, as a
source of units and then the documents of one unit:

    source.units()            -> the containers it can read: channels, spaces, mail folders
    source.documents(unit, cursor) -> the documents of that unit newer than the cursor

The caller (the poll job) commits a unit's documents through the pipeline and only then stores
the unit's new cursor, so a crash mid-poll resumes from the last committed point.

Errors, and what the caller does with them:

    SourceError                 base class; never raised itself
    ├── TransientSourceError    try again later (rate limited too long, 5xx, dropped connection)
    ├── UnitError               this one unit is unreadable (not_in_channel, deleted, no access):
    │                           record it and go on with the next unit
    └── FatalSourceError        the whole source is unusable (bad credentials, missing scope):
        └── SourceAuthError     stop polling this source and tell the operator what to fix

Error messages never include secret values or tokens.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

SourceKind = Literal["slack", "confluence", "email", "file"]


@dataclass(frozen=True, slots=True)
class Exposure:
    """Facts about who could read a document; the risk score's likelihood comes from these."""

    audience: int | None = None  # channel members, mail recipients, space watchers; None if unknown
    is_public: bool = False  # public channel, space readable by every employee
    is_external: bool = False  # shared with other organisations, mailed outside the company
    is_anonymous: bool = False  # readable without logging in (Confluence anonymous access)
    is_history: bool = False  # only in an old version (Confluence page history)


@dataclass(frozen=True, slots=True)
class Document:
    """One readable item: a Slack message, a Confluence page version, a mail, a file.

    `item_id` is stable across runs and unique within (source, workspace): the same mail in two
    folders has the same item id (its Message-ID), so it is one occurrence.
    """

    source: SourceKind
    unit: str  # canonical container id: channel id, space key, mail folder, directory
    item_id: str
    text: str
    workspace: str = ""  # Slack team id; "" for sources outside a workspace
    unit_name: str = ""  # what a person calls the container: #general, "Platform" space, INBOX
    title: str = ""  # mail subject, page title, file name
    author: str | None = None  # Slack user id, Confluence account id or email address
    author_email: str | None = None
    permalink: str | None = None
    posted_at: datetime | None = None
    exposure: Exposure = field(default_factory=Exposure)
    # Source-specific facts that do not grow the shared model (thread ts, page version, file id).
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Unit:
    """A container a source can read, with a canonical id that a cursor is keyed by."""

    id: str
    name: str = ""


class Source(Protocol):
    """A connector: enumerates units, then yields the documents of one unit after a cursor."""

    kind: SourceKind

    def units(self) -> Iterator[Unit]: ...

    def documents(self, unit: Unit, cursor: str | None) -> Iterator[tuple[Document, str | None]]:
        """Yield each document with the cursor that is safe to store once it is committed."""
        ...


class SourceError(Exception):
    """Base of every connector error."""


class TransientSourceError(SourceError):
    """Temporary: a later poll will likely succeed."""


class UnitError(SourceError):
    """One unit cannot be read; the others can."""

    def __init__(self, unit: str, reason: str) -> None:
        super().__init__(f"{unit}: {reason}")
        self.unit = unit
        self.reason = reason


class FatalSourceError(SourceError):
    """The source as a whole cannot be read until an operator acts."""


class SourceAuthError(FatalSourceError):
    """Credentials were refused or lack a permission."""


# Exports and archives carry their own provenance, reported per finding.
Provenance = Mapping[str, str]
