"""Slack workspace exports, zipped or unpacked, read through the same message code."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from connectors.slack import looks_like_archive, read_archive


def write_export(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    users = [{"id": "U1", "name": "alice"}, {"id": "U2", "name": "bob"}]
    channels = [{"id": "C1", "name": "general", "members": ["U1", "U2"]}]
    groups = [{"id": "G1", "name": "secret-ops", "members": ["U1"]}]
    days: dict[str, list[dict[str, Any]]] = {
        "general/2026-01-05.json": [
            {"type": "message", "user": "U1", "text": "hi &lt;<@U2>&gt;", "ts": "1767600000.000100",
             "team": "T9", "thread_ts": "1767600000.000100", "reply_count": 1},
            {"type": "message", "subtype": "channel_join", "user": "U2", "text": "<@U2> joined",
             "ts": "1767600001.000100"},
        ],
        "general/2026-01-06.json": [
            {"type": "message", "user": "U2", "text": "a reply", "ts": "1767686400.000200",
             "thread_ts": "1767600000.000100", "team": "T9"},
            {"type": "message", "user": "U1", "text": "a file", "ts": "1767686500.000300",
             "files": [{"id": "F1", "name": "notes.txt", "mode": "snippet",
                        "preview": "snippet preview text",
                        "url_private": "https://files.slack.com/files-pri/T9-F1/notes.txt?t=export-token"}]},
        ],
        "secret-ops/2026-01-07.json": [
            {"type": "message", "user": "U1", "text": "<https://x.test|private> words",
             "ts": "1767772800.000400", "team": "T9"},
        ],
    }
    (root / "users.json").write_text(json.dumps(users))
    (root / "channels.json").write_text(json.dumps(channels))
    (root / "groups.json").write_text(json.dumps(groups))
    (root / "integration_logs.json").write_text("[]")
    for name, messages in days.items():
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_text(json.dumps(messages))


def zip_folder(folder: Path, target: Path, inner: str = "") -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, inner + path.relative_to(folder).as_posix())
    return target


@pytest.fixture(params=["folder", "zip", "zip-with-top-folder"])
def export(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    write_export(folder)
    if request.param == "folder":
        return folder
    inner = "Acme Slack export/" if request.param == "zip-with-top-folder" else ""
    return zip_folder(folder, tmp_path / "export.zip", inner)


def test_reads_every_message_with_provenance(export: Path) -> None:
    assert looks_like_archive(export)
    documents = list(read_archive(export))
    by_item = {d.item_id: d for d in documents}
    assert set(by_item) == {"C1:1767600000.000100", "C1:1767686400.000200",
                            "C1:1767686500.000300", "C1:1767686500.000300:F1",
                            "G1:1767772800.000400"}
    first = by_item["C1:1767600000.000100"]
    assert first.text == "hi <@bob>"
    assert first.unit_name == "#general" and first.author == "U1" and first.workspace == "T9"
    assert first.extra["export_file"] == "general/2026-01-05.json"
    assert first.extra["ts"] == "1767600000.000100" and first.extra["user"] == "U1"
    assert first.exposure.audience == 2 and first.exposure.is_public
    private = by_item["G1:1767772800.000400"]
    assert private.text == "private (https://x.test) words"
    assert not private.exposure.is_public and private.unit_name == "#secret-ops"
    file_text = by_item["C1:1767686500.000300:F1"].text
    assert "snippet preview text" in file_text and "t=export-token" in file_text


def test_other_archives_are_not_exports(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.json").write_text("[]")
    assert not looks_like_archive(tmp_path / "plain")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("README.md", "hello")
    assert not looks_like_archive(tmp_path / "other.zip")
    (tmp_path / "not-a-zip.zip").write_text("garbage")
    assert not looks_like_archive(tmp_path / "not-a-zip.zip")
