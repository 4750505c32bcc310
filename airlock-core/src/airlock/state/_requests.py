"""The tables of access requests and of write approvals (one exact call each)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from typing import Any

from airlock.models import RequestStatus
from airlock.state._database import Database, RevocationNotWritten
from airlock.state.records import (
    AccessRequest,
    WriteApproval,
    approval_from_row,
    request_from_row,
)


class RequestTables(Database):
    """Access requests and the write approvals made from them.

    A cancellation of an approval nobody collected yet (revoke-all) that the database
    refused is *held* in memory, as a session's revocation is: every request read back
    shows it revoked, so it cannot be collected, and each housekeeping round tries the
    write again (:meth:`write_held_cancellations`).
    """

    # -- access requests ----------------------------------------------------------

    def insert_request(self, request: AccessRequest) -> None:
        self._execute(
            """INSERT INTO requests (id, code, claim_hash, fingerprint, services, access,
               reason, ttl, operation, requester_uid, requester_pid, agent, sensitive, status,
               created_at, expires_at, decided_at, session_id, budget_nano)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                request.id,
                request.code,
                request.claim_hash,
                request.fingerprint,
                json.dumps(list(request.services)),
                request.access,
                request.reason,
                request.ttl,
                json.dumps(request.operation) if request.operation is not None else None,
                request.requester_uid,
                request.requester_pid,
                request.agent,
                int(request.sensitive),
                request.status,
                request.created_at,
                request.expires_at,
                request.decided_at,
                request.session_id,
                request.budget_nano,
            ),
        )

    def get_request(self, request_id: str) -> AccessRequest | None:
        row = self._one("SELECT * FROM requests WHERE id = ?", (request_id,))
        return self._request(row) if row else None

    def get_request_by_code(self, code: str) -> AccessRequest | None:
        row = self._one("SELECT * FROM requests WHERE code = ?", (code,))
        return self._request(row) if row else None

    def list_requests(self, status: RequestStatus | None = None) -> list[AccessRequest]:
        if status is None or self.held_cancellations:  # rare: filtered as read
            rows = self._all("SELECT * FROM requests ORDER BY created_at, rowid")
        else:
            rows = self._all(
                "SELECT * FROM requests WHERE status = ? ORDER BY created_at, rowid", (status,)
            )
        requests = [self._request(row) for row in rows]
        return [r for r in requests if status is None or r.status == status]

    def _request(self, row: Any) -> AccessRequest:
        """A request as stored, revoked if a cancellation of it is held."""
        request = request_from_row(row)
        at = self.held_cancellations.get(request.id)
        if at is None or not _uncollected(request):
            return request
        return dataclasses.replace(request, status=RequestStatus.REVOKED, decided_at=at)

    def cancel_approval(self, request_id: str, *, at: float) -> bool:
        """Cancel an approved request nobody collected yet (revoke-all), once the record
        of it is on disk; False if it was not one. A write the database refuses is held
        (see the class) and raises :class:`RevocationNotWritten`."""
        try:
            cancelled = self.set_request_status(
                request_id, RequestStatus.REVOKED, decided_at=at, only_if=RequestStatus.APPROVED
            )
        except sqlite3.Error as exc:
            self.hold_cancellation(request_id, at=at)
            raise RevocationNotWritten(str(exc)) from exc
        self.held_cancellations.pop(request_id, None)
        return cancelled

    def hold_cancellation(self, request_id: str, *, at: float) -> None:
        """Hold a cancellation on record without writing it (the database just refused
        another): the request reads as revoked from now on."""
        self.held_cancellations.setdefault(request_id, at)

    def write_held_cancellations(self) -> list[str]:
        """Write the cancellations held since the database refused them; the requests
        written. ``sqlite3.Error`` when it refuses again (the rest stay held), at once:
        the write runs on the daemon's event loop."""
        return self._write_held(
            self.held_cancellations,
            lambda request_id, at: self.set_request_status(
                request_id, RequestStatus.REVOKED, decided_at=at, only_if=RequestStatus.APPROVED
            ),
        )

    def set_request_status(
        self,
        request_id: str,
        status: RequestStatus,
        *,
        decided_at: float,
        session_id: str | None = None,
        only_if: RequestStatus = RequestStatus.PENDING,
    ) -> bool:
        """Move a request from *only_if* to *status*; False if it was not in *only_if*."""
        cursor = self._execute(
            """UPDATE requests SET status = ?, decided_at = ?, session_id = COALESCE(?, session_id)
               WHERE id = ? AND status = ?""",
            (status, decided_at, session_id, request_id, only_if),
        )
        return cursor.rowcount == 1

    def replace_claim(self, request_id: str, claim_hash: str) -> bool:
        """Give a pending request a new claim (the old one stops working); False if it is
        no longer pending."""
        cursor = self._execute(
            "UPDATE requests SET claim_hash = ? WHERE id = ? AND status = ?",
            (claim_hash, request_id, RequestStatus.PENDING),
        )
        return cursor.rowcount == 1

    def count_pending(self, uid: int | None = None) -> int:
        """Requests still waiting for the person (of one uid, or of all)."""
        sql = "SELECT COUNT(*) AS n FROM requests WHERE status = ?"
        params: list[Any] = [RequestStatus.PENDING]
        if uid is not None:
            sql += " AND requester_uid = ?"
            params.append(uid)
        row = self._one(sql, params)
        return int(row["n"]) if row else 0

    def count_unapproved_since(self, uid: int, since: float) -> int:
        """Requests *uid* made since *since* that were not approved (waiting, denied,
        withdrawn, expired or cancelled)."""
        row = self._one(
            "SELECT COUNT(*) AS n FROM requests "
            "WHERE requester_uid = ? AND created_at >= ? AND status != ?",
            [uid, since, RequestStatus.APPROVED],
        )
        return int(row["n"]) if row else 0

    def uncollected_requests(self) -> list[AccessRequest]:
        """Approved requests whose session nobody has collected yet."""
        rows = self._all(
            "SELECT * FROM requests WHERE status = ? AND session_id IS NULL "
            "ORDER BY decided_at, rowid",
            (RequestStatus.APPROVED,),
        )
        return [r for r in map(self._request, rows) if r.status == RequestStatus.APPROVED]

    def used_codes(self) -> set[str]:
        """Every request code still held by a stored request (codes are unique)."""
        return {row["code"] for row in self._all("SELECT code FROM requests")}

    def waited_since(self, since: float) -> list[AccessRequest]:
        """Requests that waited for the person at some time after *since* and did not end
        by an approval: still pending, or denied, withdrawn or timed out since then."""
        rows = self._all(
            "SELECT * FROM requests WHERE status IN (?, ?, ?) AND expires_at > ? "
            "AND (decided_at IS NULL OR decided_at > ?) ORDER BY created_at, rowid",
            (RequestStatus.PENDING, RequestStatus.DENIED, RequestStatus.EXPIRED, since, since),
        )
        return [self._request(row) for row in rows]

    def pending_requests_due(self, now: float) -> list[AccessRequest]:
        """Pending requests whose ``expires_at`` has passed."""
        rows = self._all(
            "SELECT * FROM requests WHERE status = ? AND expires_at <= ? ORDER BY expires_at",
            (RequestStatus.PENDING, now),
        )
        return [self._request(row) for row in rows]

    # -- write approvals ------------------------------------------------------------

    def insert_write_approval(self, approval: WriteApproval) -> None:
        self._execute(
            """INSERT INTO write_approvals (request_id, operation_hash, session_id, created_at,
               expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?)""",
            (
                approval.request_id,
                approval.operation_hash,
                approval.session_id,
                approval.created_at,
                approval.expires_at,
                approval.used_at,
            ),
        )

    def get_write_approval(self, request_id: str) -> WriteApproval | None:
        row = self._one("SELECT * FROM write_approvals WHERE request_id = ?", (request_id,))
        return approval_from_row(row) if row else None

    def consume_write_approval(
        self, operation_hash: str, *, session_id: str | None, now: float
    ) -> WriteApproval | None:
        """Use one unused, unexpired approval of *operation_hash* for *session_id*.

        Returns the approval now marked used, or None when there is none: each approval
        lets exactly one operation through, even when two calls race.
        """
        with self.transaction():
            row = self._conn.execute(
                """SELECT * FROM write_approvals WHERE operation_hash = ? AND used_at IS NULL
                   AND expires_at > ? AND session_id IS ? ORDER BY created_at, rowid LIMIT 1""",
                (operation_hash, now, session_id),
            ).fetchone()
            if row is None:
                return None
            self._conn.execute(
                "UPDATE write_approvals SET used_at = ? WHERE request_id = ?",
                (now, row["request_id"]),
            )
        approval = approval_from_row(row)
        return WriteApproval(
            request_id=approval.request_id,
            operation_hash=approval.operation_hash,
            created_at=approval.created_at,
            expires_at=approval.expires_at,
            session_id=approval.session_id,
            used_at=now,
        )

    def restore_write_approval(self, approval: WriteApproval) -> None:
        """Make an approval :meth:`consume_write_approval` just used usable again (its
        call was stopped before it reached the service)."""
        self._execute(
            "UPDATE write_approvals SET used_at = NULL WHERE request_id = ? AND used_at = ?",
            (approval.request_id, approval.used_at),
        )

    def bind_write_approval(self, request_id: str, session_id: str) -> bool:
        """Attach the session created for *request_id* to its write approval."""
        cursor = self._execute(
            "UPDATE write_approvals SET session_id = ? WHERE request_id = ?",
            (session_id, request_id),
        )
        return cursor.rowcount == 1


def _uncollected(request: AccessRequest) -> bool:
    return request.status == RequestStatus.APPROVED and request.session_id is None
