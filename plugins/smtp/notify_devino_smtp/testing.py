"""pytest fixtures of the SMTP plugin, registered as the ``notify_devino_smtp`` pytest plugin.

- ``smtp_server``: a started :class:`~notify_devino_smtp.loopback.LoopbackSmtpServer` on
  127.0.0.1 (no TLS, no login), closed after the test. ``smtp_server.messages`` holds what it
  took; ``smtp_server.channel_settings()`` are the settings of a channel that sends to it.
- ``make_smtp_server``: an async factory of more, closed after the test:
  ``await make_smtp_server(security="starttls", users={"alerts": "s3cret"})``.

They need the plugin's ``test`` extra (aiosmtpd, trustme, pytest-asyncio); without it this
module still loads, so installing the plugin never breaks anyone's pytest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .loopback import LoopbackSmtpServer

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover
    pytest_asyncio = None  # type: ignore[assignment]


async def _servers() -> AsyncIterator[Callable[..., Awaitable[LoopbackSmtpServer]]]:
    from .loopback import LoopbackSmtpServer

    started: list[LoopbackSmtpServer] = []

    async def make(**options: Any) -> LoopbackSmtpServer:
        server = LoopbackSmtpServer(**options)
        await server.start()
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in reversed(started):
            await server.aclose()


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def make_smtp_server() -> AsyncIterator[Callable[..., Awaitable[LoopbackSmtpServer]]]:
        """Start loopback SMTP servers; each is closed when the test ends."""
        async for make in _servers():
            yield make

    @pytest_asyncio.fixture
    async def smtp_server(
        make_smtp_server: Callable[..., Awaitable[LoopbackSmtpServer]],
    ) -> LoopbackSmtpServer:
        """A loopback SMTP server without TLS or login."""
        return await make_smtp_server()

else:  # pragma: no cover

    @pytest.fixture
    def make_smtp_server() -> None:
        pytest.fail("the SMTP fixtures need pytest-asyncio: pip install 'notify-devino-smtp[test]'")

    @pytest.fixture
    def smtp_server() -> None:
        pytest.fail("the SMTP fixtures need pytest-asyncio: pip install 'notify-devino-smtp[test]'")
