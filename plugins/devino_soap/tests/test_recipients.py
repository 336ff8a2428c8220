"""Number normalisation and validation (``rules.normalize_phone``), as properties: the three
accepted forms of a Russian number, other countries in international form, and a clear,
typed reason for every number refused."""

from __future__ import annotations

import contextlib

import phonenumbers
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from notify_devino.errors import InvalidInputError
from notify_devino_soap import rules
from notify_devino_soap.rules import normalize_phone

REASONS = {
    "empty",
    "not_digits",
    "too_short",
    "too_long",
    "invalid_country_code",
    "invalid_length",
    "unassigned",
}


def valid(number: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse("+" + number, None))
    except phonenumbers.NumberParseException:
        return False


# Russian mobile numbers: 7, a DEF code 9xx, seven digits; only assigned ranges are kept.
russian = st.from_regex(r"79[0-9]{9}", fullmatch=True).filter(valid)


@st.composite
def foreign(draw: st.DrawFn) -> str:
    """A valid number of another country, as digits with its country code (E.164 less '+')."""
    region = draw(st.sampled_from(["GB", "DE", "US", "UA", "KZ", "BY", "CN", "FR", "IN", "JP"]))
    example_number = phonenumbers.example_number_for_type(
        region, phonenumbers.PhoneNumberType.MOBILE
    )
    assert example_number is not None
    e164 = phonenumbers.format_number(example_number, phonenumbers.PhoneNumberFormat.E164)[1:]
    tail = draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    number = e164[:-3] + tail
    assume(valid(number))
    return number


separators = st.sampled_from(["", " ", "-", ".", "(", ")"])


@st.composite
def decorated(draw: st.DrawFn, digits: str) -> str:
    """``digits`` with separators a person might type between them."""
    return "".join(c + draw(separators) for c in digits)


@given(russian, st.data())
@example("79031234567", None)
def test_the_three_russian_forms_normalise_alike(number: str, data: st.DataObject | None) -> None:
    forms = [number, "+" + number, "8" + number[1:]]
    if data is not None:
        forms.append(data.draw(decorated("+" + number)))
        forms.append(data.draw(decorated("8" + number[1:])))
    assert {normalize_phone(form) for form in forms} == {number}


@given(foreign())
def test_other_countries_in_international_form(number: str) -> None:
    if len(number) == 11 and number.startswith("8"):
        # Without '+', 8 and ten digits is the Russian trunk form: the service reads it so too,
        # so such a number keeps its '+' on the wire.
        assert normalize_phone("+" + number) == "+" + number
        return
    assert normalize_phone("+" + number) == number
    assert normalize_phone(number) == number


@pytest.mark.parametrize("number", ["81312345678", "82212345678", "84912345678", "80012345678"])
def test_eleven_digits_starting_with_8_keep_their_plus(number: str) -> None:
    assert normalize_phone("+" + number) == "+" + number
    assert normalize_phone("+" + number[:2] + " " + number[2:]) == "+" + number
    with contextlib.suppress(InvalidInputError):  # without '+': the Russian trunk form, or refused
        assert normalize_phone(number) == "7" + number[1:]


@given(st.one_of(russian, foreign()))
def test_normalising_is_idempotent_and_gives_e164_digits(number: str) -> None:
    once = normalize_phone("+" + number)
    assert normalize_phone(once) == once
    digits = once.removeprefix("+")
    parsed = phonenumbers.parse("+" + digits, None)
    assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == "+" + digits


@given(st.text(max_size=20))
@example("")
@example("+")
@example("٣٣٣٣٣٣٣٣٣٣٣")  # Arabic-Indic digits
def test_any_text_is_a_number_or_refused_with_a_reason(text: str) -> None:
    error: InvalidInputError | None = None
    try:
        number = normalize_phone(text)
    except InvalidInputError as exc:
        error = exc
    if error is None:
        assert number.isascii()
        assert number.isdigit()
        assert valid(number)
    else:
        assert error.field == "recipient"
        assert error.reason in REASONS
        assert repr(text) in str(error)
        assert "expected an international number" in str(error)


@given(russian, st.integers(0, 10), st.sampled_from("abc#*/_xД"))
def test_a_stray_character_is_named(number: str, where: int, char: str) -> None:
    typo = number[:where] + char + number[where:]
    with pytest.raises(InvalidInputError) as info:
        normalize_phone(typo)
    assert info.value.reason == "not_digits"
    assert f"has a character other than digits ({char!r})" in str(info.value)


@pytest.mark.parametrize(
    ("value", "reason", "fragment"),
    [
        ("", "empty", "is empty"),
        ("  ", "empty", "is empty"),
        ("+", "empty", "has no digits"),
        ("12345", "too_short", "too short"),
        ("8800", "too_short", "is too short"),
        ("7903123456", "too_short", "too short"),
        ("79031234567890", "invalid_length", "wrong length for its country"),
        ("+999123456789", "invalid_country_code", "starts with no known country code"),
        ("0079031234567", "invalid_country_code", "starts with 0"),
        ("+70001234567", "unassigned", "not an assigned number range"),
        ("7903123456a", "not_digits", "('a')"),
    ],
)
def test_reasons(value: str, reason: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        normalize_phone(value)
    assert info.value.reason == reason
    assert fragment in str(info.value)


@given(st.from_regex(r"7[0-9]{10}", fullmatch=True))
def test_the_plus7_shortcut_is_what_phonenumbers_parse_makes(digits: str) -> None:
    full = phonenumbers.parse("+" + digits, None)
    short = rules._parse_international(digits)
    assert (short.country_code, short.national_number) == (full.country_code, full.national_number)
    assert phonenumbers.is_valid_number(short) == phonenumbers.is_valid_number(full)
    assert phonenumbers.is_possible_number_with_reason(
        short
    ) == phonenumbers.is_possible_number_with_reason(full)


def test_a_normalised_number_is_not_checked_again() -> None:
    from notify_devino_soap import rules

    rules._normalize.cache_clear()
    once = normalize_phone("+7 903 123-45-67")
    seen = rules._normalize.cache_info()
    assert normalize_phone(once) == once == "79031234567"
    assert rules._normalize.cache_info() == seen  # neither parsed nor looked up again


COUNTRY_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


@given(
    st.sampled_from(COUNTRY_CODES),
    st.integers(min_value=1, max_value=10**15),
    st.booleans(),
)
@example(7, 9031234567, False)  # Russia, mobile: +7 is shared with Kazakhstan
@example(7, 7012345678, False)  # Kazakhstan, by its leading digits
@example(1, 2015550123, False)  # the United States among the NANPA regions
@example(44, 7624123456, False)  # the Isle of Man, within +44
@example(800, 12345678, False)  # a non-geographic code
@example(39, 612345678, True)  # Italy's leading zero
def test_is_valid_number_is_phonenumbers_own_decision(
    country_code: int, national_number: int, leading_zero: bool
) -> None:
    number = phonenumbers.PhoneNumber(
        country_code=country_code,
        national_number=national_number,
        italian_leading_zero=leading_zero or None,
    )
    assert rules.is_valid_number(number) == phonenumbers.is_valid_number(number)


@given(st.from_regex(r"7[1-9][0-9]{9}", fullmatch=True))
def test_the_plus7_fast_path_returns_what_the_general_path_does(digits: str) -> None:
    rules._normalize.cache_clear()
    number = phonenumbers.PhoneNumber(country_code=7, national_number=int(digits[1:]))
    if phonenumbers.is_valid_number(number):
        assert normalize_phone("+" + digits) == digits
    else:
        with pytest.raises(InvalidInputError):
            normalize_phone("+" + digits)


def test_is_valid_number_agrees_on_every_region_example_and_its_near_misses() -> None:
    """Every region's example number of every type, and each with a digit changed, added or
    dropped: the numbers where a pattern or a length decides."""
    checked = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in range(11):  # the PhoneNumberType values with examples (FIXED_LINE..VOICEMAIL)
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            national = phonenumbers.national_significant_number(example)
            variants = {national, national + "0", national[:-1]}
            for i in range(len(national)):
                variants.add(national[:i] + str((int(national[i]) + 3) % 10) + national[i + 1 :])
            for digits in variants:
                if not digits or digits.startswith("0"):
                    continue
                number = phonenumbers.PhoneNumber(
                    country_code=example.country_code, national_number=int(digits)
                )
                assert rules.is_valid_number(number) == phonenumbers.is_valid_number(number), (
                    region,
                    kind,
                    digits,
                )
                checked += 1
    assert checked > 10_000
