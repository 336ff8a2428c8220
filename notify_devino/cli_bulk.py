"""``notify-devino send --to-file``: a streamed bulk send from the command line.

Recipients are read lazily (:mod:`notify_devino.bulk`) and sent with
:meth:`~notify_devino.dispatcher.Dispatcher.send_stream`. On a terminal a progress bar runs on
stderr; at the end a summary and the first recipients that were not accepted are printed.
With ``--json``, one JSON line per recipient as its batch completes, then one summary line:
a program can follow a million recipients without holding them.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import click

from .bulk import RecipientsFileError, Tally, count_recipients, read_recipients
from .cli import EXIT_OK, EXIT_PARTIAL, EXIT_UNKNOWN, CliState, table, to_jsonable
from .dispatcher import Dispatcher
from .types import SendResult


async def _chain(first: Iterable[str], rest: AsyncIterator[str]) -> AsyncIterator[str]:
    for address in first:
        yield address
    async for address in rest:
        yield address


class _Progress:
    """A click progress bar on stderr when it is a terminal (a counter when the total is not
    known in advance: standard input); nothing otherwise."""

    def __init__(self, total: int | None, enabled: bool) -> None:
        self.enabled = enabled
        self.total = total
        self.done = 0
        self._bar: Any = None
        if enabled and total is not None:
            self._bar = click.progressbar(
                length=total, label="sending", file=sys.stderr, show_pos=True, show_eta=True
            )
            self._bar.__enter__()

    def update(self, count: int) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(count)
        elif self.enabled:
            click.echo(f"\rsending: {self.done} recipients", nl=False, err=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
        elif self.enabled and self.done:
            click.echo(err=True)


def _json_line(value: Any) -> str:
    return json.dumps(to_jsonable(value), ensure_ascii=False)


def send_file(
    state: CliState,
    text: str,
    to: list[str],
    source: str,
    column: str | None,
    *,
    channel: str | None,
    as_json: bool,
    **fields: Any,
) -> int:
    """Stream ``text`` to the ``--to`` recipients and those of ``source``; return the exit
    code (0 all accepted, 3 some failed, 4 some unknown)."""
    if source != "-" and not Path(source).is_file():
        raise click.BadParameter(f"{source!r} is not a readable file", param_hint="--to-file")
    show = not as_json and sys.stderr.isatty()
    try:
        total = len(to) + count_recipients(Path(source), column) if show and source != "-" else None
    except RecipientsFileError as exc:
        raise click.BadParameter(str(exc), param_hint="--column") from None
    tally = Tally()
    started = time.monotonic()

    def emit(result: SendResult) -> None:
        tally.add(result)
        if as_json:
            lines = "\n".join(_json_line(r) for r in result.recipients)
            sys.stdout.write(lines + "\n")
            sys.stdout.flush()

    async def work(dispatcher: Dispatcher) -> None:
        progress = _Progress(total, show)
        try:
            recipients = _chain(to, read_recipients(source, column))
            async for result in dispatcher.send_stream(text, recipients, channel=channel, **fields):
                emit(result)
                progress.update(len(result.recipients))
        except RecipientsFileError as exc:
            raise click.BadParameter(str(exc), param_hint="--column") from None
        finally:
            progress.close()
            _summarise(tally, time.monotonic() - started, as_json)

    state.run(work)
    if tally.unknown:
        return EXIT_UNKNOWN
    if tally.failed:
        return EXIT_PARTIAL
    return EXIT_OK


def _summarise(tally: Tally, elapsed: float, as_json: bool) -> None:
    summary = {**tally.summary(), "elapsed_seconds": round(elapsed, 3)}
    if as_json:
        click.echo(_json_line({"summary": summary}))
        return
    rate = f", {tally.recipients / elapsed:.0f}/s" if elapsed > 0 and tally.recipients else ""
    click.echo(
        f"{tally.recipients} recipients: {tally.accepted} accepted ({tally.messages} messages), "
        f"{tally.failed} failed, {tally.unknown} unknown, in {elapsed:.1f} s{rate}"
    )
    if tally.not_accepted:
        click.echo()
        click.echo(
            table(
                ("recipient", "outcome", "error"),
                [[r.recipient, r.outcome.value, r.error] for r in tally.not_accepted],
            )
        )
        more = tally.failed + tally.unknown - len(tally.not_accepted)
        if more > 0:
            click.echo(f"... and {more} more (--json lists every recipient)")


__all__ = ["send_file"]
