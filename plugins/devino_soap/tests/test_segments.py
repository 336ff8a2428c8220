"""The segment counter against the GSM 03.38 tables and against an independent byte-level
reference: encode the text for real (septets with ESC pairs, UTF-16 big-endian bytes), cut the
encoded stream into parts of the standard size, and move a cut ESC or high surrogate into the
next part."""

from __future__ import annotations

import unicodedata
from decimal import Decimal

import gsm0338.charset  # registers the gsm03.38 codec too: an independent transcription
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from notify_devino_soap.segments import (
    GSM7_BASIC,
    GSM7_BASIC_TABLE,
    GSM7_EXTENSION,
    GSM7_EXTENSION_TABLE,
    Encoding,
    count_segments,
    encoding_of,
    split_segments,
)

ESC = 0x1B


def reference(text: str) -> tuple[Encoding, int, int]:
    """(encoding, parts, units free in the last part), from the encoded bytes."""
    try:
        if "\x1b" in text:
            raise UnicodeEncodeError("gsm03.38", text, 0, 1, "ESC is no character")
        septets = list(text.encode("gsm03.38"))
    except UnicodeEncodeError:
        units = [
            int.from_bytes(pair, "big")
            for pair in zip(*[iter(text.encode("utf-16-be"))] * 2, strict=True)
        ]
        single, multi, encoding = 70, 67, Encoding.UCS2

        def cut_pair(part: list[int]) -> bool:
            return 0xD800 <= part[-1] <= 0xDBFF  # a high surrogate without its low half
    else:
        units = septets
        single, multi, encoding = 160, 153, Encoding.GSM7

        def cut_pair(part: list[int]) -> bool:
            # an ESC whose character went to the next part: count the ESCs ending the part
            run = 0
            for unit in reversed(part):
                if unit != ESC:
                    break
                run += 1
            return run % 2 == 1

    if len(units) <= single:
        return encoding, 1, single - len(units)
    parts: list[list[int]] = []
    rest = units
    while rest:
        part, rest = rest[:multi], rest[multi:]
        if rest and cut_pair(part):
            part, rest = part[:-1], part[-1:] + rest
        parts.append(part)
    return encoding, len(parts), multi - len(parts[-1])


def units_of(text: str, encoding: Encoding) -> int:
    if encoding is Encoding.GSM7:
        return len(text) + sum(c in GSM7_EXTENSION for c in text)
    return len(text.encode("utf-16-le")) // 2


# -- the tables ---------------------------------------------------------------------------------


def test_the_tables_are_gsm_03_38() -> None:
    names = gsm0338.charset.BASIC_CHARACTER_SET
    assert len(GSM7_BASIC_TABLE) == 128
    for value, char in enumerate(GSM7_BASIC_TABLE):
        if value == ESC:
            assert char == "\x1b"
            continue
        assert unicodedata.name(char, None) == names[value] or (
            char in "\n\r" and names[value] in ("LINE FEED", "CARRIAGE RETURN")
        ), hex(value)
    extension = gsm0338.charset.BASIC_CHARACTER_SET_EXTENSION
    assert set(GSM7_EXTENSION_TABLE) == set(extension)
    for value, char in GSM7_EXTENSION_TABLE.items():
        assert unicodedata.lookup(extension[value]) == char
    assert len(GSM7_BASIC) == 127  # the escape is no character
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Disk full on db-1 @ 12:00 £5 ¥ è é ù ì ò Ç Ø ø Å å Δ _ Ö ñ ü à ¿ ¡ §", Encoding.GSM7),
        ("[ERROR] {db-1} ~ | ^ \\ €", Encoding.GSM7),
        ("ç", Encoding.UCS2),  # only the capital Ç is in the basic table
        ("`backtick`", Encoding.UCS2),
        ("Диск", Encoding.UCS2),
        ("tab\there", Encoding.UCS2),
        ("smile 🙂", Encoding.UCS2),
        ("á", Encoding.UCS2),  # the Spanish single-shift table is not used
    ],
)
def test_encoding(text: str, encoding: Encoding) -> None:
    assert encoding_of(text) is encoding
    assert count_segments(text).encoding is encoding


def test_the_characters_that_force_ucs2_are_named_once_in_order() -> None:
    info = count_segments("Server `db-1` down 🙂, ещё `db-2`")
    assert info.forcing == ("`", "🙂", "е", "щ", "ё")
    assert count_segments("plain [GSM] €").forcing == ()


# -- the boundaries -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "segments", "remaining"),
    [
        ("", 1, 160),
        ("x" * 160, 1, 0),
        ("x" * 161, 2, 145),
        ("x" * 306, 2, 0),  # 2 x 153
        ("x" * 307, 3, 152),
        ("€" * 80, 1, 0),  # 160 septets
        ("x" * 159 + "€", 2, 153 - 8),  # 161 septets: 6 x and the pair go to part 2
        ("x" * 152 + "€" + "x" * 10, 2, 153 - 12),  # the pair does not fit part 1 whole
        ("x" * 151 + "€" + "x" * 10, 2, 153 - 10),  # it does
        ("ж" * 70, 1, 0),
        ("ж" * 71, 2, 63),
        ("ж" * 134, 2, 0),  # 2 x 67
        ("ж" * 135, 3, 66),
        ("🙂" * 35, 1, 0),  # 70 UTF-16 units
        ("🙂" * 36, 2, 61),  # 33 pairs fill 66 of 67; the 34th opens part 2
        ("ж" * 66 + "🙂" + "ж" * 4, 2, 67 - 6),  # the pair does not fit part 1 whole
        ("ж" * 65 + "🙂" + "ж" * 4, 2, 67 - 4),  # it does
    ],
)
def test_boundaries(text: str, segments: int, remaining: int) -> None:
    info = count_segments(text)
    assert (info.segments, info.remaining) == (segments, remaining)
    assert reference(text)[1:] == (segments, remaining)
    assert len(split_segments(text)) == segments


def test_cost() -> None:
    assert count_segments("ж" * 71).cost(Decimal("1.50"), recipients=3) == Decimal("9.00")


# -- properties ---------------------------------------------------------------------------------

GSM_BASIC_TEXT = "".join(sorted(GSM7_BASIC))
GSM_TEXT = GSM_BASIC_TEXT + "".join(sorted(GSM7_EXTENSION))
OTHER = "жёЯ`çá\t🙂🚀😀𝄞"


def near_boundaries(alphabet: str) -> st.SearchStrategy[str]:
    """Texts whose length lands near a part boundary (the sizes that matter), or anywhere."""
    sizes = st.one_of(
        st.sampled_from(
            [n + d for n in (67, 70, 134, 153, 160, 201, 306, 459) for d in (-2, -1, 0, 1, 2)]
        ),
        st.integers(0, 700),
    )
    return sizes.flatmap(
        lambda n: st.text(st.sampled_from(alphabet), min_size=max(0, n - 3), max_size=n)
    )


texts = st.one_of(
    near_boundaries(GSM_BASIC_TEXT),
    near_boundaries(GSM_TEXT),
    near_boundaries("x€"),
    near_boundaries("ж🙂"),
    near_boundaries(GSM_TEXT + OTHER),
    st.text(max_size=400),
)


@given(texts)
@example("x" * 152 + "€")
@example("x" * 153 + "€")
@example("ж" * 66 + "🙂")
@example("ж" * 133 + "🙂")
def test_the_count_matches_the_encoded_bytes(text: str) -> None:
    info = count_segments(text)
    assert (info.encoding, info.segments, info.remaining) == reference(text)
    assert info.units == units_of(text, info.encoding)


@given(texts)
def test_the_parts_rebuild_the_text_and_each_fits(text: str) -> None:
    info = count_segments(text)
    parts = split_segments(text)
    assert "".join(parts) == text
    assert len(parts) == info.segments
    for part in parts:
        assert units_of(part, info.encoding) <= info.per_segment
    assert info.per_segment - units_of(parts[-1], info.encoding) == info.remaining


@given(st.text(st.sampled_from(GSM_TEXT), max_size=300), st.sampled_from(OTHER))
def test_one_character_outside_the_alphabet_forces_ucs2(text: str, char: str) -> None:
    info = count_segments(text + char)
    assert info.encoding is Encoding.UCS2
    assert char in info.forcing
    assert count_segments(text).encoding is Encoding.GSM7


# -- against the air interface: 140 octets per SMS ----------------------------------------------

SMS_OCTETS = 140
CONCAT_UDH_OCTETS = 6  # UDHL, IEI 0x00, IEDL 3, reference, total, sequence (3GPP TS 23.040)


def packed_septets(part: str, *, header_octets: int) -> bytes:
    """GSM 03.38 septets packed seven to eight octets, by hand, after a user data header of
    ``header_octets`` (the septets start at the next septet boundary, with fill bits)."""
    septets = list(part.encode("gsm03.38"))
    fill = (7 - header_octets * 8 % 7) % 7
    bits = "".join(format(s, "07b")[::-1] for s in septets)  # each septet, least bit first
    bits = "0" * fill + bits
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i : i + 8][::-1], 2) for i in range(0, len(bits), 8))


@given(texts)
@example("x" * 160)
@example("x" * 161)
@example("ж" * 70)
@example("ж" * 71)
@example("x" * 152 + "€")
def test_each_part_fits_one_sms_on_the_air_and_no_fewer_parts_would(text: str) -> None:
    """The 160/153/70/67 limits re-derived from octets: every part, encoded for real (septets
    packed by hand, or UTF-16 big-endian) behind its concatenation header, fits 140 octets."""
    info = count_segments(text)
    parts = split_segments(text)
    header = CONCAT_UDH_OCTETS if len(parts) > 1 else 0
    for part in parts:
        if info.encoding is Encoding.GSM7:
            payload = packed_septets(part, header_octets=header)
        else:
            payload = part.encode("utf-16-be")
        assert header + len(payload) <= SMS_OCTETS, (part, len(payload))
    if len(parts) == 1 and info.encoding is Encoding.GSM7:
        assert len(packed_septets(text, header_octets=0)) <= SMS_OCTETS
    if len(parts) > 1:  # it did not fit one SMS without a header
        whole = (
            packed_septets(text, header_octets=0)
            if info.encoding is Encoding.GSM7
            else text.encode("utf-16-be")
        )
        assert len(whole) > SMS_OCTETS
