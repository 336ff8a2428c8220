"""SMS segment counting, shared by the client (to predict and to estimate cost) and the sandbox
(to charge and to hand out one message ID per segment).

A text that fits the GSM 03.38 default alphabet is sent in GSM-7: 160 septets in one segment,
153 per segment of a concatenated message; a character of the extension table
(``€ [ ] { } ~ | ^ \\`` and form feed) costs two septets (ESC and the character), and the pair is
never split across segments. Any other character forces UCS-2: 70 UTF-16 code units in one
segment, 67 per segment of a concatenated message; a character outside the Basic Multilingual
Plane (most emoji) is a surrogate pair, costs two units and is never split.

The two tables below are GSM 03.38 (3GPP TS 23.038 section 6.2.1) in code-point order: the
basic table without its 0x1B escape (which is no character) and the default extension table.
The national single-shift and locking-shift tables (Turkish, Spanish, Portuguese, the Indian
languages) are not used: the service does not say it supports them, so a text that needs one is
counted as UCS-2, which is what an SMS centre without them sends.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from decimal import Decimal

GSM7_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00-0x0F
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"  # 0x10-0x1F (0x1B is the escape to the extension table)
    " !\"#¤%&'()*+,-./"  # 0x20-0x2F
    "0123456789:;<=>?"  # 0x30-0x3F
    "¡ABCDEFGHIJKLMNO"  # 0x40-0x4F
    "PQRSTUVWXYZÄÖÑÜ§"  # 0x50-0x5F
    "¿abcdefghijklmno"  # 0x60-0x6F
    "pqrstuvwxyzäöñüà"  # 0x70-0x7F
)
"""The basic table, indexed by septet value."""

GSM7_EXTENSION_TABLE = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
"""The default extension table: septet value after ESC -> character."""

GSM7_BASIC = frozenset(GSM7_BASIC_TABLE) - {"\x1b"}
GSM7_EXTENSION = frozenset(GSM7_EXTENSION_TABLE.values())

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67

_NOT_GSM7 = re.compile("[^" + re.escape("".join(sorted(GSM7_BASIC | GSM7_EXTENSION))) + "]")
_EXTENSION = re.compile("[" + re.escape("".join(sorted(GSM7_EXTENSION))) + "]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


class Encoding(enum.StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """How a text travels as SMS.

    :ivar encoding: GSM-7 or UCS-2.
    :ivar segments: how many SMS the text takes (one message ID each, one charge each).
    :ivar units: septets (GSM-7) or UTF-16 code units (UCS-2) in the whole text.
    :ivar remaining: units still free in the last segment (an extension character or a
        surrogate pair needs two).
    :ivar per_segment: units one segment holds at this size (160/153 or 70/67).
    :ivar forcing: for UCS-2, the characters outside the GSM-7 alphabet that forced it, each
        once, in order of first appearance.
    """

    encoding: Encoding
    segments: int
    units: int
    remaining: int
    per_segment: int
    forcing: tuple[str, ...] = ()

    def cost(self, price_per_segment: Decimal, recipients: int = 1) -> Decimal:
        """What sending the text to ``recipients`` numbers costs at ``price_per_segment``."""
        return price_per_segment * self.segments * recipients


def encoding_of(text: str) -> Encoding:
    """GSM-7 when every character is in the basic or extension table, else UCS-2."""
    return Encoding.UCS2 if _NOT_GSM7.search(text) else Encoding.GSM7


def _costs(text: str, encoding: Encoding) -> list[int]:
    if encoding is Encoding.GSM7:
        return [2 if char in GSM7_EXTENSION else 1 for char in text]
    return [2 if char > "\uffff" else 1 for char in text]


def split_segments(text: str) -> list[str]:
    """The parts a concatenating SMS centre cuts ``text`` into (one element for a text that
    fits one segment). A character that does not fit whole in a part starts the next one, so an
    ESC pair or a surrogate pair is never split."""
    info = count_segments(text)
    if info.segments == 1:
        return [text]
    parts: list[str] = []
    start = used = 0
    for index, cost in enumerate(_costs(text, info.encoding)):
        if used + cost > info.per_segment:
            parts.append(text[start:index])
            start, used = index, 0
        used += cost
    parts.append(text[start:])
    return parts


def count_segments(text: str) -> SegmentInfo:
    """Count the segments ``text`` takes, exactly as a concatenating SMS centre splits it."""
    non_gsm = _NOT_GSM7.findall(text)
    if non_gsm:
        encoding, single, multi = Encoding.UCS2, UCS2_SINGLE, UCS2_MULTI
        doubles = len(_ASTRAL.findall(text))
    else:
        encoding, single, multi = Encoding.GSM7, GSM7_SINGLE, GSM7_MULTI
        doubles = len(_EXTENSION.findall(text))
    forcing = tuple(dict.fromkeys(non_gsm))
    units = len(text) + doubles
    if units <= single:
        return SegmentInfo(encoding, 1, units, single - units, single, forcing)
    if not doubles:
        segments = math.ceil(units / multi)
        return SegmentInfo(encoding, segments, units, segments * multi - units, multi, forcing)
    # Greedy fill: a two-unit character that does not fit whole starts the next segment.
    segments, used = 1, 0
    for cost in _costs(text, encoding):
        if used + cost > multi:
            segments += 1
            used = 0
        used += cost
    return SegmentInfo(encoding, segments, units, multi - used, multi, forcing)


__all__ = [
    "GSM7_BASIC",
    "GSM7_BASIC_TABLE",
    "GSM7_EXTENSION",
    "GSM7_EXTENSION_TABLE",
    "Encoding",
    "SegmentInfo",
    "count_segments",
    "encoding_of",
    "split_segments",
]
