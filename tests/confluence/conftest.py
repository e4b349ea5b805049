"""A stand-in Confluence per test, the real atlassian-python-api client, and the real detector."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bot.detection.engine import Detector
from bot.detection.fakes import fake_secret
from bot.detection.fingerprint import Fingerprinter
from bot.store.db import Database
from connectors.base import Document
from connectors.confluence import ConfluenceSource
from tests.standins.confluence import ConfluenceSite, ConfluenceStandin, User

API_TOKEN = "stand-in-api-token"  # not a credential format: the stand-in's own password
PAT = "stand-in-personal-access-token"

_DETECTOR: Detector | None = None


def detector() -> Detector:
    global _DETECTOR
    if _DETECTOR is None:
        _DETECTOR = Detector.default(Fingerprinter(b"confluence tests fingerprint key"))
    return _DETECTOR


def key(seed: int = 0) -> str:
    """A format-valid fake OpenAI project key, built at run time."""
    return fake_secret("openai_project_key", seed)


def found_keys(documents: list[Document]) -> dict[str, list[Document]]:
    """Each key the detector finds, with the documents it was found in."""
    found: dict[str, list[Document]] = {}
    for document in documents:
        for match in detector().scan(document.text):
            found.setdefault(match.secret, []).append(document)
    return found


@dataclass
class Config:
    """The fields of bot.config.ConfluenceSettings that the connector reads."""

    url: str
    user: str = ""
    token: str = ""
    pat: str = ""
    spaces: tuple[str, ...] = ()
    attachment_max_bytes: int = 1_000_000


class Waits:
    """Records the connector's waits instead of sleeping through them."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


@dataclass
class Cloud:
    site: ConfluenceSite
    standin: ConfluenceStandin
    admin: User
    waits: Waits

    def config(self, **changes: Any) -> Config:
        values: dict[str, Any] = {
            "url": self.standin.url,
            "user": self.admin.email,
            "token": API_TOKEN,
        }
        values.update(changes)
        return Config(**values)

    def source(self, config: Config | None = None, **options: Any) -> ConfluenceSource:
        options.setdefault("sleep", self.waits)
        options.setdefault("cloud", self.site.cloud)  # a loopback URL does not say which it is
        return ConfluenceSource(config or self.config(), **options)


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    """A Cloud site under /wiki, read with an email address and an API token."""
    site = ConfluenceSite(cloud=True)
    admin = site.add_user("LeakWatch Reader", "leakwatch@example.com")
    site.add_api_token(admin, API_TOKEN)
    with ConfluenceStandin(site) as standin:
        yield Cloud(site, standin, admin, Waits())


@pytest.fixture
def data_center() -> Iterator[Cloud]:
    """A Data Center site at the root path, read with a personal access token."""
    site = ConfluenceSite(cloud=False)
    admin = site.add_user("LeakWatch Reader", "leakwatch@example.com")
    site.add_pat(admin, PAT)
    with ConfluenceStandin(site) as standin:
        yield Cloud(site, standin, admin, Waits())


@pytest.fixture
def database(tmp_path) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'leakwatch.db'}")
    db.upgrade()
    yield db
    db.dispose()


def read_all(
    source: ConfluenceSource, cursors: dict[str, str | None] | None = None
) -> list[Document]:
    """One pass over every unit, advancing `cursors` as a poll loop would."""
    cursors = cursors if cursors is not None else {}
    documents: list[Document] = []
    for unit in source.units():
        for document, cursor in source.documents(unit, cursors.get(unit.id)):
            documents.append(document)
            if cursor is not None:
                cursors[unit.id] = cursor
    return documents
