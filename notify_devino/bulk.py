"""Recipients from a file, for ``notify-devino send --to-file``, and the running tally of a
streamed bulk send.

A recipients file is one address per line, or a CSV file:

- blank lines and lines starting with ``#`` are skipped;
- a line with a comma, semicolon or tab makes the file CSV (the first such line decides the
  delimiter; quoted fields are read as CSV quotes them); the address is in the column
  ``column`` names (a header name, or a 1-based number), else in the first column whose header
  says phone, number, msisdn, mobile, recipient, address, to or tel, else in the first column;
- a first row with no digit in the address column is a header, and skipped;
- ``-`` reads standard input;
- the text is UTF-8 (a byte-order mark is skipped) unless an ``encoding`` is given
  (``cp1251``, ...); a byte that is not of the encoding is an error naming the file and line.

The file is read lazily, a chunk at a time in a worker thread, so a million lines neither sit
in memory nor block the event loop.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import itertools
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .types import RecipientResult, SendOutcome, SendResult

CHUNK = 1000
DEFAULT_ENCODING = "utf-8-sig"
_DELIMITERS = ",;\t"


class RecipientsFileError(ValueError):
    """The recipients file cannot be read as asked: a column it does not have, or bytes that
    are not of its encoding.

    :ivar option: the command-line option the problem is about (``--column``, ``--encoding``).
    """

    def __init__(self, message: str, *, option: str = "--to-file") -> None:
        super().__init__(message)
        self.option = option


ADDRESS_HEADERS = ("phone", "number", "msisdn", "mobile", "recipient", "address", "to", "tel")
"""Without ``column``, the first header cell that starts with one of these (case ignored) names
the address column of a CSV file; with none of them, the first column is used."""


def _column_index(header: list[str], column: str | None) -> int:
    if column is None:
        names = [cell.strip().lower() for cell in header]
        if any(any(c.isdigit() for c in name) for name in names[:1]):
            return 0  # no header row
        for index, name in enumerate(names):
            if name.startswith(ADDRESS_HEADERS):
                return index
        return 0
    if column.isdigit():
        index = int(column) - 1
        if index >= len(header):
            raise RecipientsFileError(
                f"--column {column}: the file has {len(header)} column(s) "
                f"(its first row: {', '.join(h.strip() for h in header)})",
                option="--column",
            )
        return index
    names = [cell.strip().lower() for cell in header]
    try:
        return names.index(column.strip().lower())
    except ValueError:
        raise RecipientsFileError(
            f"no column {column!r} in the header ({', '.join(h.strip() for h in header)})",
            option="--column",
        ) from None


def decoded_lines(
    binary: Iterable[bytes], encoding: str = DEFAULT_ENCODING, *, name: str = "<stdin>"
) -> Iterator[str]:
    """The lines of a binary stream decoded with ``encoding``, newlines kept (for ``csv``).

    :raises RecipientsFileError: bytes that are not of the encoding, naming ``name`` and the
        line.
    """
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    line = 1
    pending = ""
    for raw in itertools.chain(binary, [b""]):
        try:
            pending += decoder.decode(raw, final=not raw)
        except UnicodeDecodeError as exc:
            shown = "UTF-8" if encoding.lower().startswith("utf-8") else encoding
            raise RecipientsFileError(
                f"{name}: line {line}: byte 0x{raw[exc.start]:02x} (byte {exc.start + 1} of the "
                f"line) is not {shown} text: give the file's encoding with --encoding "
                "(cp1251, latin-1, ...)",
                option="--to-file",
            ) from None
        *complete, pending = pending.split("\n")
        for text in complete:
            yield text + "\n"
            line += 1
    if pending:
        yield pending


def iter_recipients(stream: Iterable[str], column: str | None = None) -> Iterator[str]:
    """The addresses of an open recipients file, in order (see the module docstring)."""
    if column is not None and column.isdigit() and int(column) < 1:
        raise RecipientsFileError("--column numbers start at 1", option="--column")
    lines = (line for line in stream if line.strip() and not line.lstrip().startswith("#"))
    first = next(lines, None)
    if first is None:
        return
    delimiter = next((d for d in _DELIMITERS if d in first), None)
    if delimiter is None and column is not None and not column.isdigit():
        raise RecipientsFileError(
            f"--column {column!r} needs a CSV file with a header row", option="--column"
        )
    if delimiter is None and column is not None and int(column) > 1:
        raise RecipientsFileError(
            f"--column {column}: the file has one address per line, no columns", option="--column"
        )
    rows: Iterator[list[str]]
    if delimiter is None:
        rows = ([line.strip()] for line in itertools.chain([first], lines))
    else:
        rows = csv.reader(itertools.chain([first], lines), delimiter=delimiter)
    head = next(rows)
    index = _column_index(head, column)
    named = column is not None and not column.isdigit()
    cell = head[index].strip() if index < len(head) else ""
    if not named and any(c.isdigit() for c in cell):
        yield cell  # the first row is data
    for row in rows:
        # a row without the cell is a recipient too: it fails with its reason, not in silence
        yield row[index].strip() if index < len(row) else ""


def count_recipients(
    path: Path, column: str | None = None, encoding: str = DEFAULT_ENCODING
) -> int:
    """How many addresses :func:`iter_recipients` will give for ``path``: a first pass, which
    also finds a bad column or a byte of another encoding before anything is sent."""
    with path.open("rb") as stream:
        return sum(
            1 for _ in iter_recipients(decoded_lines(stream, encoding, name=str(path)), column)
        )


async def read_recipients(
    source: str, column: str | None = None, encoding: str = DEFAULT_ENCODING
) -> AsyncIterator[str]:
    """The addresses of a recipients file (``-``: standard input), read in a worker thread a
    chunk at a time."""
    binary: IO[bytes]
    if source == "-":
        binary, name = sys.stdin.buffer, "<stdin>"
    else:
        binary, name = await asyncio.to_thread(Path(source).open, "rb"), source
    try:
        addresses = iter_recipients(decoded_lines(binary, encoding, name=name), column)
        while True:
            chunk = await asyncio.to_thread(lambda: list(itertools.islice(addresses, CHUNK)))
            if not chunk:
                return
            for address in chunk:
                yield address
    finally:
        if source != "-":  # leave the process's stdin open
            binary.close()


@dataclass
class Tally:
    """Counts of a streamed send, and the first few recipients that were not accepted (the
    rest are only counted: memory stays flat)."""

    keep: int = 20
    recipients: int = 0
    accepted: int = 0
    failed: int = 0
    unknown: int = 0
    messages: int = 0
    batches: int = 0
    not_accepted: list[RecipientResult] = field(default_factory=list)

    def add(self, result: SendResult) -> None:
        self.batches += 1
        for r in result.recipients:
            self.recipients += 1
            if r.outcome is SendOutcome.ACCEPTED:
                self.accepted += 1
                self.messages += len(r.message_ids)
                continue
            if r.outcome is SendOutcome.FAILED:
                self.failed += 1
            else:
                self.unknown += 1
            if len(self.not_accepted) < self.keep:
                self.not_accepted.append(r)

    def summary(self) -> dict[str, Any]:
        return {
            "recipients": self.recipients,
            "accepted": self.accepted,
            "failed": self.failed,
            "unknown": self.unknown,
            "messages": self.messages,
            "batches": self.batches,
        }


__all__ = [
    "DEFAULT_ENCODING",
    "RecipientsFileError",
    "Tally",
    "count_recipients",
    "decoded_lines",
    "iter_recipients",
    "read_recipients",
]
