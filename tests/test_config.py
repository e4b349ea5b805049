from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings


def test_defaults_use_sqlite_under_data() -> None:
    settings = load_settings({})
    assert settings.database_url == f"sqlite:///{Path('data') / 'leakwatch.db'}"
    assert settings.slack is None and settings.confluence is None and settings.imap is None


def test_a_wrong_setting_is_named() -> None:
    with pytest.raises(ConfigError, match="SLACK_HISTORY_PAGE_SIZE"):
        load_settings({"SLACK_BOT_TOKEN": "placeholder", "SLACK_HISTORY_PAGE_SIZE": "lots"})
    with pytest.raises(ConfigError, match="LEAKWATCH_TIMEZONE"):
        load_settings({"LEAKWATCH_TIMEZONE": "Mars/Olympus"})
    with pytest.raises(ConfigError, match="IMAP_PASSWORD"):
        load_settings({"IMAP_HOST": "127.0.0.1", "IMAP_USER": "someone"})


def test_secrets_stay_out_of_repr() -> None:
    settings = load_settings(
        {"SLACK_BOT_TOKEN": "bot-token-value", "IMAP_HOST": "h", "IMAP_USER": "u",
         "IMAP_PASSWORD": "imap-password-value"}
    )
    assert "bot-token-value" not in repr(settings)
    assert "imap-password-value" not in repr(settings)
