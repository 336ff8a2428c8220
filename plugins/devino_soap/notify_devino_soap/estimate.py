"""What a text costs as SMS, before it is sent: ``notify-devino estimate``.

The numbers come from :mod:`.segments`, the counter the channel and the sandbox use, so the
estimate is the number of message IDs (and charges) a send will produce.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import rules
from .segments import GSM7_BASIC, GSM7_EXTENSION, Encoding, SegmentInfo, count_segments

FEW_FORCING = 5
"""Up to this many characters outside GSM-7 in a text look like a slip (a typographic dash, a
curly quote, an emoji): the estimate says what the text would take without them."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """The segments and cost of one text.

    :ivar info: the segment count.
    :ivar characters: characters as the service counts them (UTF-16 code units, at most 2000).
    :ivar recipients: how many numbers the cost is for.
    :ivar price_per_segment: the tariff, when known.
    :ivar currency: shown beside the cost, when known.
    :ivar without_forcing: for a GSM-7 text that a few characters (at most
        :data:`FEW_FORCING`) push to UCS-2, what it would take without them; else None.
    """

    info: SegmentInfo
    characters: int
    recipients: int = 1
    price_per_segment: Decimal | None = None
    currency: str | None = None
    without_forcing: SegmentInfo | None = None

    @property
    def cost(self) -> Decimal | None:
        if self.price_per_segment is None:
            return None
        return self.info.cost(self.price_per_segment, self.recipients)

    @property
    def too_long(self) -> bool:
        return self.characters > rules.MAX_TEXT_LENGTH

    def warnings(self) -> list[str]:
        out = []
        if self.info.forcing:
            named = ", ".join(describe(c) for c in self.info.forcing[:5])
            more = len(self.info.forcing) - 5
            if more > 0:
                named += f" and {more} more"
            line = (
                f"{named} {'forces' if len(self.info.forcing) == 1 else 'force'} UCS-2 "
                f"({self.info.per_segment} characters per part instead of "
                f"{160 if self.info.segments == 1 else 153})"
            )
            if self.without_forcing is not None:
                line += (
                    f"; without {'it' if len(self.info.forcing) == 1 else 'them'} the text takes "
                    f"{_parts(self.without_forcing.segments)} in GSM-7"
                )
            out.append(line)
        if self.too_long:
            out.append(
                f"the text has {self.characters} characters: the service takes at most "
                f"{rules.MAX_TEXT_LENGTH}"
            )
        return out

    def to_json(self) -> dict[str, Any]:
        cost = self.cost
        return {
            "encoding": self.info.encoding.value,
            "characters": self.characters,
            "units": self.info.units,
            "parts": self.info.segments,
            "per_part": self.info.per_segment,
            "left_in_last_part": self.info.remaining,
            "forcing_ucs2": [
                {"char": c, "code_point": f"U+{ord(c):04X}", "name": unicodedata.name(c, None)}
                for c in self.info.forcing
            ],
            "gsm7_parts_without_forcing": (
                self.without_forcing.segments if self.without_forcing else None
            ),
            "recipients": self.recipients,
            "price_per_segment": (
                str(self.price_per_segment) if self.price_per_segment is not None else None
            ),
            "cost": str(cost) if cost is not None else None,
            "currency": self.currency,
            "warnings": self.warnings(),
        }

    def render(self) -> str:
        info = self.info
        per = (
            f"{info.per_segment} per part"
            if info.segments > 1
            else f"{info.per_segment} in one SMS"
        )
        unit = "septets" if info.encoding is Encoding.GSM7 else "UTF-16 units"
        lines = [
            f"encoding:    {info.encoding.value} ({per})",
            f"characters:  {self.characters} ({info.units} {unit})",
            f"parts:       {info.segments}",
            f"left:        {info.remaining} in the last part",
        ]
        cost = self.cost
        if cost is not None:
            currency = f" {self.currency}" if self.currency else ""
            lines.append(
                f"cost:        {cost}{currency} ({_parts(info.segments)} x {self.price_per_segment}"
                f" x {self.recipients} recipient{'s' if self.recipients != 1 else ''})"
            )
        else:
            lines.append("cost:        unknown (pass --price or set price_per_segment)")
        lines += [f"warning: {w}" for w in self.warnings()]
        return "\n".join(lines)


def describe(char: str) -> str:
    """``'ё' (U+0451 CYRILLIC SMALL LETTER IO)``; control characters shown escaped."""
    shown = repr(char) if not char.isprintable() else f"'{char}'"
    name = unicodedata.name(char, None)
    return f"{shown} (U+{ord(char):04X}{' ' + name if name else ''})"


def _parts(count: int) -> str:
    return f"{count} part{'s' if count != 1 else ''}"


def estimate(
    text: str,
    *,
    recipients: int = 1,
    price_per_segment: Decimal | None = None,
    currency: str | None = None,
) -> Estimate:
    """Count the segments of ``text`` and what sending it to ``recipients`` numbers costs."""
    info = count_segments(text)
    without = None
    if info.forcing:
        rest = "".join(c for c in text if c in GSM7_BASIC or c in GSM7_EXTENSION)
        if rest and len(text) - len(rest) <= FEW_FORCING:
            without = count_segments(rest)
    return Estimate(
        info=info,
        characters=rules.text_length(text),
        recipients=recipients,
        price_per_segment=price_per_segment,
        currency=currency,
        without_forcing=without,
    )


__all__ = ["Estimate", "describe", "estimate"]
