"""The mark for result fields holding text a stranger wrote (kept apart from the policies,
so a connector's result models can use it without importing the config's models)."""

from __future__ import annotations

from typing import Annotated

__all__ = ["UNTRUSTED", "Untrusted", "UntrustedText"]


class Untrusted:
    """Marks a result field as text a stranger wrote (see :data:`UntrustedText`)."""

    def __repr__(self) -> str:
        return "Untrusted()"


UNTRUSTED = Untrusted()
"""The mark itself, for a field of another type: ``Annotated[list[str], UNTRUSTED]``
marks every text in it."""

UntrustedText = Annotated[str, UNTRUSTED]
"""A result field holding text from outside: a mail subject, an invitation's description.

Result filters such as ``redact-codes`` mask one-time codes and meeting passwords in
every field so marked, whatever the connector; mail's ``subject``, ``text``, ``snippet``
(and the like) are covered by name as well.
"""
