"""Reading recipients files (``notify-devino send --to-file``) and tallying a streamed send."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from notify_devino.bulk import (
    RecipientsFileError,
    Tally,
    count_recipients,
    iter_recipients,
    read_recipients,
)
from notify_devino.errors import InvalidInputError
from notify_devino.types import Notification, RecipientResult, SendOutcome, SendResult


def read(text: str, column: str | None = None) -> list[str]:
    return list(iter_recipients(io.StringIO(text), column))


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("79031234567\n+7 903 123-45-68\n\n# on call\n89031234569\n", None),
        ("phone\n79031234567\n+7 903 123-45-68\n89031234569\n", None),
        ("name,phone\nAnn,79031234567\nBob,+7 903 123-45-68\nCy,89031234569\n", None),
        ("name;Phone\nAnn;79031234567\nBob;+7 903 123-45-68\nCy;89031234569\n", "phone"),
        ("Ann\t79031234567\nBob\t+7 903 123-45-68\nCy\t89031234569\n", "2"),
        ('name,tel\n"Doe, Ann","79031234567"\nB,+7 903 123-45-68\nC,89031234569\n', None),
        ("id,who,msisdn\n1,a,79031234567\n2,b,+7 903 123-45-68\n3,c,89031234569\n", None),
        ("79031234567,db\n+7 903 123-45-68,web\n89031234569,ops\n", None),
    ],
)
def test_the_forms_a_recipients_file_takes(text: str, column: str | None) -> None:
    assert read(text, column) == ["79031234567", "+7 903 123-45-68", "89031234569"]


def test_an_empty_cell_is_a_recipient_to_report_and_a_short_row_too() -> None:
    assert read("name,phone\nAnn,\nBob\nCy,79031234567\n") == ["", "", "79031234567"]


def test_column_errors() -> None:
    with pytest.raises(RecipientsFileError, match="no column 'mobile' in the header"):
        read("name,phone\nAnn,79031234567\n", "mobile")
    with pytest.raises(RecipientsFileError, match="needs a CSV file with a header row"):
        read("79031234567\n", "phone")
    with pytest.raises(RecipientsFileError, match="start at 1"):
        read("a,b\n", "0")
    assert read("") == []
    assert read("# only a comment\n\n") == []


async def test_a_file_is_read_lazily_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "numbers.txt"
    path.write_text("\ufeffphone\n" + "".join(f"7903{n:07d}\n" for n in range(2500)))
    assert count_recipients(path) == 2500
    numbers = [n async for n in read_recipients(str(path))]
    assert numbers == [f"7903{n:07d}" for n in range(2500)]  # the BOM and the header skipped


def test_the_tally_counts_and_keeps_only_the_first_failures() -> None:
    tally = Tally(keep=2)
    error = InvalidInputError("bad", field="recipient")
    results = (
        RecipientResult("a", "a", SendOutcome.ACCEPTED, ("1", "2")),
        RecipientResult("b", "b", SendOutcome.FAILED, error=error),
        RecipientResult("c", "c", SendOutcome.UNKNOWN),
        RecipientResult("d", "d", SendOutcome.FAILED, error=error),
    )
    tally.add(SendResult("sms", Notification("x", ("a", "b", "c", "d")), results))
    assert tally.summary() == {
        "recipients": 4,
        "accepted": 1,
        "failed": 2,
        "unknown": 1,
        "messages": 2,
        "batches": 1,
    }
    assert [r.recipient for r in tally.not_accepted] == ["b", "c"]
