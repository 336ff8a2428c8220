"""The rules the Devino service checks, in one place: the client checks them before any request,
and the sandbox enforces them on every request it receives.

Each ``check_*`` function returns the value as it goes on the wire, or raises
:class:`~notify_devino.errors.InvalidInputError` saying what was wrong and what is expected.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import datetime

import phonenumbers

from notify_devino.errors import InvalidInputError

MAX_TEXT_LENGTH = 2000
MAX_ADDRESSES_PER_CALL = 1000
MAX_STATISTICS_MONTHS = 3
DEFAULT_VALIDITY_MINUTES = 2880
MAX_VALIDITY_MINUTES = 2**31 - 1
"""Validity is an ``xsd:int`` on the wire."""
SESSION_LIFETIME_MINUTES = 120

# Every class below is spelled out in ASCII: ``\d``, ``\s``, ``\w`` and ``str.isdigit`` also
# match other scripts' digits and spaces (``'١٢٣٤٥'`` is ``\d{5}``), which the service refuses.
_SEPARATORS = re.compile(r"[ \t()\-.]")
_ALPHA_SENDER = re.compile(r"[A-Za-z0-9 .\-_!&']{1,11}")
_DIGIT_SENDER = re.compile(r"[0-9]{1,15}")
_ASCII_DIGITS = re.compile(r"[0-9]+")
_ASCII_LETTER = re.compile(r"[A-Za-z]")

PHONE_FORMS = "an international number such as 79031234567, +79031234567 or 89031234567"


def _bad_number(value: object, problem: str, reason: str) -> InvalidInputError:
    return InvalidInputError(
        f"recipient {value!r} {problem}",
        field="recipient",
        value=value,
        expected=PHONE_FORMS,
        reason=reason,
    )


_PARSE_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: (
        "starts with no known country code",
        "invalid_country_code",
    ),
    phonenumbers.NumberParseException.TOO_SHORT_NSN: ("is too short", "too_short"),
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: ("is too short", "too_short"),
    phonenumbers.NumberParseException.TOO_LONG: ("is too long", "too_long"),
}
_VALIDATION_REASONS = {
    phonenumbers.ValidationResult.TOO_SHORT: ("too short", "too_short"),
    phonenumbers.ValidationResult.TOO_LONG: ("too long", "too_long"),
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: (
        "no such country code",
        "invalid_country_code",
    ),
    phonenumbers.ValidationResult.INVALID_LENGTH: (
        "wrong length for its country",
        "invalid_length",
    ),
}


class _Checked(str):
    """A number as :func:`normalize_phone` returned it (wire form, valid): checking it again
    returns it as it is. The channel checks a batch's numbers and the client checks them again
    on the way out (it is a public API of its own); with this, each number is parsed once, also
    when a run has more distinct numbers than the cache holds."""

    __slots__ = ()


def normalize_phone(value: str) -> str:
    """Return the number as it goes on the wire: country code and number, digits only, except
    that a number of 11 digits whose country code begins with 8 (Japan's +81 3..., Korea's
    +82 2..., the +800 freephone range) keeps its ``+``, as the service would read it as a
    Russian number in trunk form without it.

    The service accepts three forms of a Russian number, ``79031234567``, ``+79031234567`` and
    ``89031234567`` (8 is the Russian trunk prefix), and numbers of other countries in
    international form, with or without ``+``. Spaces, dashes, dots and brackets are ignored.
    The number must be valid by ``phonenumbers`` (an assigned range of its country, of the
    right length).

    :raise InvalidInputError: with ``field="recipient"``, a message that says what is wrong
        with the number, and a short ``reason`` code (``empty``, ``not_digits``, ``too_short``,
        ``too_long``, ``invalid_country_code``, ``invalid_length``, ``unassigned``).
    """
    if type(value) is _Checked:
        return value
    if not isinstance(value, str):
        raise _bad_number(value, "is not a string", "not_digits")
    return _normalize(value)


@functools.lru_cache(maxsize=4096)
def _normalize(value: str) -> str:
    # Cached: a caller that sends the same numbers often (an on-call list) parses them once.
    compact = _SEPARATORS.sub("", value)
    digits = compact[1:] if compact.startswith("+") else compact
    if not digits:
        raise _bad_number(value, "is empty" if not compact else "has no digits", "empty")
    if not _ASCII_DIGITS.fullmatch(digits):
        bad = next(c for c in digits if not _ASCII_DIGITS.fullmatch(c))
        raise _bad_number(value, f"has a character other than digits ({bad!r})", "not_digits")
    if not compact.startswith("+") and len(digits) == 11 and digits.startswith("8"):
        digits = "7" + digits[1:]
    if _home_case(digits) and _valid_national(7, digits[1:]):
        return _Checked(digits)  # what the general path below makes of it, sooner
    try:
        parsed = _parse_international(digits)
    except phonenumbers.NumberParseException as exc:
        problem, reason = _PARSE_REASONS.get(
            exc.error_type, ("is not a phone number", "not_digits")
        )
        if digits.startswith("0"):
            problem = "starts with 0, which begins no country code (write it as +<country code>...)"
        raise _bad_number(value, problem, reason) from None
    if not is_valid_number(parsed):
        why, reason = _VALIDATION_REASONS.get(
            phonenumbers.is_possible_number_with_reason(parsed),
            ("not an assigned number range", "unassigned"),
        )
        raise _bad_number(value, f"is not a valid phone number ({why})", reason)
    number = f"{parsed.country_code}{phonenumbers.national_significant_number(parsed)}"
    if len(number) == 11 and number[0] == "8":
        # The service reads 8 + 10 digits as a Russian number in trunk form (89031234567 is
        # 79031234567): Tokyo's 81312345678 would go to +7 131... Such a number keeps its '+'.
        return _Checked("+" + number)
    return _Checked(number)


def _parse_international(digits: str) -> phonenumbers.PhoneNumber:
    """``phonenumbers.parse("+" + digits)``, with a shortcut for the service's home case.

    A +7 number of 10 national digits (not starting with 0) is what ``parse`` makes of it
    without its generic work (a +7 national number is 10 digits, so ``parse`` never strips a
    trunk prefix from one). ``parse``'s generic work is a large part of the cost of checking a
    number, which a 1000-address batch pays 1000 times on each side. Validity is decided by
    :func:`is_valid_number` from phonenumbers' metadata; a test checks the shortcut against
    ``parse`` over random numbers.
    """
    if _home_case(digits):
        return phonenumbers.PhoneNumber(country_code=7, national_number=int(digits[1:]))
    return phonenumbers.parse("+" + digits, None)


def _home_case(digits: str) -> bool:
    """+7 and 10 national digits, not starting with 0 (no leading-zero bookkeeping)."""
    return len(digits) == 11 and digits[0] == "7" and digits[1] != "0"


_NUMBER_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)


def is_valid_number(number: phonenumbers.PhoneNumber) -> bool:
    """``phonenumbers.is_valid_number``, decided from the same metadata in a fraction of its
    time: a valid number is one that matches its region's general pattern and the pattern of
    one number type, and here each region's type patterns are one expression per number length,
    compiled once. (``is_valid_number`` tries each type's pattern in turn, and for a country
    code that several regions share, +7 among them, does all of it twice: once to find the
    region, once to check the number in it.) A test compares the two over random numbers of
    every country code."""
    if number.country_code is None:
        return False
    return _valid_national(number.country_code, phonenumbers.national_significant_number(number))


def _valid_national(country_code: int, national: str) -> bool:
    """:func:`is_valid_number` of a country code and national significant number."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if not regions:
        return False
    if len(regions) == 1:
        region: str | None = regions[0]
    else:  # as phonenumbers.region_code_for_number
        region = None
        for candidate in regions:
            check = _region_rules(country_code, candidate, by_code=False)
            if check is None:
                continue
            if check.leading is not None:
                if check.leading.match(national):
                    region = candidate
                    break
            elif check.valid(national):
                # Chosen for being valid in it (a region's own metadata is what the check
                # below reads too): valid if the country code is the region's.
                return check.country_code_fits
    if region is None:
        return False
    check = _region_rules(country_code, region, by_code=True)
    return check is not None and check.country_code_fits and check.valid(national)


class _RegionRules:
    """One region's validity rules as compiled expressions (see :func:`is_valid_number`)."""

    def __init__(self, metadata: phonenumbers.PhoneMetadata, country_code: int, region: str):
        self.leading = re.compile(metadata.leading_digits) if metadata.leading_digits else None
        self.country_code_fits = region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY or (
            phonenumbers.PhoneMetadata.metadata_for_region(region.upper(), None) is not None
            and phonenumbers.country_code_for_valid_region(region) == country_code
        )
        general = metadata.general_desc
        self.general = _pattern(general)
        self.lengths = frozenset(general.possible_length) if general is not None else frozenset()
        self.types = [
            desc
            for name in _NUMBER_TYPES
            if not (name == "mobile" and metadata.same_mobile_and_fixed_line_pattern)
            and (desc := getattr(metadata, name)) is not None
            and _pattern(desc) is not None
        ]
        self.by_length: dict[int, re.Pattern[str] | None] = {}

    def valid(self, national: str) -> bool:
        length = len(national)
        if self.general is None or (self.lengths and length not in self.lengths):
            return False
        if not self.general.fullmatch(national):
            return False
        try:
            pattern = self.by_length[length]
        except KeyError:  # the types a number of this length can be, as one expression
            fitting = [
                f"(?:{desc.national_number_pattern})"
                for desc in self.types
                if not desc.possible_length or length in desc.possible_length
            ]
            pattern = self.by_length[length] = re.compile("|".join(fitting)) if fitting else None
        return pattern is not None and pattern.fullmatch(national) is not None


def _pattern(desc: phonenumbers.PhoneNumberDesc | None) -> re.Pattern[str] | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return re.compile(f"(?:{desc.national_number_pattern})")


@functools.cache
def _region_rules(country_code: int, region: str, *, by_code: bool) -> _RegionRules | None:
    # Cached for good: one entry per region there is metadata for, at most.
    if by_code:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
            country_code, region.upper()
        )
    else:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.upper(), None)
    return None if metadata is None else _RegionRules(metadata, country_code, region)


def check_sender(value: str | None) -> str:
    """A sender is up to 11 Latin characters (ASCII letters, digits, a few marks; at least one
    letter) or up to 15 ASCII digits."""
    expected = "up to 11 Latin letters/digits (with at least one letter) or up to 15 digits"
    if not value:
        raise InvalidInputError("sender is empty", field="sender", value=value, expected=expected)
    if _DIGIT_SENDER.fullmatch(value):
        return value
    if _ASCII_DIGITS.fullmatch(value):
        raise InvalidInputError(
            f"sender {value!r} has {len(value)} digits",
            field="sender",
            value=value,
            expected=expected,
        )
    if not _ALPHA_SENDER.fullmatch(value) or not _ASCII_LETTER.search(value):
        if len(value) > 11:
            problem = f"sender {value!r} has {len(value)} characters"
        else:
            problem = f"sender {value!r} has characters that are not Latin letters or digits"
        raise InvalidInputError(problem, field="sender", value=value, expected=expected)
    return value


def text_length(text: str) -> int:
    """The length the service counts: UTF-16 code units (an emoji counts two)."""
    return len(text.encode("utf-16-le")) // 2


def check_text(text: str) -> str:
    expected = f"1 to {MAX_TEXT_LENGTH} characters"
    if not isinstance(text, str) or not text:
        raise InvalidInputError("text is empty", field="text", value=text, expected=expected)
    length = text_length(text)
    if length > MAX_TEXT_LENGTH:
        raise InvalidInputError(
            f"text has {length} characters",
            field="text",
            value=text[:40] + "...",
            expected=expected,
        )
    return text


def check_address_count(addresses: Sequence[str]) -> None:
    expected = f"1 to {MAX_ADDRESSES_PER_CALL} addresses per call"
    if not addresses:
        raise InvalidInputError("no destination address", field="recipients", expected=expected)
    if len(addresses) > MAX_ADDRESSES_PER_CALL:
        raise InvalidInputError(
            f"{len(addresses)} addresses in one call",
            field="recipients",
            value=len(addresses),
            expected=expected,
        )


def check_validity(minutes: int | None) -> int:
    """The message lifetime in minutes: 1 to 2147483647 (the WSDL's ``xsd:int``), None for the
    default 2880."""
    if minutes is None:
        return DEFAULT_VALIDITY_MINUTES
    expected = f"a whole number of minutes from 1 to {MAX_VALIDITY_MINUTES} (default 2880)"
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
        raise InvalidInputError(
            f"validity {minutes!r} is not a positive number of minutes",
            field="validity",
            value=minutes,
            expected=expected,
        )
    if minutes > MAX_VALIDITY_MINUTES:
        raise InvalidInputError(
            f"validity {minutes} is more than the service's int holds",
            field="validity",
            value=minutes,
            expected=expected,
        )
    return minutes


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus whole calendar months, the day clamped to the target month's length."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    days = [
        31,
        29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28,
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][month - 1]
    return moment.replace(year=year, month=month, day=min(moment.day, days))


def check_statistics_range(start: datetime, end: datetime) -> None:
    expected = f"a start before the end, at most {MAX_STATISTICS_MONTHS} months apart"
    if end < start:
        raise InvalidInputError(
            f"statistics range ends ({end.isoformat()}) before it starts ({start.isoformat()})",
            field="range",
            expected=expected,
        )
    if end > add_months(start, MAX_STATISTICS_MONTHS):
        raise InvalidInputError(
            f"statistics range {start.date()} .. {end.date()} is longer than "
            f"{MAX_STATISTICS_MONTHS} months",
            field="range",
            expected=expected,
        )
