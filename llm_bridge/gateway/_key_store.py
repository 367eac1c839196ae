"""Stored Responses, one gateway key's apart from another's.

OpenAI keeps a stored response within the project that made it: another project's key
gets a 404 for its id, cannot read its input items, continue it (``previous_response_id``)
or delete it. The gateway's keys are its projects, so each key sees its own responses
only. `KeyScopedStore` is the gateway's store as one key sees it: every id it is given is
filed under the key's name, in whichever store the gateway has (this process's, the one
its workers share in a SQLite state file, or the one its replicas share in Redis), so
nothing about the stores themselves changes.
"""

from __future__ import annotations

from typing import Optional

from .._response_store import AsyncResponseStore, StoredResponse

__all__ = ["KeyScopedStore"]


class KeyScopedStore:
    """``store`` as the gateway key ``owner`` sees it (an `AsyncResponseStore`). ``read``:
    an id and the entry already read for it while answering this request (the gateway
    checks a continuation's ``previous_response_id`` before the transport reads it), so
    one request reads a shared store once."""

    def __init__(
        self,
        store: AsyncResponseStore,
        owner: str,
        read: Optional[tuple[str, StoredResponse]] = None,
    ) -> None:
        self.store = store
        self.owner = owner
        self.read = read

    def _filed(self, response_id: str) -> str:
        # A key name has no "/" (`_config._NAME`), so no two keys' ids can meet.
        return f"{self.owner}/{response_id}"

    async def aget(self, response_id: str) -> Optional[StoredResponse]:
        if self.read is not None and self.read[0] == response_id:
            return self.read[1]
        return await self.store.aget(self._filed(response_id))

    async def aput(self, response_id: str, entry: StoredResponse) -> None:
        await self.store.aput(self._filed(response_id), entry)

    async def adelete(self, response_id: str) -> bool:
        return await self.store.adelete(self._filed(response_id))

    def describe(self) -> str:
        return self.store.describe()

    async def aclose(self) -> None:
        """Nothing: the gateway closes the store itself once, at shutdown."""
