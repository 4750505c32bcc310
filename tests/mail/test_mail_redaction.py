"""redact-codes on what the mail connectors return: a one-time code a service mailed
(after an agent asked it to reset the person's password) is masked in every field a
stranger wrote, not only in ``subject`` and ``text``."""

from __future__ import annotations

from pathlib import Path

from airlock.default_plugins._policies import RedactCodesPolicy
from airlock.framework.connectors import Access
from airlock.framework.policies import PolicyContext, SessionFacts, Stage
from airlock.settings.config import ServicePermissions
from airlock.testing import run
from airlock_mail.model import Message, MessageList
from tests.mail.conftest import make_connector

CODE = "482913"
RAW = (
    "From: Your code is 731044 <no-reply@example.test>\r\n"
    "To: me@example.test\r\n"
    f"Subject: Your verification code is {CODE}\r\n"
    "Date: Mon, 24 Nov 2025 10:00:00 +0000\r\n"
    "Message-ID: <reset-1@example.test>\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="b"\r\n'
    "\r\n"
    "--b\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    f"Your code: {CODE}\r\n"
    "--b\r\n"
    "Content-Type: text/plain\r\n"
    'Content-Disposition: attachment; filename="verification code 904512.txt"\r\n'
    "\r\n"
    "x\r\n"
    "--b--\r\n"
).encode()


def _context() -> PolicyContext:
    session = SessionFacts(id="ses_1", services=("mail",), access=Access.READ, uid=1000)
    return PolicyContext(
        stage=Stage.OPERATION,
        service="mail",
        access=Access.READ,
        operation="get_message",
        session=session,
        now=0.0,
        permissions=ServicePermissions(),
        rate_limit=60,
    )


def test_a_mailed_code_is_masked_in_every_field_a_stranger_wrote(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
    (root / "new" / "1764000000.M1P1.host").write_bytes(RAW)
    connector = make_connector(root)

    async def read() -> tuple[Message, MessageList]:
        await connector.open()
        listed = await connector.call("list_messages", {})
        assert isinstance(listed, MessageList)
        found = await connector.call("get_message", {"id": listed.messages[0].id})
        assert isinstance(found, Message)
        return found, listed

    message, listing = run(read())
    assert CODE in message.headers["Subject"], "the test's message carries the code"
    policy = RedactCodesPolicy()
    for result in (message, listing):
        shown = policy.filter_result(_context(), result).model_dump_json(by_alias=True)
        for secret in (CODE, "731044", "904512"):
            assert secret not in shown, f"{secret} reached the agent in {shown}"
    shown = policy.filter_result(_context(), message)
    assert isinstance(shown, Message)
    assert shown.message_id == "<reset-1@example.test>", "ids stay usable"
    assert shown.id == message.id
