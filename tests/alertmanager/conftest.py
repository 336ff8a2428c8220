"""Fixtures of the Alertmanager tests: a real Alertmanager (``tests.peers.alertmanager``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.peers.alertmanager import AlertmanagerPeer, find_binary

AlertmanagerFactory = Callable[[str], Awaitable[AlertmanagerPeer]]


@pytest.fixture(scope="session")
def alertmanager_binary() -> Path:
    found = find_binary()
    if found is None:
        pytest.fail(
            "no Alertmanager binary: run 'python -m tests.peers install' as root (tox's tests "
            "env does), or set NOTIFY_DEVINO_ALERTMANAGER"
        )
    return found


@pytest.fixture
async def alertmanager(
    alertmanager_binary: Path, tmp_path: Path
) -> AsyncIterator[AlertmanagerFactory]:
    """``await alertmanager(config_yaml)`` starts one on loopback; stopped after the test (its
    log is printed when the test fails)."""
    started: list[AlertmanagerPeer] = []

    async def start(config: str) -> AlertmanagerPeer:
        folder = tmp_path / f"alertmanager-{len(started)}"
        folder.mkdir()
        peer = AlertmanagerPeer(alertmanager_binary, config, folder)
        started.append(peer)
        await peer.start()
        return peer

    yield start
    for peer in started:
        await peer.stop()
        print(f"--- {peer.log_file} (last lines) ---")
        print("\n".join(peer.log().splitlines()[-30:]))
