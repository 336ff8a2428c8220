"""The service's send rules as the sandbox enforces them, written from the API reference.

This module is the provider's side and deliberately shares no code with the client's
``notify_devino_soap.rules``: were the sandbox to check requests with the client's own rules, a
bug in them (a numeric sender checked with a Unicode-aware ``\\d`` that lets ``'١٢٣٤٥'`` pass)
would pass on both sides and no test could see it. Each side checks the other.

What the reference says, and how it is read here:

- Source address: up to 11 Latin characters, or up to 15 digits. Latin characters are the ASCII
  letters and digits and the marks ``space . - _ ! & '``, with at least one letter; digits are
  ASCII ``0``-``9`` only.
- Destination: international format, country code + network code + number; ``79031234567``,
  ``+79031234567`` and ``89031234567`` all mean the same Russian number (8 is the trunk prefix).
  The sandbox also ignores the separators a person types (space, ``-``, ``.``, brackets). A +7
  number has 10 digits after the 7 and a network code starting with 3, 4, 8 or 9 (Russia) or 6
  or 7 (Kazakhstan), per the national numbering plans; any other number has 7 to 15 digits in
  all (E.164) and a country code not starting with 0. The sandbox knows no other country's plan.
- Text: 1 to 2000 characters, counted as UTF-16 code units (an emoji counts two).
- Up to 1000 destination addresses per request.
- Validity: minutes; 0 or absent is the default 2880; negative is refused.
- Statistics: a range of at most 3 calendar months, its end not before its start.

Every check returns the value as the service stores it or raises :class:`RuleBroken`, whose
``detail`` is what the sandbox puts after the fault text.
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime

MAX_TEXT_UNITS = 2000
MAX_ADDRESSES = 1000
DEFAULT_VALIDITY_MINUTES = 2880
MAX_STATISTICS_MONTHS = 3

MAX_ALPHA_SENDER = 11
MAX_DIGIT_SENDER = 15

# Spelled out in ASCII on purpose: a Unicode \d or str.isdigit() takes other scripts' digits.
_DIGITS = re.compile("[0123456789]+")
_LETTER = re.compile("[A-Za-z]")
_LATIN_SENDER = re.compile("[A-Za-z0123456789 .\\-_!&']+")
_NUMBER_SEPARATORS = re.compile("[ .()\\-]")
RUSSIAN_NETWORK_FIRST_DIGITS = frozenset("346789")  # 3, 4, 8, 9: Russia; 6, 7: Kazakhstan
MIN_INTERNATIONAL_DIGITS = 7
MAX_INTERNATIONAL_DIGITS = 15


class RuleBroken(ValueError):
    """A value the service refuses; ``detail`` is what the fault names."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def check_source_address(source: str) -> str:
    """Up to 15 ASCII digits, or up to 11 Latin characters with at least one letter."""
    if _DIGITS.fullmatch(source):
        if len(source) > MAX_DIGIT_SENDER:
            raise RuleBroken(source)
        return source
    if (
        len(source) > MAX_ALPHA_SENDER
        or not _LATIN_SENDER.fullmatch(source)
        or not _LETTER.search(source)
    ):
        raise RuleBroken(source)
    return source


def normalize_destination(number: str) -> str:
    """The number as the service stores it: country code first, digits only, no ``+``."""
    compact = _NUMBER_SEPARATORS.sub("", number)
    plus = compact.startswith("+")
    digits = compact[1:] if plus else compact
    if not _DIGITS.fullmatch(digits):
        raise RuleBroken(number)
    if not plus and len(digits) == 11 and digits[0] == "8":
        digits = "7" + digits[1:]
    if digits[0] == "7":
        if len(digits) != 11 or digits[1] not in RUSSIAN_NETWORK_FIRST_DIGITS:
            raise RuleBroken(number)
    elif digits[0] == "0" or not (
        MIN_INTERNATIONAL_DIGITS <= len(digits) <= MAX_INTERNATIONAL_DIGITS
    ):
        raise RuleBroken(number)
    return digits


def text_units(text: str) -> int:
    """The length the service counts: UTF-16 code units (a character above U+FFFF is two)."""
    return sum(2 if ord(char) > 0xFFFF else 1 for char in text)


def check_text(text: str) -> str:
    units = text_units(text)
    if units > MAX_TEXT_UNITS:
        raise RuleBroken(f"{units} characters")
    return text


def check_address_count(count: int) -> None:
    if count > MAX_ADDRESSES:
        raise RuleBroken(str(count))


def validity_minutes(minutes: int | None) -> int:
    """The lifetime in minutes: the default for None or 0."""
    if not minutes:
        return DEFAULT_VALIDITY_MINUTES
    if minutes < 0:
        raise RuleBroken(f"validity {minutes}")
    return minutes


def months_later(moment: datetime, months: int) -> datetime:
    """``moment`` plus whole calendar months, the day cut to the target month's last."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(
        year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1])
    )


def check_statistics_range(start: datetime, end: datetime) -> None:
    """:raise RuleBroken: ``detail`` ``"inverted"`` or ``"too_long"``."""
    if end < start:
        raise RuleBroken("inverted")
    if end > months_later(start, MAX_STATISTICS_MONTHS):
        raise RuleBroken("too_long")
