"""Who may change a finding: the person who posted it, and the security admins.

Admins come from settings.admins (LEAKWATCH_ADMINS): Slack user ids (U…, W…) and user group ids
(S…), whose members are read with usergroups.users.list and kept for a few minutes.
"""

from __future__ import annotations

import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.store.models import Secret

GROUP_TTL_SECONDS = 300.0


class Admins:
    def __init__(self, admins: tuple[str, ...], ttl: float = GROUP_TTL_SECONDS) -> None:
        self.users = frozenset(a for a in admins if not a.startswith("S"))
        self.groups = tuple(a for a in admins if a.startswith("S"))
        self.ttl = ttl
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def is_admin(self, client: WebClient, user_id: str) -> bool:
        if user_id in self.users:
            return True
        return any(user_id in self._group(client, group) for group in self.groups)

    def _group(self, client: WebClient, group: str) -> frozenset[str]:
        with self._lock:
            cached = self._members.get(group)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        try:
            members = frozenset(client.usergroups_users_list(usergroup=group)["users"] or [])
        except SlackApiError:
            # Unreadable group: keep what we knew, else nobody in it counts as an admin.
            return cached[1] if cached is not None else frozenset()
        with self._lock:
            self._members[group] = (time.monotonic(), members)
        return members


def is_poster(secret: Secret, user_id: str) -> bool:
    """Did `user_id` post this secret in any place we saw it?"""
    return any(o.author == user_id for o in secret.occurrences)


def _email_of(client: WebClient, user_id: str) -> str | None:
    try:
        profile = client.users_info(user=user_id)["user"].get("profile") or {}
    except SlackApiError:
        return None
    email = profile.get("email")
    return str(email).lower() if email else None


def is_poster_by_email(client: WebClient, secret: Secret, user_id: str) -> bool:
    """For mail and Confluence findings: the clicking user's Slack email is the author's."""
    addresses = {
        (address or "").lower()
        for o in secret.occurrences
        for address in (o.author_email, o.author)
        if address and "@" in address
    }
    if not addresses:
        return False
    email = _email_of(client, user_id)
    return email is not None and email in addresses


def workspace_of(client: WebClient) -> str | None:
    """The workspace (team id) a request came from: Bolt gives each listener a client made for
    the request's team (WebClient(team_id=...)); None when it is not known."""
    team = client.default_params.get("team_id")
    return str(team) if team else None


def is_in_workspace(secret: Secret, workspace: str | None, *, many_workspaces: bool) -> bool:
    """May a click from `workspace` touch this finding at all?

    Button values are finding ids, and ids count across every workspace in one database: a
    person in one workspace must never change, or even read, another workspace's finding.
    Findings outside Slack (Confluence, email: workspace "") belong to none and stay open to
    the poster-or-admin check. A request whose workspace is unknown is refused when several
    workspaces share the store, and allowed with one (its findings are all that workspace's).
    """
    if not secret.workspace:
        return True
    if workspace is None:
        return not many_workspaces
    return secret.workspace == workspace


def may_act(client: WebClient, admins: Admins, secret: Secret, user_id: str) -> bool:
    return (
        is_poster(secret, user_id)
        or admins.is_admin(client, user_id)
        or is_poster_by_email(client, secret, user_id)
    )
