"""One `openai.AsyncOpenAI` client per event loop and (server, key), shared by every backend.

Each match of a tournament opens its own backends (see haggler.run.cast); if each built its own
client, every match would pay for a new client, connection pool and TCP (and TLS) handshakes.
A client's connections belong to the event loop that opened them, so clients are kept per loop,
and closed when that loop shuts down: `asyncio.run` (and pytest's loops) close every open async
generator at the end, which runs the `finally` of a small generator parked for that purpose.

The clients use the SDK's aiohttp transport when it is installed (`openai[aiohttp]`): under many
concurrent calls it costs the client a fraction of the CPU of the default httpx pool, whose
bookkeeping grows with the number of open connections. Without it, the SDK's default is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import openai

__all__ = ["shared_client"]

logger = logging.getLogger(__name__)

_Key = tuple[str | None, str | None, str | None]  # (base URL, API key, organization)


class _LoopClients:
    """The clients of one event loop, and the parked generator that closes them."""

    def __init__(self) -> None:
        self.clients: dict[_Key, openai.AsyncOpenAI] = {}
        self.closer: AsyncIterator[None] | None = None


_BY_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
    weakref.WeakKeyDictionary()
)


async def shared_client(
    base_url: str | None, api_key: str | None, organization: str | None = None
) -> openai.AsyncOpenAI:
    """The running loop's client for `base_url`, `api_key` and `organization`; None for any is
    the SDK's default (OPENAI_BASE_URL or api.openai.com; OPENAI_API_KEY; OPENAI_ORG_ID)."""
    loop = asyncio.get_running_loop()
    for closed in [other for other in list(_BY_LOOP) if other.is_closed()]:
        # A loop closed without shutting down its async generators (not asyncio.run's way)
        # never ran the closer: let its clients go rather than keep them, and it, alive.
        _BY_LOOP.pop(closed, None)
    kept = _BY_LOOP.get(loop)
    if kept is None:
        kept = _BY_LOOP[loop] = _LoopClients()
        kept.closer = _close_at_loop_end(kept)
        # Its first step runs to the `yield` at once, and registers it with the loop, which
        # closes it (running the `finally`) when the loop shuts down.
        await anext(kept.closer)
    key = (base_url, api_key, organization)
    client = kept.clients.get(key)
    if client is None:
        client = kept.clients[key] = _new_client(base_url, api_key, organization)
    return client


def _new_client(
    base_url: str | None, api_key: str | None, organization: str | None
) -> openai.AsyncOpenAI:
    import openai

    http_client = None
    with contextlib.suppress(AttributeError, ImportError, RuntimeError):
        # RuntimeError: an SDK without the aiohttp extra; AttributeError: one that predates it.
        http_client = openai.DefaultAioHttpClient()
    # Retries belong to haggler.llm.retry alone.
    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key=api_key,
        organization=organization,
        max_retries=0,
        http_client=http_client,
    )


async def _close_at_loop_end(kept: _LoopClients) -> AsyncIterator[None]:
    try:
        yield
    finally:
        with contextlib.suppress(KeyError, RuntimeError):
            del _BY_LOOP[asyncio.get_running_loop()]
        clients = list(kept.clients.values())
        kept.clients.clear()
        for client in clients:
            try:
                await client.close()
            except Exception as error:  # a client that cannot close cleanly holds nothing more
                logger.debug("closing an OpenAI client failed: %r", error)
