"""Every Devino operation through the public dispatcher, against the sandbox over real HTTP on
loopback, in both SOAP versions; and every bad input refused with a clear error."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from notify_devino.config import Config
from notify_devino.dispatcher import Dispatcher
from notify_devino.errors import (
    AuthenticationError,
    ConfigError,
    InvalidInputError,
)
from notify_devino.plugins import PluginManager
from notify_devino.types import DeliveryState, SendOutcome
from notify_devino_soap.emulator import ManualClock, Sandbox

LATIN_161 = "x" * 161
CYRILLIC_71 = "ж" * 71


@pytest.fixture(params=["1.2", "1.1"])
def soap_version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_every_operation_through_the_dispatcher(
    devino_sandbox: Sandbox,
    devino_plugins: PluginManager,
    make_config: Callable[..., Config],
    soap_version: str,
) -> None:
    config = make_config(devino_sandbox.url, soap_version=soap_version)
    async with Dispatcher(config, plugins=devino_plugins) as dispatcher:
        before = (await dispatcher.balance()).amount
        latin = await dispatcher.send("Disk full on db-1", to=["+79031234567"])
        long_latin = await dispatcher.send(LATIN_161, to=["89031234568"])
        cyrillic = await dispatcher.send(CYRILLIC_71, to=["79031234569"])
        bulk = await dispatcher.send("bulk", to=["79031234570", "79990000001", "12345"])

        assert [len(r.message_ids) for r in latin.recipients] == [1]
        assert [len(r.message_ids) for r in long_latin.recipients] == [2]
        assert [len(r.message_ids) for r in cyrillic.recipients] == [2]
        first, second = (int(i) for i in cyrillic.message_ids)
        assert second == first + 1  # consecutive per segment
        assert [r.address for r in latin.recipients + long_latin.recipients] == [
            "79031234567",
            "79031234568",
        ]
        assert [r.outcome for r in bulk.recipients] == [
            SendOutcome.ACCEPTED,
            SendOutcome.ACCEPTED,
            SendOutcome.FAILED,
        ]
        bad = bulk.recipients[2].error
        assert isinstance(bad, InvalidInputError)
        assert "12345" in str(bad)

        ids = [
            *latin.message_ids,
            *long_latin.message_ids,
            *cyrillic.message_ids,
            *bulk.message_ids,
        ]
        statuses = await dispatcher.wait(ids, interval=0.05, timeout=10)
        by_id = {s.message_id: s for s in statuses}
        assert all(s.final for s in statuses)
        rejected = by_id[bulk.recipients[1].message_ids[0]]
        assert (rejected.state, rejected.code, rejected.name) == (
            DeliveryState.FAILED,
            42,
            "Error_Rejected",
        )
        delivered = [s for s in statuses if s is not rejected]
        assert {(s.state, s.code) for s in delivered} == {(DeliveryState.DELIVERED, 0)}
        assert all(s.price == Decimal("1.5") for s in statuses)
        assert all(s.created_at and s.reported_at for s in statuses)

        after = (await dispatcher.balance()).amount
        assert before - after == Decimal("1.5") * len(ids)  # charged per segment

        stats = await dispatcher.statistics(datetime.now(UTC) - timedelta(hours=1))
        assert stats.counts["Total"] == len(ids)
        assert stats.counts["Delivered"] == len(ids) - 1
        assert stats.counts["Rejected"] == 1

        async with aiohttp.ClientSession() as admin:
            response = await admin.post(
                devino_sandbox.base_url + "/admin/incoming",
                json={"source": "79031234567", "destination": "ALERTS", "text": "1 - on it"},
            )
            assert response.status == 201
        replies = await dispatcher.inbox(since=timedelta(minutes=5))
        assert [(m.sender, m.recipient, m.text) for m in replies] == [
            ("79031234567", "ALERTS", "1 - on it")
        ]
    versions = {r.soap_version for r in devino_sandbox.requests}
    assert versions == {soap_version}
    # one login for the whole run, shared by every call
    assert [r.operation for r in devino_sandbox.requests].count("GetSessionID") == 1


async def test_a_bulk_send_over_1000_recipients_is_split_into_calls(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, make_config: Callable[..., Config]
) -> None:
    devino_sandbox.config.rate_limit.enabled = False
    devino_sandbox.state.accounts["demo"].balance = Decimal(10_000)
    numbers = [f"7903{n:07d}" for n in range(1001)]
    async with Dispatcher(make_config(devino_sandbox.url), plugins=devino_plugins) as dispatcher:
        result = await dispatcher.send("maintenance tonight", to=numbers)
    assert result.ok
    assert len(result.message_ids) == 1001
    sends = [r for r in devino_sandbox.requests if r.operation == "SendMessage"]
    assert sorted(len(r.destinations) for r in sends) == [1, 1000]


async def test_a_streamed_bulk_send_goes_in_calls_of_1000_under_the_rate_limit(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, make_config: Callable[..., Config]
) -> None:
    devino_sandbox.state.accounts["demo"].balance = Decimal(10_000)

    def numbers() -> Iterator[str]:
        yield "12345"  # a bad number fails alone, inside its batch
        for n in range(2499):
            yield f"+7 903 {n:07d}"

    accepted = failed = 0
    async with Dispatcher(make_config(devino_sandbox.url), plugins=devino_plugins) as dispatcher:
        async for batch in dispatcher.send_stream("maintenance tonight", numbers()):
            accepted += len(batch.accepted)
            failed += len(batch.failed)
            assert all(len(r.message_ids) == 1 for r in batch.accepted)
    assert (accepted, failed) == (2499, 1)
    sends = [r for r in devino_sandbox.requests if r.operation == "SendMessage"]
    assert sorted(len(r.destinations) for r in sends) == [500, 999, 1000]
    assert [r.fault for r in devino_sandbox.requests if r.fault] == []  # no rate-limit refusal


async def test_the_same_number_twice_is_sent_once(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, make_config: Callable[..., Config]
) -> None:
    async with Dispatcher(make_config(devino_sandbox.url), plugins=devino_plugins) as dispatcher:
        result = await dispatcher.send(
            "once", to=["79031234567", "+7 903 123-45-67", "89031234567"]
        )
    assert len({r.message_ids for r in result.recipients}) == 1
    sends = [r for r in devino_sandbox.requests if r.operation == "SendMessage"]
    assert [r.destinations for r in sends] == [("79031234567",)]


async def test_time_zone_sends_are_held_until_the_recipients_local_time(
    devino_sandbox_manual_clock: Sandbox,
    devino_sandbox_clock: ManualClock,
    devino_plugins: PluginManager,
    make_config: Callable[..., Config],
) -> None:
    box = devino_sandbox_manual_clock
    vladivostok = ZoneInfo("Asia/Vladivostok")
    local_now = devino_sandbox_clock.now().astimezone(vladivostok).replace(tzinfo=None)
    async with Dispatcher(make_config(box.url), plugins=devino_plugins) as dispatcher:
        one = await dispatcher.send(
            "good morning",
            to=["79141234567"],
            send_at=local_now + timedelta(hours=2),
            recipient_local_time=True,
        )
        many = await dispatcher.send(
            "good morning",
            to=["79141234567", "79141234568"],
            send_at=local_now + timedelta(hours=2),
            recipient_local_time=True,
        )
        later = await dispatcher.send(
            "in an hour", to=["79031234567"], send_at=datetime.now(UTC) + timedelta(hours=1)
        )
        ids = [*one.message_ids, *many.message_ids, *later.message_ids]
        assert {s.code for s in await dispatcher.status(ids)} == {-40}  # queued, held
        devino_sandbox_clock.advance(timedelta(hours=1, minutes=1))
        states = {s.message_id: s.code for s in await dispatcher.status(ids)}
        assert states[later.message_ids[0]] != -40
        assert all(states[i] == -40 for i in [*one.message_ids, *many.message_ids])
        devino_sandbox_clock.advance(timedelta(hours=1))
        assert all(s.state is DeliveryState.DELIVERED for s in await dispatcher.status(ids))
    operations = [r.operation for r in box.requests]
    assert "SendMessageByTimeZone" in operations
    assert "SendMessageByTimeZoneToAddresses" in operations


async def test_the_same_wall_clock_time_is_each_recipients_own_and_utc_is_absolute(
    devino_sandbox_manual_clock: Sandbox,
    devino_sandbox_clock: ManualClock,
    devino_plugins: PluginManager,
    make_config: Callable[..., Config],
) -> None:
    """``recipient_local_time``: 09:00 means 09:00 where each recipient is (Vladivostok, UTC+10,
    gets it seven hours before Moscow, UTC+3). An aware ``send_at`` is one moment for everyone
    (``DelayUntilUtc``), whatever the recipient's zone."""
    box = devino_sandbox_manual_clock
    moscow, vladivostok = "79031234567", "79141234567"  # by the sandbox's prefix table
    # The first 09:00 still an hour ahead in Vladivostok: Moscow's comes seven hours later,
    # at most 32 hours from now, well within the 48 hours GetMessageState knows a message
    # (two days ahead, Moscow's 09:00 was 54 hours away for a run just after midnight UTC).
    now = devino_sandbox_clock.now()

    def nine_on(day: date) -> datetime:
        return datetime.combine(day, datetime.min.time()).replace(hour=9)

    day = now.date() + timedelta(days=1)
    if nine_on(day).replace(tzinfo=ZoneInfo("Asia/Vladivostok")) <= now + timedelta(hours=1):
        day += timedelta(days=1)
    nine = nine_on(day)
    vladivostok_nine = nine.replace(tzinfo=ZoneInfo("Asia/Vladivostok")).astimezone(UTC)
    moscow_nine = nine.replace(tzinfo=ZoneInfo("Europe/Moscow")).astimezone(UTC)
    async with Dispatcher(make_config(box.url), plugins=devino_plugins) as dispatcher:
        local = await dispatcher.send(
            "good morning", to=[moscow, vladivostok], send_at=nine, recipient_local_time=True
        )
        absolute = await dispatcher.send(
            "at 09:00 Moscow time, wherever you are",
            to=[vladivostok],
            send_at=nine.replace(tzinfo=timezone(timedelta(hours=3))),
        )
        at_moscow, at_vladivostok = (r.message_ids[0] for r in local.recipients)
        at_absolute = absolute.message_ids[0]
        stored = {str(m.message_id): m.send_at for m in box.state.messages()}
        assert stored == {
            at_moscow: moscow_nine,
            at_vladivostok: vladivostok_nine,
            at_absolute: moscow_nine,  # DelayUntilUtc: not Vladivostok's 09:00
        }

        async def codes() -> dict[str, int | None]:
            ids = [at_moscow, at_vladivostok, at_absolute]
            return {s.message_id: s.code for s in await dispatcher.status(ids)}

        devino_sandbox_clock.set(vladivostok_nine - timedelta(seconds=1))
        assert set((await codes()).values()) == {-40}  # all held
        devino_sandbox_clock.set(vladivostok_nine + timedelta(seconds=5))
        assert await codes() == {at_moscow: -40, at_vladivostok: 0, at_absolute: -40}
        devino_sandbox_clock.set(moscow_nine + timedelta(seconds=5))
        assert set((await codes()).values()) == {0}
    operations = [r.operation for r in box.requests if r.operation and r.operation[0] == "S"]
    assert operations == ["SendMessageByTimeZoneToAddresses", "SendMessage"]


async def test_an_expired_session_is_renewed_transparently(
    devino_sandbox_manual_clock: Sandbox,
    devino_sandbox_clock: ManualClock,
    devino_plugins: PluginManager,
    make_config: Callable[..., Config],
) -> None:
    box = devino_sandbox_manual_clock
    async with Dispatcher(make_config(box.url), plugins=devino_plugins) as dispatcher:
        await dispatcher.balance()
        devino_sandbox_clock.advance(timedelta(minutes=121))
        result = await dispatcher.send("still here", to=["79031234567"])
        assert result.ok
        await dispatcher.balance()
    faults = [r.fault for r in box.requests if r.fault]
    assert len(faults) == 1
    assert "SessionID expired" in faults[0]
    assert [r.operation for r in box.requests].count("GetSessionID") == 2


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"text": "x" * 2001}, "text", "text has 2001 characters; expected 1 to 2000 characters"),
        # form feed is GSM-7 (extension table) but XML 1.0 cannot carry it
        ({"text": "page\fbreak"}, "text", "text contains U+000C at position 4"),
        ({"sender": "ABCDEFGHIJKL"}, "sender", "sender 'ABCDEFGHIJKL' has 12 characters"),
        ({"sender": "1234567890123456"}, "sender", "has 16 digits"),
        ({"sender": "Тревога"}, "sender", "not Latin letters"),
    ],
)
async def test_bad_input_is_refused_before_any_request(
    devino_sandbox: Sandbox,
    devino_plugins: PluginManager,
    make_config: Callable[..., Config],
    kwargs: dict[str, str],
    field: str,
    fragment: str,
) -> None:
    async with Dispatcher(make_config(devino_sandbox.url), plugins=devino_plugins) as dispatcher:
        text = kwargs.pop("text", "hello")
        with pytest.raises(InvalidInputError) as info:
            await dispatcher.send(text, to=["79031234567"], **kwargs)
    assert info.value.field == field
    assert fragment in str(info.value)
    assert info.value.channel == "sms"
    assert devino_sandbox.requests == []


async def test_bad_numbers_fail_alone_with_their_reason(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, make_config: Callable[..., Config]
) -> None:
    to = ["7903123456a", "123", "+79031234567", "", "+999123456789", "8 903 123-45-68"]
    async with Dispatcher(make_config(devino_sandbox.url), plugins=devino_plugins) as dispatcher:
        result = await dispatcher.send("x" * 200, to=to)
    assert [r.outcome for r in result.recipients] == [
        SendOutcome.FAILED,
        SendOutcome.FAILED,
        SendOutcome.ACCEPTED,
        SendOutcome.FAILED,
        SendOutcome.FAILED,
        SendOutcome.ACCEPTED,
    ]
    errors = [r.error for r in result.recipients]
    assert [e.reason if isinstance(e, InvalidInputError) else None for e in errors] == [
        "not_digits",
        "too_short",
        None,
        "empty",
        "invalid_country_code",
        None,
    ]
    reasons = [str(e) if e else None for e in errors]
    assert "has a character other than digits ('a')" in reasons[0]
    assert "is not a valid phone number (too short)" in reasons[1]
    assert "expected an international number such as 79031234567" in reasons[3]
    assert all(r.channel == "sms" for r in errors if r is not None)
    # the others went out in one request, two segments each
    assert [len(r.message_ids) for r in result.recipients] == [0, 0, 2, 0, 0, 2]
    assert [r.destinations for r in devino_sandbox.requests if r.destinations] == [
        ("79031234567", "79031234568")
    ]


async def test_statistics_over_more_than_three_months_are_refused_before_any_request(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, make_config: Callable[..., Config]
) -> None:
    end = datetime(2026, 11, 28, tzinfo=UTC)
    async with Dispatcher(make_config(devino_sandbox.url), plugins=devino_plugins) as dispatcher:
        with pytest.raises(InvalidInputError, match="longer than 3 months"):
            await dispatcher.statistics(end - timedelta(days=120), end)
        ok = await dispatcher.statistics(end - timedelta(days=89), end)
    assert ok.counts["Total"] == 0
    assert [r.operation for r in devino_sandbox.requests] == ["GetSessionID", "GetStatistics"]


async def test_wrong_credentials(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, make_config: Callable[..., Config]
) -> None:
    config = make_config(devino_sandbox.url, password="wrong")
    async with Dispatcher(config, plugins=devino_plugins) as dispatcher:
        with pytest.raises(AuthenticationError) as info:
            await dispatcher.balance()
        result = await dispatcher.send("x", to=["79031234567"])
    assert "Invalid user login or password" in (info.value.text or "")
    assert result.recipients[0].outcome is SendOutcome.FAILED
    assert isinstance(result.recipients[0].error, AuthenticationError)


async def test_bad_channel_settings_name_the_yaml_path(
    devino_plugins: PluginManager, make_config: Callable[..., Config]
) -> None:
    config = make_config(
        "http://127.0.0.1:9/SmsService.asmx", sender="ABCDEFGHIJKL", soap_version="2"
    )
    with pytest.raises(ConfigError) as info:
        async with Dispatcher(config, plugins=devino_plugins):
            pass
    message = str(info.value)
    assert "channels.sms.settings.sender" in message
    assert "has 12 characters" in message
    assert "channels.sms.settings.soap_version: got '2', expected '1.1' or '1.2'" in message


async def test_estimate_counts_parts_and_cost_without_sending(
    devino_sandbox: Sandbox,
    devino_plugins: PluginManager,
    make_config: Callable[..., Config],
) -> None:
    config = make_config(devino_sandbox.url, price_per_segment="0.25", currency="RUB")
    sent_before = len(devino_sandbox.state.messages())
    async with Dispatcher(config, plugins=devino_plugins) as dispatcher:
        latin = await dispatcher.estimate("x" * 161, recipients=3)
        cyrillic = await dispatcher.estimate("Диск заполнен — db-1")
        assert (latin.segments, latin.encoding, latin.characters) == (2, "GSM-7", 161)
        assert (latin.cost, latin.currency) == (Decimal("1.50"), "RUB")
        assert (cyrillic.segments, cyrillic.encoding) == (1, "UCS-2")
        assert not latin.too_long
        with pytest.raises(ValueError, match="at least 1"):
            await dispatcher.estimate("x", recipients=0)
    assert len(devino_sandbox.state.messages()) == sent_before


async def test_each_number_of_a_bulk_send_is_checked_once(
    devino_sandbox: Sandbox, devino_plugins: PluginManager, make_config: Callable[..., Config]
) -> None:
    """More distinct numbers than the check's cache holds: the channel checks each one, and the
    client does not check it again on the way out (that doubled a bulk send's CPU)."""
    from notify_devino_soap import rules

    devino_sandbox.config.rate_limit.enabled = False
    devino_sandbox.state.accounts["demo"].balance = Decimal(10_000)
    numbers = [f"7903{n:07d}" for n in range(5000)] + ["7903123"]  # the last one too short
    rules._normalize.cache_clear()
    async with Dispatcher(make_config(devino_sandbox.url), plugins=devino_plugins) as dispatcher:
        result = await dispatcher.send("maintenance tonight", to=numbers)
    info = rules._normalize.cache_info()
    assert (info.misses, info.hits) == (5001, 0)
    assert [r.outcome for r in result.recipients].count(SendOutcome.ACCEPTED) == 5000
    bad = result.recipients[-1]
    assert bad.outcome is SendOutcome.FAILED
    assert isinstance(bad.error, InvalidInputError)
    assert "too short" in str(bad.error)
    sends = [r for r in devino_sandbox.requests if r.operation == "SendMessage"]
    assert sorted(len(r.destinations) for r in sends) == [1000] * 5
