"""The send rules on both sides: the client's ``rules`` and the sandbox's own
``emulator.rules``, written apart from the API reference so that each checks the other.

The sandbox must never borrow the client's rules: a rule bug would then pass on both sides.
"""

from __future__ import annotations

import ast
from datetime import datetime
from pathlib import Path

import aiohttp
import phonenumbers
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from notify_devino.errors import InvalidInputError
from notify_devino_soap import rules
from notify_devino_soap.client import DevinoClient
from notify_devino_soap.emulator import Sandbox
from notify_devino_soap.emulator import rules as provider

EMULATOR = Path(provider.__file__).parent

# Digits of other scripts that Python's str.isdigit() and a Unicode \d accept.
FOREIGN_DIGITS = {
    "arabic-indic": "١٢٣٤٥",
    "extended arabic-indic": "۱۲۳۴۵",
    "devanagari": "१२३४५",
    "fullwidth": "１２３４５",
    "superscript": "¹²³",
}


def test_the_sandbox_does_not_import_the_client_rules() -> None:
    for path in EMULATOR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = {alias.name for alias in node.names}
                assert not (node.level == 2 and (node.module == "rules" or "rules" in names)), (
                    path.name
                )
                assert node.module != "notify_devino_soap.rules", path.name
            elif isinstance(node, ast.Import):
                assert "notify_devino_soap.rules" not in {a.name for a in node.names}, path.name


@pytest.mark.parametrize("sender", FOREIGN_DIGITS.values(), ids=FOREIGN_DIGITS.keys())
def test_client_refuses_a_numeric_sender_in_other_digits(sender: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        rules.check_sender(sender)
    assert caught.value.field == "sender"
    assert "Latin" in str(caught.value) or "digits" in str(caught.value)


@pytest.mark.parametrize("sender", FOREIGN_DIGITS.values(), ids=FOREIGN_DIGITS.keys())
def test_sandbox_refuses_a_numeric_sender_in_other_digits(sender: str) -> None:
    with pytest.raises(provider.RuleBroken):
        provider.check_source_address(sender)


@pytest.mark.parametrize("digits", FOREIGN_DIGITS.values(), ids=FOREIGN_DIGITS.keys())
def test_both_refuse_a_number_in_other_digits(digits: str) -> None:
    number = "7903123" + digits[:4].ljust(4, digits[0])
    with pytest.raises(InvalidInputError):
        rules.normalize_phone(number)
    with pytest.raises(provider.RuleBroken):
        provider.normalize_destination(number)


def test_client_sender_rule() -> None:
    assert rules.check_sender("123456789012345") == "123456789012345"
    assert rules.check_sender("ALERTS-1") == "ALERTS-1"
    for bad in ("1234567890123456", "TWELVECHARSX", "Привет", "12 34", "", "ÀLERT"):
        with pytest.raises(InvalidInputError):
            rules.check_sender(bad)


def test_sandbox_sender_rule() -> None:
    assert provider.check_source_address("123456789012345") == "123456789012345"
    assert provider.check_source_address("ALERTS-1") == "ALERTS-1"
    for bad in ("1234567890123456", "TWELVECHARSX", "Привет", "12 34", "", "ÀLERT", "-!&"):
        with pytest.raises(provider.RuleBroken):
            provider.check_source_address(bad)


def test_sandbox_number_rule() -> None:
    for form in ("79031234567", "+79031234567", "89031234567", "+7 (903) 123-45-67"):
        assert provider.normalize_destination(form) == "79031234567"
    assert provider.normalize_destination("+4915112345678") == "4915112345678"
    for bad in ("12345", "7903123456789", "+7903abc4567", "70001234567", "555", "+0031234567"):
        with pytest.raises(provider.RuleBroken):
            provider.normalize_destination(bad)


def test_sandbox_text_rule_counts_utf16_units() -> None:
    assert provider.text_units("ab😀") == len("ab😀".encode("utf-16-le")) // 2 == 4
    provider.check_text("x" * 2000)
    with pytest.raises(provider.RuleBroken, match="2001 characters"):
        provider.check_text("x" * 1999 + "😀")


def _valid(number: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse("+" + number, None))
    except phonenumbers.NumberParseException:
        return False


numbers = st.one_of(
    st.from_regex(r"79[0-9]{9}", fullmatch=True),
    st.from_regex(r"7[3-9][0-9]{9}", fullmatch=True),
    st.from_regex(r"[1-9][0-9]{6,14}", fullmatch=True),
).filter(_valid)


@given(numbers, st.sampled_from(["", "+"]))
@example("80010000000", "+")  # International Freephone: 800 + 8 digits
@example("81312345678", "+")
@example("4702000", "")  # Norway's 02000: its leading zero is part of the number
def test_every_number_the_client_sends_the_sandbox_reads_as_the_same_number(
    number: str, plus: str
) -> None:
    try:
        sent = rules.normalize_phone(plus + number)
    except InvalidInputError:  # 8 + 10 digits without '+' is a Russian number to both sides
        assume(False)
        raise
    assert provider.normalize_destination(sent) == sent.removeprefix("+")


@pytest.mark.parametrize(
    ("number", "stored"),
    [
        ("+81 3 1234 5678", "81312345678"),  # Tokyo
        ("+82 2 1234 5678", "82212345678"),  # Seoul
        ("+84 91 234 5678", "84912345678"),  # Vietnam
        ("+39 06 1234 5678", "390612345678"),  # Rome: the leading 0 is dialled from abroad
        ("+47 02000", "4702000"),  # Norway
        ("+7 903 123-45-67", "79031234567"),
        ("89031234567", "79031234567"),  # the Russian trunk form stays Russian
    ],
)
async def test_an_international_number_of_eleven_digits_starting_with_8_reaches_its_country(
    devino_sandbox: Sandbox, number: str, stored: str
) -> None:
    """The service reads 8 + 10 digits as a Russian number in trunk form (89031234567 is
    79031234567), so the client must keep the '+' of such a foreign number: without it, Tokyo's
    81312345678 would go to +7 131 234-56-78, or be refused."""
    async with aiohttp.ClientSession() as http:
        client = DevinoClient(http, url=devino_sandbox.url, login="demo", password="demo-password")
        await client.send_message(source="ALERTS", destinations=[number], data="x")
    (message,) = devino_sandbox.state.messages()
    assert message.destination == stored


senders = st.one_of(
    st.from_regex(r"[0-9]{1,15}", fullmatch=True),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=16),
)


@given(senders)
def test_every_sender_the_client_accepts_the_sandbox_accepts(sender: str) -> None:
    try:
        rules.check_sender(sender)
    except InvalidInputError:
        return
    assert provider.check_source_address(sender) == sender


@pytest.mark.parametrize("validity", [2**31, 10**12, 0, -1])
async def test_a_validity_the_wire_cannot_carry_is_refused_before_any_request(
    devino_sandbox: Sandbox, validity: int
) -> None:
    """Validity is an xsd:int: 2147483648 once went on the wire and came back as a fault."""
    async with aiohttp.ClientSession() as http:
        client = DevinoClient(http, url=devino_sandbox.url, login="demo", password="demo-password")
        sends = [
            client.send_message(
                source="ALERTS", destinations=["79031234567"], data="x", validity=validity
            ),
            client.send_message_by_time_zone(
                source="ALERTS",
                destination="79031234567",
                data="x",
                send_date=datetime(2030, 1, 1, 9, 0),
                validity=validity,
            ),
            client.send_message_by_time_zone_to_addresses(
                source="ALERTS",
                destinations=["79031234567"],
                data="x",
                send_date=datetime(2030, 1, 1, 9, 0),
                validity=validity,
            ),
        ]
        for send in sends:
            with pytest.raises(InvalidInputError) as caught:
                await send
            assert caught.value.field == "validity"
            assert "2147483647" in str(caught.value.expected)
        assert devino_sandbox.requests == []
        assert await client.send_message(
            source="ALERTS", destinations=["79031234567"], data="x", validity=2**31 - 1
        )
