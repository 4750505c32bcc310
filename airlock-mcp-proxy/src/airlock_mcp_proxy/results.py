"""An MCP tool's answer as Airlock hands it to the agent: the upstream's text and
structured content, images and other binary data described but not passed on. Everything
the upstream wrote is text from outside (the code-redaction policy masks codes in it)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import BaseModel

from airlock.plugin import UNTRUSTED, UntrustedText, withhold

# UNTRUSTED marks a field holding JSON rather than one string: redact-codes masks codes in
# every string inside it.


class McpContent(BaseModel):
    """One content block: ``text``; an ``image``, ``audio`` or ``resource`` blob as its
    type and size only; a ``resource_link`` as its address."""

    type: str
    text: UntrustedText | None = None
    mime_type: str | None = None
    bytes: int | None = None
    """The size of binary data that was left out (images, audio, blobs)."""
    uri: UntrustedText | None = None
    name: UntrustedText | None = None


class McpToolResult(BaseModel):
    tool: str
    """The upstream server's own name of the tool."""
    is_error: bool = False
    """The tool reported a failure (its text says what)."""
    content: list[McpContent] = []
    structured: Annotated[dict[str, Any] | None, UNTRUSTED] = None
    """The tool's structured content, as the server sent it."""


def _size(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        return len(data)


def content_block(block: Any) -> McpContent:
    """One of the SDK's content blocks as :class:`McpContent`."""
    kind = str(getattr(block, "type", "unknown"))
    mime = getattr(block, "mime_type", None)
    if kind == "text":
        return McpContent(type=kind, text=block.text)
    if kind in ("image", "audio"):
        return McpContent(type=kind, mime_type=mime, bytes=_size(block.data))
    if kind == "resource":
        resource = block.resource
        text = getattr(resource, "text", None)
        blob = getattr(resource, "blob", None)
        return McpContent(
            type=kind,
            uri=str(resource.uri),
            mime_type=getattr(resource, "mime_type", None),
            text=text,
            bytes=_size(blob) if blob is not None else None,
        )
    if kind == "resource_link":
        return McpContent(type=kind, uri=str(block.uri), name=block.name, mime_type=mime)
    return McpContent(type=kind)


def tool_result(tool: str, answer: Any, secrets: Iterable[str]) -> McpToolResult:
    """The SDK's CallToolResult as what the agent sees, with the secrets masked."""
    result = McpToolResult(
        tool=tool,
        is_error=bool(answer.is_error),
        content=[content_block(b) for b in answer.content],
        structured=answer.structured_content,
    )
    return McpToolResult.model_validate(withhold(result.model_dump(), list(secrets)))


def error_result(tool: str, message: str, secrets: Iterable[str]) -> McpToolResult:
    """An error the server answered with, as a failed tool result."""
    result = McpToolResult(
        tool=tool, is_error=True, content=[McpContent(type="text", text=message)]
    )
    return McpToolResult.model_validate(withhold(result.model_dump(), list(secrets)))
