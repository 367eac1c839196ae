"""`wrap_backends`: give each httpcore connection pool of an httpx client a network backend
wrapped around its own, the seam both `_async_pool` (cheaper idle checks) and
`_read_deadline` (reads held to a deadline) use.

Only pools that are httpcore's own, with a backend of httpcore's kind, are wrapped, and
each once; a client whose transport is something else (a test transport, respx's mock)
is left as it is.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["wrap_backends"]


def wrap_backends(
    client: httpx.Client | httpx.AsyncClient,
    pool_type: type[Any],
    backend_type: type[Any],
    wrapper: type[Any],
) -> None:
    """Replace the network backend of each ``pool_type`` pool under ``client`` (its
    transport and its mounts') by ``wrapper(backend)``, when the backend is a
    ``backend_type`` not yet wrapped (not already a ``wrapper``)."""
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    for transport in transports:
        pool: Any = getattr(transport, "_pool", None)
        backend: Any = getattr(pool, "_network_backend", None)
        if (
            isinstance(pool, pool_type)
            and isinstance(backend, backend_type)
            and not isinstance(backend, wrapper)
        ):
            pool._network_backend = wrapper(backend)
