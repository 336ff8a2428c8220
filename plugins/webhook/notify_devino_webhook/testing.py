"""pytest fixtures of the webhook plugin, registered as the ``notify_devino_webhook`` pytest
plugin.

- ``webhook_receiver``: a started :class:`~notify_devino_webhook.receiver.WebhookReceiver` on
  127.0.0.1 that checks signatures made with :data:`TEST_SECRET`; closed after the test.
- ``make_webhook_receiver``: an async factory of more, closed after the test:
  ``await make_webhook_receiver("another-secret-123", tolerance=60)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from .receiver import WebhookReceiver

TEST_SECRET = "test-webhook-secret-0123456789"

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover
    pytest_asyncio = None  # type: ignore[assignment]

ReceiverFactory = Callable[..., Awaitable[WebhookReceiver]]

if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def make_webhook_receiver() -> AsyncIterator[ReceiverFactory]:
        """Start webhook receivers; each is closed when the test ends."""
        started: list[WebhookReceiver] = []

        async def make(secrets: Any = TEST_SECRET, **options: Any) -> WebhookReceiver:
            receiver = WebhookReceiver(secrets, **options)
            await receiver.start()
            started.append(receiver)
            return receiver

        try:
            yield make
        finally:
            for receiver in reversed(started):
                await receiver.aclose()

    @pytest_asyncio.fixture
    async def webhook_receiver(make_webhook_receiver: ReceiverFactory) -> WebhookReceiver:
        """A receiver that checks signatures made with TEST_SECRET."""
        return await make_webhook_receiver()

else:  # pragma: no cover

    @pytest.fixture
    def make_webhook_receiver() -> None:
        pytest.fail("the webhook fixtures need pytest-asyncio: pip install pytest-asyncio")

    @pytest.fixture
    def webhook_receiver() -> None:
        pytest.fail("the webhook fixtures need pytest-asyncio: pip install pytest-asyncio")
