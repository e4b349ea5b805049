"""`python -m bot digest`: --preview in the terminal, --post to the stand-in Slack."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import pytest
import sqlalchemy as sa

from bot.commands import digest as command
from bot.config import Settings
from bot.store import models
from bot.store.db import Database
from tests.digest.conftest import Slack
from tests.digest.seed import BERLIN, seed_week


def run(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return command.run(parser.parse_args(argv), settings)


def test_preview_prints_the_week_asked_for(
    db: Database, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with db.session() as session:
        seed_week(session)
    settings = Settings(database_url=database_url, timezone=BERLIN)
    # Any day of the week names it: Thursday 22 Oct is the week of Monday 19 Oct.
    assert run(settings, "--preview", "--week", "2026-10-22") == 0
    out = capsys.readouterr().out
    assert "Mon 19 Oct - Sun 25 Oct 2026 (Europe/Berlin)" in out
    assert "  New findings     4" in out and "  Still open       7" in out


def test_preview_blocks_prints_block_kit_json(
    db: Database, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(database_url=database_url, timezone=BERLIN)
    assert run(settings, "--preview", "--blocks", "--week", "2026-10-19") == 0
    blocks = json.loads(capsys.readouterr().out)["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "LeakWatch weekly digest"},
    }


def test_post_without_slack_says_what_to_set(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(database_url=database_url, digest_channel="C0SEC")
    assert run(settings, "--post") == 2
    assert "Slack is not configured (set SLACK_BOT_TOKEN)" in capsys.readouterr().err


def test_post_without_a_channel_says_what_to_set(
    slack: Slack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(replace(slack.settings, digest_channel=""), "--post") == 2
    assert "set LEAKWATCH_DIGEST_CHANNEL" in capsys.readouterr().err


def test_post_posts_once_and_records_the_week(
    db: Database, slack: Slack, capsys: pytest.CaptureFixture[str]
) -> None:
    with db.session() as session:
        seed_week(session)
    assert run(slack.settings, "--post", "--week", "2026-10-19") == 0
    [ts] = slack.digests()
    assert f"(ts {ts})" in capsys.readouterr().out
    [posted] = slack.standin.posted_in(slack.channel)
    assert posted.text.startswith("LeakWatch weekly digest, week of 2026-10-19: 4 new, 7 open")
    with db.session() as session:
        row = session.scalars(sa.select(models.Digest)).one()
        assert (str(row.week_start), row.channel, row.slack_ts) == (
            "2026-10-19",
            slack.channel.id,
            ts,
        )

    # Again: already posted, so not posted twice unless forced.
    assert run(slack.settings, "--post", "--week", "2026-10-19") == 0
    assert "already posted" in capsys.readouterr().err
    assert len(slack.digests()) == 1
    assert run(slack.settings, "--post", "--week", "2026-10-19", "--force") == 0
    assert len(slack.digests()) == 2


def test_post_reports_slacks_refusal(slack: Slack, capsys: pytest.CaptureFixture[str]) -> None:
    slack.standin.fail("chat.postMessage", error="channel_not_found")
    assert run(slack.settings, "--post") == 2
    assert "Slack refused the digest" in capsys.readouterr().err
    assert "channel_not_found" in "".join(
        c.error or "" for c in slack.standin.calls_to("chat.postMessage")
    )


def test_python_m_bot_digest_reads_its_settings_from_the_environment(
    db: Database,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bot.__main__ import main

    monkeypatch.chdir(tmp_path)  # no .env file from the working tree
    for name in ("SLACK_BOT_TOKEN", "LEAKWATCH_DIGEST_CHANNEL", "LEAKWATCH_SECURITY_CHANNEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LEAKWATCH_TIMEZONE", "Europe/Berlin")
    assert main(["digest", "--preview", "--week", "2026-10-19"]) == 0
    assert "(Europe/Berlin)" in capsys.readouterr().out
    assert main(["digest", "--post"]) == 2
    assert "Slack is not configured" in capsys.readouterr().err
