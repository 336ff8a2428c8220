"""SMS segment counting, shared by the client (to predict) and the sandbox (to charge and to
hand out one message ID per segment).

A text that fits the GSM 03.38 default alphabet is sent in GSM-7: 160 septets in one segment,
153 per segment of a concatenated message; a character of the extension table
(``€ [ ] { } ~ | ^ \\`` and form feed) costs two septets, and the escape pair is never split
across segments. Any other character forces UCS-2: 70 UTF-16 code units in one segment, 67 per
segment of a concatenated message; an emoji (a surrogate pair) costs two units and is never split.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


class Encoding(enum.StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """How a text travels as SMS.

    :ivar encoding: GSM-7 or UCS-2.
    :ivar segments: how many SMS the text takes (one message ID each).
    :ivar units: septets (GSM-7) or UTF-16 code units (UCS-2) in the whole text.
    :ivar remaining: units still free in the last segment.
    :ivar forcing: for UCS-2, the characters outside the GSM-7 alphabet that forced it.
    """

    encoding: Encoding
    segments: int
    units: int
    remaining: int
    forcing: tuple[str, ...] = ()


def _cost(char: str, encoding: Encoding) -> int:
    if encoding is Encoding.GSM7:
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def count_segments(text: str) -> SegmentInfo:
    """Count the segments ``text`` takes, exactly as a concatenating SMS centre splits it."""
    forcing = tuple(
        dict.fromkeys(c for c in text if c not in GSM7_BASIC and c not in GSM7_EXTENSION)
    )
    encoding = Encoding.UCS2 if forcing else Encoding.GSM7
    single, multi = (
        (GSM7_SINGLE, GSM7_MULTI) if encoding is Encoding.GSM7 else (UCS2_SINGLE, UCS2_MULTI)
    )
    costs = [_cost(c, encoding) for c in text]
    units = sum(costs)
    if units <= single:
        return SegmentInfo(encoding, 1, units, single - units, forcing)
    # Greedy fill: a character that does not fit whole starts the next segment, so an escape
    # pair or a surrogate pair is never split.
    segments, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            segments += 1
            used = 0
        used += cost
    return SegmentInfo(encoding, segments, units, multi - used, forcing)
