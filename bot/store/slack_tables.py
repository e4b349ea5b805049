"""The tables of slack_sdk's OAuth stores, owned by our migrations (many-workspace mode).

slack_sdk's SQLAlchemy installation and state stores define their own tables; here they are
added to our metadata so that Alembic creates them and the migration test compares them. The
token columns are wider than slack_sdk's String(200): they hold encrypted tokens
(bot/slack_app/oauth.py), which are longer than the tokens themselves.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

INSTALLATIONS_TABLE: Final = "slack_installations"
BOTS_TABLE: Final = "slack_bots"
OAUTH_STATES_TABLE: Final = "slack_oauth_states"
TOKEN_COLUMNS: Final = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")
ENCRYPTED_TOKEN_LENGTH: Final = 1000


def widen_token_columns(table: sa.Table) -> sa.Table:
    for name in TOKEN_COLUMNS:
        if name in table.c:
            table.c[name].type = sa.String(ENCRYPTED_TOKEN_LENGTH)
    return table


def add_slack_tables(metadata: sa.MetaData) -> None:
    widen_token_columns(
        SQLAlchemyInstallationStore.build_installations_table(metadata, INSTALLATIONS_TABLE)
    )
    widen_token_columns(SQLAlchemyInstallationStore.build_bots_table(metadata, BOTS_TABLE))
    SQLAlchemyOAuthStateStore.build_oauth_states_table(metadata, OAUTH_STATES_TABLE)
