"""Many workspaces: Slack's OAuth install flow, with tokens encrypted at rest.

In HTTP mode with SLACK_CLIENT_ID and SLACK_CLIENT_SECRET, Bolt serves /slack/install and
/slack/oauth_redirect; each workspace that installs the app gets its bot token stored in our
database through slack_sdk's SQLAlchemy installation store, whose three tables (slack_bots,
slack_installations, slack_oauth_states) are created by our Alembic migrations, not by the store.

Tokens never sit in the database in clear: every token column holds a Fernet token (AES-128-CBC
and HMAC-SHA256) made with a key derived from LEAKWATCH_TOKEN_KEY. A stolen database file without
that key gives an attacker no Slack access. An uninstall or a tokens_revoked event deletes the
workspace's rows (Bolt's token revocation listeners).
"""

from __future__ import annotations

import base64
import copy
import hashlib
from typing import Any, Final, TypeVar

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

from bot.config import ConfigError, Settings
from bot.store.slack_tables import TOKEN_COLUMNS, widen_token_columns

_Entity = TypeVar("_Entity", Installation, Bot)
ENCRYPTED_PREFIX: Final = "fernet:"
STATE_EXPIRATION_SECONDS: Final = 600

# The scopes app.yaml asks for; tests/install/test_manifest.py keeps the two in step.
BOT_SCOPES: Final = (
    "channels:history", "channels:join", "channels:read", "chat:write", "commands", "files:read",
    "groups:history", "groups:read", "im:history", "im:write", "usergroups:read", "users:read",
    "users:read.email",
)


class TokenCipher:
    """Encrypts tokens with a key derived from a passphrase of any length."""

    def __init__(self, passphrase: str) -> None:
        if len(passphrase) < 16:
            raise ConfigError("LEAKWATCH_TOKEN_KEY must be at least 16 characters")
        key = base64.urlsafe_b64encode(hashlib.sha256(passphrase.encode()).digest())
        self._fernet = Fernet(key)

    def encrypt(self, token: str | None) -> str | None:
        if not token:
            return token
        return ENCRYPTED_PREFIX + self._fernet.encrypt(token.encode()).decode()

    def decrypt(self, stored: str | None) -> str | None:
        if not stored:
            return stored
        if not stored.startswith(ENCRYPTED_PREFIX):
            raise ValueError("a stored Slack token is not encrypted")
        try:
            return self._fernet.decrypt(stored[len(ENCRYPTED_PREFIX):].encode()).decode()
        except InvalidToken:
            raise ValueError(
                "a stored Slack token cannot be decrypted: LEAKWATCH_TOKEN_KEY changed?"
            ) from None


class EncryptedInstallationStore(SQLAlchemyInstallationStore):
    """slack_sdk's SQLAlchemy store, with every token encrypted before it is written."""

    def __init__(self, client_id: str, engine: sa.Engine, cipher: TokenCipher) -> None:
        super().__init__(client_id=client_id, engine=engine)
        self.cipher = cipher

    @classmethod
    def build_installations_table(cls, metadata: sa.MetaData, table_name: str) -> sa.Table:
        return widen_token_columns(super().build_installations_table(metadata, table_name))

    @classmethod
    def build_bots_table(cls, metadata: sa.MetaData, table_name: str) -> sa.Table:
        return widen_token_columns(super().build_bots_table(metadata, table_name))

    def save(self, installation: Installation) -> None:
        super().save(self._sealed(installation))

    def save_bot(self, bot: Bot) -> None:
        super().save_bot(self._sealed(bot))

    def find_bot(self, **kwargs: Any) -> Bot | None:
        bot: Bot | None = super().find_bot(**kwargs)
        return self._opened(bot)

    def find_installation(self, **kwargs: Any) -> Installation | None:
        installation: Installation | None = super().find_installation(**kwargs)
        return self._opened(installation)

    def _sealed(self, entity: _Entity) -> _Entity:
        """A copy of the Installation or Bot with its tokens encrypted."""
        sealed = copy.copy(entity)
        for name in TOKEN_COLUMNS:
            value = getattr(entity, name, None)
            if value is not None and not value.startswith(ENCRYPTED_PREFIX):
                setattr(sealed, name, self.cipher.encrypt(value))
        return sealed

    def _opened(self, entity: _Entity | None) -> _Entity | None:
        if entity is None:
            return None
        for name in TOKEN_COLUMNS:
            value = getattr(entity, name, None)
            if value is not None:
                setattr(entity, name, self.cipher.decrypt(value))
        return entity


def build_oauth_settings(settings: Settings, engine: sa.Engine) -> OAuthSettings:
    oauth = settings.slack_oauth
    if oauth is None:
        raise ConfigError("SLACK_CLIENT_ID is not set (needed for the OAuth install flow)")
    store = EncryptedInstallationStore(oauth.client_id, engine, TokenCipher(oauth.token_key))
    state_store = SQLAlchemyOAuthStateStore(
        expiration_seconds=STATE_EXPIRATION_SECONDS, engine=engine
    )
    return OAuthSettings(
        client_id=oauth.client_id,
        client_secret=oauth.client_secret,
        scopes=list(BOT_SCOPES),
        installation_store=store,
        state_store=state_store,
    )
