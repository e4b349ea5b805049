"""What the buttons, modals, App Home and /leakwatch do, behind the thin Bolt listeners.

    actions = FindingActions(db, settings)
    actions.set_status(client, finding_id, user_id, "rotated")   -> Outcome
    actions.steps_view(finding_id, user_id)                      -> view dict | None
    actions.delete_message(client, finding_id, user_id)          -> Outcome
    actions.home_view(client, workspace, user_id)                -> view dict
    actions.status_text(client, workspace, user_id)              -> str

Who may act: the poster and the security admins (bot/notify/access.py); anyone else gets
`Outcome(ok=False, text=<refusal>)`, which the listener shows ephemerally. A click from another
workspace than the finding's is refused the same way, whoever clicks (many workspaces share one
store, and button values are finding ids). The clicking workspace is `workspace=` where given,
else the team of the request's client. Every action, refused ones included, is an AuditEvent
with origin "slack". Messages are updated through the Notifier.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.logs import redact
from bot.notify import blocks
from bot.notify.access import Admins, is_in_workspace, may_act, workspace_of
from bot.notify.findings import admin_summary, finding_of
from bot.notify.notifier import Notifier
from bot.notify.playbooks import playbook_for
from bot.store import queries
from bot.store.db import Database
from bot.store.models import Occurrence, Secret, utcnow

log = logging.getLogger(__name__)

MAX_REASON = 500
HOME_FINDINGS = 30  # App Home shows this many of a user's own open findings (100-block views)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    text: str = ""


def finding_id_of(value: str | None) -> int | None:
    """Button values and modal metadata carry only a finding id."""
    try:
        number = int(str(value or "").split("|", 1)[0])
    except ValueError:
        return None
    return number if number > 0 else None


class FindingActions:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        admins: Admins | None = None,
        admin_client: WebClient | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.settings = settings
        self.admins = admins or Admins(settings.admins)
        self.clock = clock
        if admin_client is None and settings.slack is not None and settings.slack.admin_token:
            admin_client = WebClient(
                token=settings.slack.admin_token, base_url=settings.slack.api_url
            )
        self.admin_client = admin_client

    def notifier(self, client: WebClient) -> Notifier:
        return Notifier(client, self.db, self.settings, self.admin_client, clock=self.clock)

    def is_admin(self, client: WebClient, user_id: str) -> bool:
        return self.admins.is_admin(client, user_id)

    # -- permission and audit --------------------------------------------------------------------

    def _authorize(
        self,
        session: Session,
        client: WebClient,
        finding_id: int,
        user_id: str,
        action: str,
        workspace: str | None = None,
    ) -> tuple[Secret | None, Outcome | None]:
        secret = session.get(Secret, finding_id)
        if secret is None:
            return None, Outcome(False, f"Finding {finding_id} no longer exists.")
        if self._is_foreign(session, secret, user_id, action, workspace or workspace_of(client)):
            return None, Outcome(False, blocks.refusal_text(finding_id))
        if not may_act(client, self.admins, secret, user_id):
            self._audit(session, secret, user_id, f"refused:{action}")
            return None, Outcome(False, blocks.refusal_text(finding_id))
        return secret, None

    def _is_foreign(
        self, session: Session, secret: Secret, user_id: str, action: str, workspace: str | None
    ) -> bool:
        """A click from another workspace than the finding's: audited as refused."""
        many = self.settings.slack_oauth is not None
        if is_in_workspace(secret, workspace, many_workspaces=many):
            return False
        log.warning("refused %s on finding %s from another workspace", action, secret.id)
        self._audit(
            session, secret, user_id, f"refused:{action}", {"from_workspace": workspace or ""}
        )
        return True

    def _audit(
        self,
        session: Session,
        secret: Secret,
        user_id: str,
        action: str,
        detail: dict[str, str] | None = None,
    ) -> None:
        queries.record_audit(
            session,
            workspace=secret.workspace,
            secret_id=secret.id,
            actor=user_id,
            action=action,
            origin="slack",
            now=self.clock(),
            detail=detail,
        )

    def may_act(
        self,
        client: WebClient,
        finding_id: int,
        user_id: str,
        action: str,
        *,
        workspace: str | None = None,
    ) -> Outcome:
        """Check (and audit a refusal) before opening a modal."""
        with self.db.session() as session:
            _, refused = self._authorize(session, client, finding_id, user_id, action, workspace)
        return refused or Outcome(True)

    # -- actions -----------------------------------------------------------------------------

    def set_status(
        self,
        client: WebClient,
        finding_id: int,
        user_id: str,
        status: str,
        reason: str | None = None,
        *,
        workspace: str | None = None,
    ) -> Outcome:
        """Mark a finding rotated, not a secret, or open again; then update its messages."""
        with self.db.session() as session:
            secret, refused = self._authorize(
                session, client, finding_id, user_id, status, workspace
            )
            if refused is not None or secret is None:
                return refused or Outcome(False)
            if secret.status == status and status != "open":
                return Outcome(True, f"Already marked {blocks.STATUS_TEXT[status].lower()}.")
            if reason is not None:  # a reason is typed by a person: it may hold the very key
                reason = redact(reason)[:MAX_REASON]
            queries.set_status(
                session, secret, status, by=user_id, now=self.clock(), reason=reason, origin="slack"
            )
        self.notifier(client).refresh_finding(finding_id)
        return Outcome(True, f"Marked {blocks.STATUS_TEXT[status].lower()}. Thank you.")

    def steps_view(
        self, finding_id: int, user_id: str, *, workspace: str | None = None
    ) -> dict[str, object] | None:
        """The rotation-steps modal; anyone in the finding's workspace may read steps (they hold
        no secret), audited. None: no such finding, or another workspace's."""
        with self.db.session() as session:
            secret = session.get(Secret, finding_id)
            if secret is None:
                return None
            if self._is_foreign(session, secret, user_id, "opened_rotation_steps", workspace):
                return None
            self._audit(session, secret, user_id, "opened_rotation_steps")
            finding = finding_of(secret)
        return blocks.rotation_steps_view(finding, playbook_for(finding.rule_id, finding.provider))

    def reason_view(self, finding_id: int) -> dict[str, object] | None:
        with self.db.session() as session:
            secret = session.get(Secret, finding_id)
            if secret is None:
                return None
            finding = finding_of(secret)
        return blocks.not_a_secret_view(finding, str(finding_id))

    def record_click(
        self, finding_id: int, user_id: str, action: str, *, workspace: str | None = None
    ) -> None:
        """A link button (open keys, usage page) was pressed: only worth an audit line."""
        with self.db.session() as session:
            secret = session.get(Secret, finding_id)
            if secret is not None and not self._is_foreign(
                session, secret, user_id, action, workspace
            ):
                self._audit(session, secret, user_id, action)

    def delete_message(
        self,
        client: WebClient,
        finding_id: int,
        user_id: str,
        *,
        workspace: str | None = None,
    ) -> Outcome:
        """Delete the Slack messages holding the key, with the admin's user token."""
        if self.admin_client is None:
            return Outcome(
                False,
                "Deleting needs an admin token (SLACK_ADMIN_TOKEN). "
                "Please delete the message yourself.",
            )
        with self.db.session() as session:
            secret, refused = self._authorize(
                session, client, finding_id, user_id, "delete", workspace
            )
            if refused is not None or secret is None:
                return refused or Outcome(False)
        try:
            count = self.notifier(client).delete_source_message(finding_id)
        except SlackApiError as error:
            code = error.response.get("error") if error.response is not None else None
            log.warning("delete for finding %s failed: %s", finding_id, code)
            return Outcome(False, f"Slack refused to delete the message ({code or 'error'}).")
        with self.db.session() as session:
            secret = session.get(Secret, finding_id)
            if secret is not None:
                self._audit(session, secret, user_id, "deleted_message", {"count": str(count)})
        self.notifier(client).refresh_finding(finding_id)
        if count == 0:
            return Outcome(True, "There was no Slack message left to delete.")
        return Outcome(True, "Deleted. The key is still valid until you rotate it.")

    def record_command(
        self, workspace: str, user_id: str, action: str, detail: dict[str, str] | None = None
    ) -> None:
        """An admin command (`scan`, `digest preview`, or a refused one) for the audit trail."""
        with self.db.session() as session:
            queries.record_audit(
                session,
                workspace=workspace,
                secret_id=None,
                actor=user_id,
                action=action,
                origin="slack",
                now=self.clock(),
                detail=detail,
            )

    # -- App Home and /leakwatch -------------------------------------------------------------------

    def _own_open(
        self, session: Session, client: WebClient, workspace: str, user_id: str
    ) -> list[Secret]:
        identities = [user_id]
        email = _email(client, user_id)
        if email:
            identities.append(email)
        seen: dict[int, Secret] = {}
        for ws in dict.fromkeys([workspace, ""]):
            for identity in identities:
                for secret in queries.open_findings_for_user(session, workspace=ws, user=identity):
                    seen.setdefault(secret.id, secret)
        return sorted(seen.values(), key=lambda s: (-s.risk_score, s.first_seen, s.id))

    def home_view(self, client: WebClient, workspace: str, user_id: str) -> dict[str, object]:
        with self.db.session() as session:
            own = self._own_open(session, client, workspace, user_id)
            findings = [finding_of(s, _own_occurrence(s, user_id)) for s in own[:HOME_FINDINGS]]
            summary = admin_summary(session, workspace) if self.is_admin(client, user_id) else None
        playbooks = {f.id: playbook_for(f.rule_id, f.provider) for f in findings}
        return blocks.home_view(
            findings,
            playbooks,
            can_delete=self.admin_client is not None,
            summary=summary,
            total_own_open=len(own),
        )

    def status_text(self, client: WebClient, workspace: str, user_id: str) -> str:
        with self.db.session() as session:
            own = self._own_open(session, client, workspace, user_id)
            lines = [
                f"You have {len(own)} open finding{'s' if len(own) != 1 else ''}."
                if own
                else "You have no open findings. Thank you!"
            ]
            for secret in own[:10]:
                f = finding_of(secret, _own_occurrence(secret, user_id))
                lines.append(
                    f"• {blocks.escape(f.name, 120)} `{blocks.escape(f.preview, 60, code=True)}`"
                    f" {blocks.describe_place(f.place)}"
                )
            if self.is_admin(client, user_id):
                counts = queries.counts_by_status(session, workspace=workspace)
                lines.append(
                    "Workspace: "
                    + ", ".join(
                        f"{blocks.STATUS_TEXT.get(k, k).lower()} {v}" for k, v in counts.items()
                    )
                )
        return "\n".join(lines)


def _own_occurrence(secret: Secret, user_id: str) -> Occurrence | None:
    return next((o for o in secret.occurrences if o.author == user_id), None)


def _email(client: WebClient, user_id: str) -> str | None:
    try:
        profile = client.users_info(user=user_id)["user"].get("profile") or {}
    except SlackApiError:  # no users:read.email, unknown user: the id finds Slack posts still
        return None
    email = profile.get("email")
    return str(email) if email else None
