"""The iCloud tests run against the real Dovecot of the IMAP tests (shared fixtures)."""

from tests.mail.dovecot import dovecot  # noqa: F401  # the session's Dovecot
from tests.mail.imap.conftest import fresh_account, imap, mail_account  # noqa: F401
