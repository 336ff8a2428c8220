"""Messages in the sandbox: segments and IDs, charging, the state machine on a manual clock,
held sends (DelayUntilUtc and recipient time zones), unknown IDs and statistics. Over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp
import pytest
from sandbox_wire import NIL, Wire
from structlog.testing import capture_logs

from notify_devino_soap.emulator import ManualClock, RateLimit, Sandbox, SandboxConfig

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)


@pytest.fixture
def devino_sandbox_config(devino_sandbox_config: SandboxConfig) -> SandboxConfig:
    # Long sessions: these tests jump the clock by days; session expiry is tested elsewhere.
    return devino_sandbox_config.model_copy(
        update={"rate_limit": RateLimit(enabled=False), "session_lifetime_minutes": 7 * 24 * 60}
    )


@pytest.fixture
def devino_sandbox_clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def sandbox(devino_sandbox_manual_clock: Sandbox) -> Sandbox:
    return devino_sandbox_manual_clock


@pytest.fixture
def wire(http: aiohttp.ClientSession, sandbox: Sandbox) -> Wire:
    return Wire(http, sandbox.url, "1.2")


@pytest.fixture
async def session_id(wire: Wire) -> str:
    return await wire.login()


async def balance(wire: Wire, session_id: str) -> Decimal:
    return Decimal((await wire.call("GetBalance", sessionID=session_id)).result)


# -- segments, IDs, charging ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("ж" * 70, 1),
        ("ж" * 71, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),
        ("€" * 81, 2),
    ],
)
async def test_one_id_per_segment(
    wire: Wire, session_id: str, sandbox: Sandbox, text: str, segments: int
) -> None:
    reply = await wire.send(session_id, ["79031234567"], text)
    first = sandbox.config.message_id_start
    assert reply.ids == list(range(first, first + segments))
    assert await balance(wire, session_id) == Decimal("1000.00") - Decimal("1.50") * segments


async def test_ids_grouped_per_destination_in_order(
    wire: Wire, session_id: str, sandbox: Sandbox
) -> None:
    numbers = ["79031234567", "+4915112345678", "89031234568"]
    reply = await wire.send(session_id, numbers, "ж" * 71)  # 2 segments each
    ids = reply.ids
    assert ids == list(range(ids[0], ids[0] + 6))
    stored = {m.message_id: m for m in sandbox.state.messages()}
    assert [stored[i].destination for i in ids] == [
        "79031234567",
        "79031234567",
        "4915112345678",
        "4915112345678",
        "79031234568",
        "79031234568",
    ]
    assert [stored[i].segment_index for i in ids] == [0, 1, 0, 1, 0, 1]
    # 2 x 1.50 (+7) + 2 x 3.00 (default) + 2 x 1.50
    assert await balance(wire, session_id) == Decimal("1000.00") - Decimal("12.00")
    prices = [(await wire.state(session_id, i))["Price"] for i in ids]
    assert prices == ["1.50", "1.50", "3.00", "3.00", "1.50", "1.50"]
    again = await wire.send(session_id, ["79031234567"], "next")
    assert again.ids == [ids[-1] + 1]


async def test_ids_are_64_bit_decimal_strings(wire: Wire, session_id: str) -> None:
    reply = await wire.send(session_id, ["79031234567"], "Hi")
    assert "<string>579700854169272358</string>" in reply.text


# -- the state machine ---------------------------------------------------------------------------


async def test_queued_gateway_sent_delivered(
    wire: Wire, session_id: str, devino_sandbox_clock: ManualClock
) -> None:
    (message_id,) = (await wire.send(session_id, ["79031234567"], "Hi")).ids
    seen = []
    for step in (0, 49, 1, 49, 1, 99, 1, 1000):  # ms; timings are 50, 100 and 200 ms
        devino_sandbox_clock.advance(step * MS)
        state = await wire.state(session_id, message_id)
        seen.append(
            (
                state["State"],
                state["SubmittedDateUtc"] if isinstance(state["SubmittedDateUtc"], str) else None,
                state["ReportedDateUtc"] if isinstance(state["ReportedDateUtc"], str) else None,
                state["TimeStampUtc"],
            )
        )
    t0, t50, t100, t200 = (
        "2026-03-02T00:00:00.000Z",
        "2026-03-02T00:00:00.050Z",
        "2026-03-02T00:00:00.100Z",
        "2026-03-02T00:00:00.200Z",
    )
    assert seen == [
        ("-40", None, None, t0),
        ("-40", None, None, t0),
        ("-30", t50, None, t50),
        ("-30", t50, None, t50),
        ("-1", t50, None, t100),
        ("-1", t50, None, t100),
        ("0", t50, t200, t200),
        ("0", t50, t200, t200),
    ]


async def test_nil_dates_are_xsi_nil(wire: Wire, session_id: str) -> None:
    (message_id,) = (await wire.send(session_id, ["79031234567"], "Hi")).ids
    reply = await wire.call("GetMessageState", sessionID=session_id, messageID=message_id)
    assert '<SubmittedDateUtc xsi:nil="true" />' in reply.text
    assert '<ReportedDateUtc xsi:nil="true" />' in reply.text


@pytest.mark.parametrize(
    ("number", "final", "description"),
    [
        ("79990000001", "42", "Rejected"),
        ("79990000002", "11", "Invalid destination address"),
        ("79990000004", "48", "Rejected by Devino"),
    ],
)
async def test_failing_numbers_end_in_their_state(
    wire: Wire,
    session_id: str,
    devino_sandbox_clock: ManualClock,
    number: str,
    final: str,
    description: str,
) -> None:
    (message_id,) = (await wire.send(session_id, [number], "Hi")).ids
    devino_sandbox_clock.advance(99 * MS)
    assert (await wire.state(session_id, message_id))["State"] == "-30"
    devino_sandbox_clock.advance(1 * MS)
    state = await wire.state(session_id, message_id)
    assert (state["State"], state["StateDescription"]) == (final, description)
    assert state["ReportedDateUtc"] == "2026-03-02T00:00:00.100Z"
    devino_sandbox_clock.advance(timedelta(days=1))
    assert (await wire.state(session_id, message_id))["State"] == final


async def test_never_delivered_expires_after_validity(
    wire: Wire, session_id: str, devino_sandbox_clock: ManualClock
) -> None:
    (default_id,) = (await wire.send(session_id, ["79990000003"], "Hi")).ids
    (short_id,) = (await wire.send(session_id, ["+7 999 000-00-03"], "Hi", Validity=10)).ids
    devino_sandbox_clock.advance(timedelta(minutes=10) - MS)
    assert (await wire.state(session_id, short_id))["State"] == "-1"
    devino_sandbox_clock.advance(MS)
    state = await wire.state(session_id, short_id)
    assert (state["State"], state["StateDescription"]) == ("46", "Expired")
    assert state["ReportedDateUtc"] == state["TimeStampUtc"] == "2026-03-02T00:10:00.000Z"
    devino_sandbox_clock.advance(timedelta(minutes=2880 - 10) - MS)
    assert (await wire.state(session_id, default_id))["State"] == "-1"
    devino_sandbox_clock.advance(MS)
    assert (await wire.state(session_id, default_id))["State"] == "46"


async def test_validity_zero_means_the_default(
    wire: Wire, session_id: str, devino_sandbox_clock: ManualClock
) -> None:
    (message_id,) = (await wire.send(session_id, ["79990000003"], "Hi", Validity=0)).ids
    devino_sandbox_clock.advance(timedelta(minutes=2879))
    assert (await wire.state(session_id, message_id))["State"] == "-1"


# -- held sends ----------------------------------------------------------------------------------


async def test_delay_until_utc_holds_the_message(
    wire: Wire, session_id: str, devino_sandbox_clock: ManualClock
) -> None:
    reply = await wire.send(
        session_id, ["79031234567"], "Later", DelayUntilUtc="2026-03-02T06:30:00Z"
    )
    (message_id,) = reply.ids
    devino_sandbox_clock.set(datetime(2026, 3, 2, 6, 30, tzinfo=UTC) + 49 * MS)
    state = await wire.state(session_id, message_id)
    assert state["State"] == "-40"
    assert state["TimeStampUtc"] == "2026-03-02T00:00:00.000Z"
    devino_sandbox_clock.advance(MS)
    state = await wire.state(session_id, message_id)
    assert (state["State"], state["SubmittedDateUtc"]) == ("-30", "2026-03-02T06:30:00.050Z")
    devino_sandbox_clock.advance(timedelta(seconds=1))
    assert (await wire.state(session_id, message_id))["State"] == "0"


@pytest.mark.parametrize(
    "delay", ["2026-03-02T09:30:00+03:00", "2026-03-02T06:30:00", "2026-03-02T06:30:00.0000000Z"]
)
async def test_delay_until_utc_forms(
    wire: Wire, session_id: str, sandbox: Sandbox, delay: str
) -> None:
    await wire.send(session_id, ["79031234567"], "Later", DelayUntilUtc=delay)
    (stored,) = sandbox.state.messages()
    assert stored.send_at == datetime(2026, 3, 2, 6, 30, tzinfo=UTC)


async def test_delay_in_the_past_or_nil_sends_now(
    wire: Wire, session_id: str, sandbox: Sandbox
) -> None:
    await wire.send(session_id, ["79031234567"], "A", DelayUntilUtc="2020-01-01T00:00:00Z")
    await wire.send(session_id, ["79031234567"], "B", DelayUntilUtc=NIL)
    assert [m.send_at for m in sandbox.state.messages()] == [START, START]


async def test_time_zone_send_waits_for_the_recipients_local_time(
    wire: Wire, session_id: str, devino_sandbox_clock: ManualClock
) -> None:
    # 7914: Asia/Vladivostok (UTC+10) in the default table; 7903: Moscow (UTC+3).
    reply = await wire.call(
        "SendMessageByTimeZoneToAddresses",
        sessionID=session_id,
        sourceAddress="TESTSENDER",
        destinationAddresses=["79141234567", "79031234567"],
        data="Good evening",
        sendDate="2026-03-02T18:00:00",
        validity=0,
    )
    vladivostok, moscow = reply.ids
    devino_sandbox_clock.set(datetime(2026, 3, 2, 8, 0, 0, 49000, tzinfo=UTC))
    assert (await wire.state(session_id, vladivostok))["State"] == "-40"
    devino_sandbox_clock.advance(MS)  # 18:00:00.050 in Vladivostok
    assert (await wire.state(session_id, vladivostok))["State"] == "-30"
    assert (await wire.state(session_id, moscow))["State"] == "-40"
    devino_sandbox_clock.set(datetime(2026, 3, 2, 15, 0, 1, tzinfo=UTC))  # 18:00:01 in Moscow
    assert (await wire.state(session_id, moscow))["State"] == "0"


async def test_time_zone_send_single(
    wire: Wire, session_id: str, sandbox: Sandbox, devino_sandbox_clock: ManualClock
) -> None:
    await wire.call(
        "SendMessageByTimeZone",
        sessionID=session_id,
        sourceAddress="TESTSENDER",
        destinationAddress="+79141234567",
        data="Good evening",
        sendDate="2026-03-02T18:00:00",
        validity=30,
    )
    (stored,) = sandbox.state.messages()
    assert stored.send_at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert stored.validity == timedelta(minutes=30)


async def test_foreign_number_is_held_in_utc(wire: Wire, session_id: str, sandbox: Sandbox) -> None:
    await wire.call(
        "SendMessageByTimeZone",
        sessionID=session_id,
        sourceAddress="TESTSENDER",
        destinationAddress="4915112345678",
        data="Hallo",
        sendDate="2026-03-02T18:00:00",
        validity=0,
    )
    (stored,) = sandbox.state.messages()
    assert stored.send_at == datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


# -- unknown messages ----------------------------------------------------------------------------


def assert_unknown(state: dict[str, object]) -> None:
    assert state == {
        "State": "255",
        "CreationDateUtc": {"@xsi:nil": "true"},
        "SubmittedDateUtc": {"@xsi:nil": "true"},
        "ReportedDateUtc": {"@xsi:nil": "true"},
        "TimeStampUtc": "0001-01-01T00:00:00",
        "StateDescription": "Unknown",
        "Price": {"@xsi:nil": "true"},
    }


async def test_unknown_id(wire: Wire, session_id: str) -> None:
    assert_unknown(await wire.state(session_id, 12345))
    assert_unknown(await wire.state(session_id, 2**63 - 1))


async def test_other_accounts_message_is_unknown(wire: Wire, session_id: str) -> None:
    (message_id,) = (await wire.send(session_id, ["79031234567"], "Hi")).ids
    other = await wire.login("other", "other-password")
    assert_unknown(await wire.state(other, message_id))


async def test_message_older_than_48_hours_is_unknown(
    wire: Wire, session_id: str, devino_sandbox_clock: ManualClock
) -> None:
    (message_id,) = (await wire.send(session_id, ["79031234567"], "Hi")).ids
    devino_sandbox_clock.advance(timedelta(hours=48))
    assert (await wire.state(session_id, message_id))["State"] == "0"
    devino_sandbox_clock.advance(MS)
    assert_unknown(await wire.state(session_id, message_id))


# -- statistics ----------------------------------------------------------------------------------


async def test_statistics_count_real_states(
    wire: Wire, session_id: str, devino_sandbox_clock: ManualClock
) -> None:
    await wire.send(session_id, ["79031234567"], "a" * 161)  # 2 segments, will be delivered
    await wire.send(session_id, ["79990000001", "79990000004"], "Hi")  # rejected x2
    await wire.send(session_id, ["79990000003"], "Hi", Validity=5)  # expires after 5 min
    await wire.send(session_id, ["79031234567"], "Hi", DelayUntilUtc="2026-03-03T00:00:00Z")
    other = await wire.login("other", "other-password")
    await wire.send(other, ["79031234567"], "not mine")

    async def stats(
        start: str = "2026-03-01T00:00:00", end: str = "2026-03-03T00:00:00"
    ) -> dict[str, str]:
        reply = await wire.call(
            "GetStatistics", sessionID=session_id, startDateTime=start, endDateTime=end
        )
        return {k: v for k, v in reply.result.items()}

    first = await stats()
    assert first == {
        "Sent": "0",
        "Delivered": "0",
        "Errors": "0",
        "InProcess": "6",
        "Expired": "0",
        "Rejected": "0",
        "Optimized": "0",
        "Tarificated": "6",
        "Total": "6",
        "TotalWithErrors": "6",
        "DeliveryRatio": "0.00",
    }
    devino_sandbox_clock.advance(timedelta(minutes=10))
    later = await stats()
    assert later == {
        "Sent": "5",
        "Delivered": "2",
        "Errors": "3",
        "InProcess": "1",
        "Expired": "1",
        "Rejected": "2",
        "Optimized": "0",
        "Tarificated": "6",
        "Total": "6",
        "TotalWithErrors": "6",
        "DeliveryRatio": "0.33",
    }
    outside = await stats("2026-03-02T00:00:00.001", "2026-03-03T00:00:00")
    assert outside["Total"] == "0"


# -- logs ----------------------------------------------------------------------------------------


async def test_logs_carry_no_password_or_session_id(wire: Wire) -> None:
    with capture_logs() as logs:
        session_id = await wire.login()
        await wire.send(session_id, ["79031234567"], "Hi")
        await wire.call("GetBalance", sessionID=session_id)
        await wire.call("GetSessionID", login="demo", password="wrong-password")
    assert {entry["event"] for entry in logs} >= {
        "sandbox_session_opened",
        "sandbox_message_accepted",
        "sandbox_request_handled",
        "sandbox_login_refused",
    }
    dump = repr(logs)
    assert session_id not in dump
    assert "demo-password" not in dump
    assert "wrong-password" not in dump
