"""The 10 requests/s limit, as the sandbox measures it, however many tasks, channels and
dispatchers send at once on one account; and one login for all of a channel's senders.

The sandbox's own limit stays on (10 per second, answered with a fault): had the client let one
request too many through, the sandbox would have refused it, and the tests check it refused
none. Each test counts windows on the sandbox's arrival timestamps, not on the client's clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from notify_devino.config import Config, load_config
from notify_devino.dispatcher import Dispatcher, SyncDispatcher
from notify_devino.plugins import PluginManager
from notify_devino.types import SendOutcome
from notify_devino_soap.emulator import Sandbox


def max_in_any_window(times: list[float], window: float = 1.0) -> int:
    """The most timestamps in any half-open window [t, t + window)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def numbers(count: int, first: int = 0) -> list[str]:
    return [f"7903{n:07d}" for n in range(first, first + count)]


SENDERS = 60
"""Six times the limit: six seconds of sends, every window but the last one full (the limit
is used, not idled under). 200 proved nothing more in 20 seconds."""


@pytest.mark.slow
async def test_60_concurrent_sends_keep_to_10_per_second_with_one_login(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, make_config: Callable[..., Config]
) -> None:
    assert devino_sandbox.config.rate_limit.enabled
    assert devino_sandbox.config.rate_limit.requests_per_second == 10
    config = make_config(devino_sandbox.url)  # the default client rate: 10 per second
    async with Dispatcher(config, plugins=devino_plugins) as dispatcher:
        results = await asyncio.gather(
            *(dispatcher.send(f"alert {n}", to=[n]) for n in numbers(SENDERS))
        )
    assert all(r.recipients[0].outcome is SendOutcome.ACCEPTED for r in results)
    records = devino_sandbox.requests
    operations = [r.operation for r in records]
    assert operations.count("GetSessionID") == 1  # 60 senders, one login
    assert operations.count("SendMessage") == SENDERS  # each sent once, none retried
    assert {r.status for r in records} == {200}  # the sandbox refused nothing
    peak = max_in_any_window([r.monotonic for r in records])
    assert peak == 10  # never more; and the limit was used, not idled under
    sends = devino_sandbox.state.sends_per_destination()
    assert set(sends) == set(numbers(SENDERS))
    assert set(sends.values()) == {1}


def write_two_channel_config(tmp_path: Path, url: str) -> Path:
    account = {
        "url": url,
        "login": "demo",
        "password": "demo-password",
        "sender": "ALERTS",
        "timeout_seconds": 5,
    }
    data = {
        "version": 1,
        "default_channel": "sms",
        "channels": {
            "sms": {"type": "devino_soap", "settings": account},
            "sms_backup": {"type": "devino_soap", "settings": account},
        },
    }
    path = tmp_path / "two-channels.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
async def test_channels_and_dispatchers_of_one_account_share_its_limit(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, tmp_path: Path
) -> None:
    # Two channels of one dispatcher, a second async dispatcher, and a SyncDispatcher in
    # another thread (its own event loop), all on the demo account, all at once.
    path = write_two_channel_config(tmp_path, devino_sandbox.url)
    config = load_config(path)

    def from_a_thread() -> list[SendOutcome]:
        with SyncDispatcher(config, plugins=PluginManager()) as sync:
            return [sync.send("sync", to=[n]).recipients[0].outcome for n in numbers(8, 100)]

    async with (
        Dispatcher(config, plugins=devino_plugins) as first,
        Dispatcher(config, plugins=PluginManager()) as second,
    ):
        outcomes = await asyncio.gather(
            asyncio.to_thread(from_a_thread),
            *(first.send("a", to=[n]) for n in numbers(8, 0)),
            *(first.send("b", to=[n], channel="sms_backup") for n in numbers(8, 200)),
            *(second.send("c", to=[n]) for n in numbers(8, 300)),
        )
    assert outcomes[0] == [SendOutcome.ACCEPTED] * 8
    assert all(r.recipients[0].outcome is SendOutcome.ACCEPTED for r in outcomes[1:])
    records = devino_sandbox.requests
    assert len(records) == 32 + 4  # four senders' logins: a session is per channel
    assert {r.status for r in records} == {200}
    assert max_in_any_window([r.monotonic for r in records]) <= 10
