"""The fingerprint key file under a crash: a bot killed (or out of disk) while creating it must
not leave an empty or partial key behind. An empty file stops every later start; a partial one
would silently change every fingerprint, so each known key would alert again as new."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.detection import fingerprint
from bot.detection.fingerprint import KEY_BYTES, read_or_create_key


def test_a_failure_while_the_key_is_written_leaves_no_key_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "data" / "fingerprint.key"
    real_fdopen = os.fdopen

    def disk_full(fd: int, *args: object, **kwargs: object) -> object:
        os.close(fd)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fingerprint.os, "fdopen", disk_full)
    with pytest.raises(OSError):
        read_or_create_key(path)
    monkeypatch.setattr(fingerprint.os, "fdopen", real_fdopen)

    # The next start creates a whole key and keeps using it.
    key = read_or_create_key(path)
    assert len(key) == KEY_BYTES
    assert read_or_create_key(path) == key
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
