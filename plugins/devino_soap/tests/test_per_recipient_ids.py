"""Per-recipient results over the wire: for any text the service takes, the sandbox returns as
many message IDs per recipient as the segment counter predicts, and the channel hands each
recipient its own consecutive IDs."""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from notify_devino.hookspecs import ChannelContext
from notify_devino.types import Notification, SendOutcome
from notify_devino_soap.channel import DevinoChannel
from notify_devino_soap.emulator import Account, DeliveryTimings, Sandbox, SandboxConfig
from notify_devino_soap.rules import text_length
from notify_devino_soap.segments import GSM7_BASIC, GSM7_EXTENSION, count_segments
from notify_devino_soap.settings import DevinoSettings


@pytest.fixture
def devino_sandbox_config() -> SandboxConfig:
    config = SandboxConfig(
        accounts=[Account(login="demo", password="demo-password", balance=Decimal(10**9))],
        delivery=DeliveryTimings(gateway=60, sent=60, delivered=60),
    )
    config.rate_limit.enabled = False
    return config


# What XML 1.0 can carry, less what the service refuses (C0 controls but tab, LF and CR).
carried = st.characters(
    exclude_categories=("Cs",),
    exclude_characters="\ufffe\uffff" + "".join(map(chr, range(32))).replace("\t\n\r", ""),
)
# Form feed is in the GSM-7 extension table, but XML 1.0 cannot carry it: the client refuses it.
alphabets = st.sampled_from(
    [
        "".join(sorted(GSM7_BASIC)),
        "".join(sorted((GSM7_BASIC | GSM7_EXTENSION) - {"\f"})),
        "x€[]",
        "жё",
        "ж🙂",
        "x🙂&<>",
    ]
)


@st.composite
def service_texts(draw: st.DrawFn) -> str:
    size = draw(
        st.one_of(
            st.sampled_from([70, 71, 134, 135, 153, 154, 160, 161, 306, 307, 1999, 2000]),
            st.integers(1, 600),
        )
    )
    chars = draw(st.one_of(alphabets.map(st.sampled_from), st.just(carried)))
    text = draw(st.text(chars, min_size=max(1, size - 2), max_size=size))
    while text_length(text) > 2000:
        text = text[:-1]
    if not text.strip():  # a text of only whitespace is refused before any request
        text = "x" + text[1:]
    return text or "x"


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=service_texts(), recipients=st.integers(1, 3))
@example(text="x" * 152 + "€" + "x" * 10, recipients=2)
@example(text="ж" * 66 + "🙂" + "ж" * 4, recipients=2)
@example(text="line\r\nbreak & <markup>", recipients=1)
async def test_ids_per_recipient_match_the_segment_count(
    devino_sandbox: Sandbox, text: str, recipients: int
) -> None:
    numbers = [f"7903{n:07d}" for n in range(recipients)]
    settings = DevinoSettings(
        url=devino_sandbox.url,
        login="demo",
        password=SecretStr("demo-password"),
        sender="ALERTS",
        rate_limit_per_second=1000,
    )
    async with aiohttp.ClientSession() as session:
        channel = DevinoChannel(ChannelContext(name="sms", session=session), settings)
        result = await channel.send(Notification(text=text, recipients=tuple(numbers)))
    predicted = count_segments(text).segments
    assert [r.outcome for r in result.recipients] == [SendOutcome.ACCEPTED] * recipients
    assert [len(r.message_ids) for r in result.recipients] == [predicted] * recipients
    ids = [int(i) for i in result.message_ids]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # consecutive, grouped per recipient
    stored = {m.message_id: m for m in devino_sandbox.state.messages()}
    for recipient in result.recipients:
        assert {stored[int(i)].destination for i in recipient.message_ids} == {recipient.address}
        assert {stored[int(i)].text for i in recipient.message_ids} == {text}
