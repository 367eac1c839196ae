"""Reading an ASGI request body within a limit: what the API and the dashboard share."""

from __future__ import annotations

from typing import Any

__all__ = ["BodyTooLarge", "ClientGone", "ClientStalled", "read_body"]


class ClientGone(Exception):
    """The client hung up before the exchange was complete."""


class ClientStalled(Exception):
    """The client read none of a streamed answer for longer than the gateway waits
    (``[gateway] client_write_timeout``): its connection is given up."""


class BodyTooLarge(Exception):
    """A request body went past its limit (reading stopped there)."""


async def read_body(receive: Any, limit: int) -> bytes:
    """The request body, read message by message; `BodyTooLarge` as soon as it passes
    ``limit`` bytes, `ClientGone` when the client disconnects first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
