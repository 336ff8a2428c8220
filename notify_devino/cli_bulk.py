"""``notify-devino send --to-file``: a streamed bulk send from the command line.

Recipients are read lazily (:mod:`notify_devino.bulk`) and sent with
:meth:`~notify_devino.dispatcher.Dispatcher.send_stream`. A file (not standard input) is read
once before anything is sent, so a bad ``--column`` or a byte of another encoding is a usage
error with nothing sent. Each recipient's outcome and message IDs are printed as its batch
completes (a table row, or a JSON line with ``--json``), then a summary; on a terminal a
progress bar runs on stderr when stdout is not the terminal too.

Ctrl-C (or SIGTERM) stops the send cleanly: no batch starts after it, the batches already
started run to their end (they may have been sent and charged), their recipients are printed,
the summary counts exactly what was printed, and the exit code is 130.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .bulk import DEFAULT_ENCODING, RecipientsFileError, Tally, count_recipients, read_recipients
from .cliapi import (
    EXIT_AUTH,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_UNKNOWN,
    EXIT_USAGE,
    CliState,
    exit_code_for,
    guard,
    json_line,
    redact,
)

if TYPE_CHECKING:
    from .dispatcher import Dispatcher
    from .types import RecipientResult, SendResult

MAX_IN_FLIGHT = 16
"""Batches started and not yet printed, at most (``send_stream``'s ``max_in_flight``)."""


def check_encoding(encoding: str | None) -> None:
    """:raises click.BadParameter: ``encoding`` is not a text encoding Python knows."""
    if encoding is None:
        return
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise click.BadParameter(
            f"{encoding!r} is not a known text encoding (utf-8, cp1251, latin-1, koi8-r, ...)",
            param_hint="--encoding",
        ) from None
    if not info._is_text_encoding:
        raise click.BadParameter(f"{encoding!r} is not a text encoding", param_hint="--encoding")


class Interrupted(Exception):
    """Raised by the recipients when Ctrl-C came: the stream starts no batch after it."""


class _Gate:
    """The recipients of a streamed send, let through only when their batch can start at once.

    ``send_stream`` takes a batch's last recipient, then waits for a free slot (at most
    ``max_in_flight`` batches not yet consumed) before it starts the batch. A batch waiting for
    a slot when Ctrl-C comes would still start. So the gate holds each batch's *first* recipient
    back until a slot is sure to be free; while it waits, or at any recipient after Ctrl-C, it
    raises :class:`Interrupted`, which ``send_stream`` treats as a failed read: no new batch,
    the started ones finish and are yielded, the error comes last.
    """

    def __init__(self, batch_size: int, max_in_flight: int) -> None:
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        self.consumed = 0
        self.interrupted = False
        self._changed = asyncio.Event()

    def consume(self) -> None:
        self.consumed += 1
        self._changed.set()

    def interrupt(self) -> None:
        self.interrupted = True
        self._changed.set()

    async def through(self, addresses: AsyncIterator[str]) -> AsyncIterator[str]:
        index = 0
        async for address in addresses:
            if index % self.batch_size == 0:
                batch = index // self.batch_size
                while batch - self.consumed >= self.max_in_flight and not self.interrupted:
                    self._changed.clear()
                    await self._changed.wait()
            if self.interrupted:
                raise Interrupted
            yield address
            index += 1


async def _chain(first: Iterable[str], rest: AsyncIterator[str]) -> AsyncIterator[str]:
    for address in first:
        yield address
    async for address in rest:
        yield address


class _Progress:
    """A click progress bar on stderr (a counter when the total is not known in advance:
    standard input); nothing when disabled."""

    def __init__(self, total: int | None, enabled: bool) -> None:
        self.enabled = enabled
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


def _out(text: str) -> None:
    """Write ``text`` and a newline to stdout, whole.

    Ctrl-C arriving while a write to a full pipe is blocked can make CPython's buffered writer
    drop the rest of that write (seen with asyncio's signal handling: recipients sent and
    never printed); ``os.write`` returns what it wrote, and the loop writes the rest.
    """
    stream = sys.stdout
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file: click's test runner
        stream.write(text + "\n")
        stream.flush()
        return
    stream.flush()
    data = memoryview((text + "\n").encode(stream.encoding or "utf-8", errors="replace"))
    while data:
        data = data[os.write(fd, data) :]


_ROW = "{:<16}  {:<8}  {}"


def _row(r: RecipientResult) -> str:
    ids = " ".join(r.message_ids)
    tail = f"{ids}  {r.error}" if ids and r.error else ids or str(r.error or "")
    return redact(_ROW.format(r.recipient, r.outcome.value, tail).rstrip())


def send_file(
    state: CliState,
    text: str,
    to: list[str],
    source: str,
    column: str | None,
    *,
    encoding: str | None,
    channel: str | None,
    as_json: bool,
    **fields: Any,
) -> int:
    """Stream ``text`` to the ``--to`` recipients and those of ``source``; print each
    recipient and a summary; return the exit code (see :data:`notify_devino.cliapi.EXIT_CODES`).
    """
    codec = encoding or DEFAULT_ENCODING
    total: int | None = None
    if source != "-":
        if not Path(source).is_file():
            raise click.BadParameter(f"{source!r} is not a readable file", param_hint="--to-file")
        try:
            total = len(to) + count_recipients(Path(source), column, codec)
        except RecipientsFileError as exc:
            raise click.BadParameter(str(exc), param_hint=exc.option) from None
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {source!r}: {exc.strerror or exc}", param_hint="--to-file"
            ) from None
        if total == 0:
            raise click.UsageError(f"{source} has no recipients (blank lines and # comments)")
    show = not as_json and sys.stderr.isatty() and not sys.stdout.isatty()
    tally = Tally()
    started = time.monotonic()
    stopped: list[BaseException] = []
    header = [False]
    began: list[bool] = []

    def emit(result: SendResult) -> None:
        tally.add(result)
        if as_json:
            lines = "\n".join(json_line(r) for r in result.recipients)
        else:
            rows = [_row(r) for r in result.recipients]
            if not header[0]:
                rows.insert(0, _ROW.format("RECIPIENT", "OUTCOME", "MESSAGE IDS / ERROR"))
                header[0] = True
            lines = "\n".join(rows)
        _out(lines)

    async def work(dispatcher: Dispatcher) -> None:
        target = dispatcher.channel(channel)
        gate = _Gate(_batch_size(dispatcher, target.name), MAX_IN_FLIGHT)
        began.append(True)
        loop = asyncio.get_running_loop()
        installed = _on_interrupt(loop, gate)
        progress = _Progress(total, show)
        try:
            recipients = gate.through(_chain(to, read_recipients(source, column, codec)))
            async for result in dispatcher.send_stream(
                text,
                recipients,
                channel=target.name,
                batch_size=gate.batch_size,
                max_in_flight=MAX_IN_FLIGHT,
                **fields,
            ):
                gate.consume()
                emit(result)
                progress.update(len(result.recipients))
        except (Interrupted, RecipientsFileError) as exc:
            stopped.append(exc)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            progress.close()

    try:
        guard(lambda: state.run(work))
    finally:
        if began:
            _summarise(tally, time.monotonic() - started, as_json, total, stopped)

    if stopped and isinstance(stopped[0], Interrupted):
        return EXIT_INTERRUPTED
    if stopped:
        click.echo(f"error: {redact(str(stopped[0]))}", err=True)
        return EXIT_USAGE
    if tally.unknown:
        return EXIT_UNKNOWN
    if any(exit_code_for(r.error) == EXIT_AUTH for r in tally.not_accepted if r.error):
        return EXIT_AUTH
    if tally.failed:
        return EXIT_PARTIAL
    return EXIT_OK


def _batch_size(dispatcher: Dispatcher, name: str) -> int:
    """The channel type's batch size, as ``send_stream`` would pick it."""
    from .streaming import DEFAULT_BATCH_SIZE

    spec = dispatcher.plugins.channel_types().get(dispatcher.config.channels[name].type)
    return (spec.batch_size if spec is not None else None) or DEFAULT_BATCH_SIZE


def _on_interrupt(loop: asyncio.AbstractEventLoop, gate: _Gate) -> list[signal.Signals]:
    """Make SIGINT and SIGTERM close the gate; :return: the signals handled (none when the
    loop cannot take signal handlers: not the main thread)."""

    def handle(name: str) -> None:
        if gate.interrupted:
            click.echo(
                f"\n{name} again: still waiting for the batches already started; they end "
                "within the channel's timeout",
                err=True,
            )
            return
        gate.interrupt()
        click.echo(
            f"\n{name}: no new batch starts; waiting for the batches already started "
            "(they may have been sent) to report",
            err=True,
        )

    installed: list[signal.Signals] = []
    for sig, name in ((signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated")):
        try:
            loop.add_signal_handler(sig, handle, name)
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
            continue
        installed.append(sig)
    return installed


def _summarise(
    tally: Tally,
    elapsed: float,
    as_json: bool,
    total: int | None,
    stopped: list[BaseException],
) -> None:
    interrupted = bool(stopped) and isinstance(stopped[0], Interrupted)
    not_sent = total - tally.recipients if total is not None else None
    summary: dict[str, Any] = {**tally.summary(), "elapsed_seconds": round(elapsed, 3)}
    if interrupted:
        summary.update(interrupted=True, not_sent=not_sent)
    if as_json:
        _out(json_line({"summary": summary}))
        return
    rate = f", {tally.recipients / elapsed:.0f}/s" if elapsed > 0 and tally.recipients else ""
    lines = [""] if tally.batches else []
    lines.append(
        f"{tally.recipients} recipients: {tally.accepted} accepted ({tally.messages} messages), "
        f"{tally.failed} failed, {tally.unknown} unknown, in {elapsed:.1f} s{rate}"
    )
    if interrupted:
        rest = f"{not_sent} recipients" if not_sent is not None else "the rest of the recipients"
        lines.append(f"interrupted: {rest} not sent; every recipient sent is listed above")
    _out("\n".join(lines))


__all__ = ["Interrupted", "check_encoding", "send_file"]
