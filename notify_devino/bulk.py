"""Recipients from a file, for ``notify-devino send --to-file``, and the running tally of a
streamed bulk send.

A recipients file is one address per line, or a CSV file:

- blank lines and lines starting with ``#`` are skipped;
- a line with a comma, semicolon or tab makes the file CSV (the first such line decides the
  delimiter; quoted fields are read as CSV quotes them); the address is in the column
  ``column`` names (a header name, or a 1-based number), else in the first column whose header
  says phone, number, msisdn, mobile, recipient, address, to or tel, else in the first column;
- a first row with no digit in the address column is a header, and skipped;
- ``-`` reads standard input.

The file is read lazily, a chunk at a time in a worker thread, so a million lines neither sit
in memory nor block the event loop.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .types import RecipientResult, SendOutcome, SendResult

CHUNK = 1000
_DELIMITERS = ",;\t"


class RecipientsFileError(ValueError):
    """The recipients file cannot be read as asked (a named column it does not have)."""


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
        return int(column) - 1
    names = [cell.strip().lower() for cell in header]
    try:
        return names.index(column.strip().lower())
    except ValueError:
        raise RecipientsFileError(
            f"no column {column!r} in the header ({', '.join(h.strip() for h in header)})"
        ) from None


def iter_recipients(stream: IO[str], column: str | None = None) -> Iterator[str]:
    """The addresses of an open recipients file, in order (see the module docstring)."""
    if column is not None and column.isdigit() and int(column) < 1:
        raise RecipientsFileError("--column numbers start at 1")
    lines = (line for line in stream if line.strip() and not line.lstrip().startswith("#"))
    first = next(lines, None)
    if first is None:
        return
    delimiter = next((d for d in _DELIMITERS if d in first), None)
    if delimiter is None and column is not None and not column.isdigit():
        raise RecipientsFileError(f"--column {column!r} needs a CSV file with a header row")
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


def count_recipients(path: Path, column: str | None = None) -> int:
    """How many addresses :func:`iter_recipients` will give for ``path`` (a first pass)."""
    with path.open(encoding="utf-8-sig", newline="") as stream:
        return sum(1 for _ in iter_recipients(stream, column))


async def read_recipients(source: str, column: str | None = None) -> AsyncIterator[str]:
    """The addresses of a recipients file (``-``: standard input), read in a worker thread a
    chunk at a time."""
    stdin: io.TextIOWrapper | None = None
    stream: IO[str]
    if source == "-":
        stream = stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
    else:
        stream = await asyncio.to_thread(Path(source).open, encoding="utf-8-sig", newline="")
    try:
        addresses = iter_recipients(stream, column)
        while True:
            chunk = await asyncio.to_thread(lambda: list(itertools.islice(addresses, CHUNK)))
            if not chunk:
                return
            for address in chunk:
                yield address
    finally:
        if stdin is not None:
            stdin.detach()  # leave the process's stdin open
        else:
            stream.close()


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
    "RecipientsFileError",
    "Tally",
    "count_recipients",
    "iter_recipients",
    "read_recipients",
]
