"""The sandbox's clock-driven core without HTTP, and the server's lifecycle."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notify_devino_soap.emulator import (
    Account,
    ManualClock,
    Sandbox,
    SandboxConfig,
    SandboxFault,
    SandboxState,
)
from notify_devino_soap.emulator.state import STATE_DESCRIPTIONS, is_final
from notify_devino_soap.emulator.wire import format_datetime, parse_datetime
from notify_devino_soap.segments import count_segments

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NUMBERS = ["79031234567", "79141234567", "4915112345678", "79990000001", "380501234567"]


def make_state(balance: str = "1000000") -> tuple[SandboxState, ManualClock, str]:
    clock = ManualClock(START)
    config = SandboxConfig(accounts=[Account(login="a", password="p", balance=Decimal(balance))])
    state = SandboxState(config, clock)
    return state, clock, state.login("a", "p")


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from("ab €{Жж😀\n"), min_size=1, max_size=400),
    numbers=st.lists(st.sampled_from(NUMBERS), min_size=1, max_size=5),
)
def test_ids_and_charges_follow_segments(text: str, numbers: list[str]) -> None:
    state, _, session_id = make_state()
    before = state.balance(session_id)
    ids = state.send(session_id, "SENDER", numbers, text)
    segments = count_segments(text).segments
    assert ids == list(range(ids[0], ids[0] + segments * len(numbers)))
    expected = sum((state.config.price_for(n) * segments for n in numbers), Decimal(0))
    assert before - state.balance(session_id) == expected
    destinations = [m.destination for m in state.messages()]
    assert destinations == [n for n in numbers for _ in range(segments)]


def test_a_bad_value_anywhere_stores_nothing() -> None:
    state, _, session_id = make_state()
    with pytest.raises(SandboxFault) as caught:
        state.send(session_id, "SENDER", ["79031234567", "79141234567", "123"], "Hi")
    assert caught.value.reason.endswith("Invalid destination address: 123")
    assert caught.value.code == "soap:Receiver"
    assert caught.value.http_status == 500
    assert state.messages() == []
    assert state.balance(session_id) == Decimal("1000000")
    assert state.send(session_id, "SENDER", ["79031234567"], "Hi") == [
        state.config.message_id_start
    ]


def test_exact_balance_is_enough() -> None:
    state, _, session_id = make_state("3.00")
    state.send(session_id, "SENDER", ["79031234567", "79031234568"], "Hi")
    assert state.balance(session_id) == Decimal("0.00")
    with pytest.raises(SandboxFault, match="Not enough credits"):
        state.send(session_id, "SENDER", ["79031234567"], "Hi")


def test_session_ids() -> None:
    state, clock, session_id = make_state()
    assert len(session_id) == 36
    assert session_id.isupper() or session_id.isdigit()
    assert state.account_for_session(session_id).login == "a"
    clock.advance(timedelta(minutes=120))
    with pytest.raises(SandboxFault, match="SessionID expired"):
        state.account_for_session(session_id)
    with pytest.raises(SandboxFault, match="Invalid session"):
        state.account_for_session("X" * 36)
    with pytest.raises(SandboxFault, match="Argument is null or empty: sessionID"):
        state.account_for_session(None)


def test_states_are_computed_from_the_clock() -> None:
    state, clock, session_id = make_state()
    (delivered,) = state.send(session_id, "SENDER", ["79031234567"], "Hi")
    (rejected,) = state.send(session_id, "SENDER", ["79990000001"], "Hi")
    timeline = []
    for seconds in (0, 1, 2, 4):
        clock.set(START + timedelta(seconds=seconds))
        timeline.append(
            (
                state.message_state(session_id, delivered).state,
                state.message_state(session_id, rejected).state,
            )
        )
    assert timeline == [(-40, -40), (-30, -30), (-1, 42), (0, 42)]


def test_timings_can_coincide() -> None:
    clock = ManualClock(START)
    config = SandboxConfig(delivery={"gateway": 0, "sent": 0, "delivered": 0})
    state = SandboxState(config, clock)
    session_id = state.login("demo", "demo-password")
    (message_id,) = state.send(session_id, "SENDER", ["79031234567"], "Hi")
    record = state.message_state(session_id, message_id)
    assert (record.state, record.submitted_date_utc, record.reported_date_utc) == (0, START, START)


def test_incoming_visibility_and_order() -> None:
    state, _, session_id = make_state()
    state.inject_incoming("79031234567", "4242", "later", START + timedelta(minutes=2))
    state.inject_incoming("79031234567", "4242", "earlier", START)
    state.inject_incoming("79031234567", "4242", "naive", datetime(2026, 3, 2, 9, 1))
    found = state.incoming(session_id, START, START + timedelta(minutes=5))
    assert [r.data for r in found] == ["earlier", "naive", "later"]
    assert state.incoming(session_id, START + timedelta(minutes=5), START) == []
    with pytest.raises(ValueError, match="no account"):
        state.inject_incoming("1", "2", "x", login="nobody")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-02T09:00:00", datetime(2026, 3, 2, 9, 0)),
        ("2026-03-02T09:00", datetime(2026, 3, 2, 9, 0)),
        ("2026-03-02T09:00:00.1234567Z", datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)),
        (" 2026-03-02T12:00:00+03:00 ", datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
    ],
)
def test_parse_datetime(text: str, expected: datetime) -> None:
    assert parse_datetime(text) == expected
    assert (parse_datetime(text).tzinfo is None) == (expected.tzinfo is None)


def test_format_datetime() -> None:
    assert format_datetime(datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)) == (
        "2026-03-02T09:00:00.123Z"
    )
    assert format_datetime(datetime(1, 1, 1)) == "0001-01-01T00:00:00"


async def test_lifecycle(devino_sandbox_config: SandboxConfig) -> None:
    sandbox = Sandbox(devino_sandbox_config)
    with pytest.raises(RuntimeError):
        _ = sandbox.url
    await sandbox.start()
    try:
        assert sandbox.url == f"http://127.0.0.1:{sandbox.port}/SmsService.asmx"
        with pytest.raises(RuntimeError):
            await sandbox.start()
    finally:
        await sandbox.close()
    await sandbox.close()  # twice is harmless


async def test_run_sandbox_until_cancelled(devino_sandbox_config: SandboxConfig) -> None:
    from notify_devino_soap.emulator import run_sandbox

    ready: asyncio.Future[Sandbox] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run_sandbox(devino_sandbox_config, "127.0.0.1", 0, on_ready=ready.set_result)
    )
    sandbox = await asyncio.wait_for(ready, 5)
    async with aiohttp.ClientSession() as http, http.get(sandbox.url + "?WSDL") as response:
        assert response.status == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sandbox.port is not None
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as http, http.get(sandbox.url + "?WSDL"):
            pass


def test_fixtures_are_what_they_say(
    devino_sandbox_config: SandboxConfig, devino_sandbox_clock: ManualClock
) -> None:
    assert devino_sandbox_config.delivery.delivered == 0.2
    assert {a.login for a in devino_sandbox_config.accounts} == {"demo", "other", "poor"}
    assert isinstance(devino_sandbox_clock, ManualClock)


async def test_devino_sandbox_fixture(devino_sandbox: Sandbox) -> None:
    async with aiohttp.ClientSession() as http, http.get(devino_sandbox.url + "?WSDL") as response:
        assert response.status == 200


def test_final_states_follow_the_reference() -> None:
    """Delivered and every error state are final; of the negative states only -3
    (ErrorSendingDateTimeInterpretation) and -200 (Errors) are."""
    final = {state for state in STATE_DESCRIPTIONS if is_final(state)}
    assert final == {0, 8, 10, 11, 41, 42, 46, 47, 48, 255, -3, -200}
    assert not any(is_final(state) for state in (-100, -40, -30, -20, -2, -1))
