"""Acknowledgement by SMS reply, and the Alertmanager silence an acknowledgement creates.

Every firing SMS of an alert group carries a code (``Reply 4821 to ack``). Codes are kept in
the store per recipient address: unique among that address's open alert groups, the same for
every recipient of one notification and across the group's notifications, free again when
the group resolves.

The **reader** goes through the inbound messages the service stored (the inbox worker reads
the provider; this reader has its own stored position in the same store, so a reply is
handled once, across restarts) and matches each reply from an address with open codes:

- ``4821``, ``ACK 4821``, ``ack4821``: the group with that code;
- ``ACK`` alone: the address's only open group (with several, the reply lists their codes);
- anything else is not an acknowledgement and is left alone.

An acknowledged group's route stops: no fallback, no next channel, for every notification of
the group. The sender gets a confirmation SMS (an unknown or stale code gets a short reply
saying so), ``notify_alert_acknowledged`` observers hear of it, and the silence sink, when
``alertmanager.silence.url`` is set, creates a silence in Alertmanager (API v2) matching the
group's labels, ``createdBy`` the contact, for ``alertmanager.silence.duration_seconds``; the
silence is expired when the group resolves.

Every step is safe to do again, so a crash between two of them is recovered by doing the
reply again: the acknowledgement is stored once, the confirmation is deduplicated in the
outbox by the reply's position, a silence already recorded is not created twice.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import structlog

from ..types import utc_now
from .matchers import equality_matchers
from .receiver import digits
from .settings import SilenceSettings

log = structlog.get_logger(__name__)

CLOCK_SKEW = timedelta(minutes=5)
"""How far the provider's clock (a reply's time) may be behind ours (a code's opening)."""

_REPLY = re.compile(r"(?:ack\W*)?(\d{3,6})|ack", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """An alert group acknowledged by SMS reply (what ``notify_alert_acknowledged`` gets).

    :param alert_key: the alert group (its receiver and group key, hashed).
    :param code: the code that was replied.
    :param by: the contact's name, or the address when it is no contact's.
    :param address: the address the reply came from.
    :param channel: the channel it came on.
    :param labels: the group's labels (what a silence matches on).
    :param acknowledged_at: when it was stored.
    """

    alert_key: str
    code: str
    by: str
    address: str
    channel: str
    labels: Mapping[str, str]
    acknowledged_at: datetime


@dataclass(frozen=True, slots=True)
class Reply:
    """What a reply text asks: a code, or a bare ``ACK`` (code None)."""

    code: str | None


def parse_reply(text: str) -> Reply | None:
    """The acknowledgement a reply text asks for, or None when it is not one."""
    cleaned = text.strip().strip(".!?,;:").strip()
    found = _REPLY.fullmatch(cleaned)
    if found is None:
        return None
    return Reply(found.group(1))


class SilenceError(Exception):
    """Alertmanager's API refused or could not be reached."""


class SilenceSink:
    """Creates and expires silences through Alertmanager's API v2.

    :param session: an aiohttp session the sink does not close.
    """

    def __init__(self, settings: SilenceSettings, session: aiohttp.ClientSession) -> None:
        if settings.url is None:
            raise ValueError("a silence sink needs alertmanager.silence.url")
        self.settings = settings
        self.base = settings.url.rstrip("/") + "/api/v2"
        self._session = session

    def _headers(self) -> dict[str, str]:
        s = self.settings
        if s.bearer_token is not None:
            return {"Authorization": f"Bearer {s.bearer_token.get_secret_value()}"}
        if s.basic_auth is not None:
            pair = f"{s.basic_auth.username}:{s.basic_auth.password.get_secret_value()}"
            return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
        return {}

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
        try:
            async with self._session.request(
                method, self.base + path, json=body, headers=self._headers(), timeout=timeout
            ) as response:
                text = await response.text()
                if response.status >= 300:
                    raise SilenceError(
                        f"{method} {path}: Alertmanager answered {response.status}: {text[:200]}"
                    )
                return await response.json(content_type=None) if text.strip() else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SilenceError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc

    async def create(self, ack: Acknowledgement) -> str:
        """Create the silence of an acknowledgement; :return: its ID."""
        matchers = equality_matchers(ack.labels)
        if not matchers:
            raise SilenceError("the alert group has no labels to silence on")
        starts = utc_now()
        body = {
            "matchers": [m.to_api() for m in matchers],
            "startsAt": starts.isoformat(),
            "endsAt": (starts + timedelta(seconds=self.settings.duration_seconds)).isoformat(),
            "createdBy": ack.by,
            "comment": f"{self.settings.comment} (code {ack.code}, from {ack.address})",
        }
        found = await self._call("POST", "/silences", body)
        silence_id = found.get("silenceID") if isinstance(found, dict) else None
        if not silence_id:
            raise SilenceError(f"POST /silences: no silenceID in the answer {found!r}")
        return str(silence_id)

    async def active(self, silence_id: str) -> bool:
        """Whether the silence is still active or pending (not expired, not deleted)."""
        try:
            found = await self._call("GET", f"/silence/{silence_id}")
        except SilenceError as exc:
            if "answered 404" in str(exc):
                return False
            raise
        state = ((found or {}).get("status") or {}).get("state")
        return state in ("active", "pending")

    async def firing(self, labels: Mapping[str, str]) -> bool:
        """Whether Alertmanager still has an alert with these labels that has not resolved
        (silenced ones included: a silenced alert's resolution is never notified, so this is
        how the sink learns of it)."""
        params = [("filter", str(m)) for m in equality_matchers(labels)]
        params += [("silenced", "true"), ("inhibited", "true"), ("active", "true")]
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
        try:
            async with self._session.get(
                self.base + "/alerts", params=params, headers=self._headers(), timeout=timeout
            ) as response:
                if response.status >= 300:
                    raise SilenceError(
                        f"GET /alerts: Alertmanager answered {response.status}: "
                        f"{(await response.text())[:200]}"
                    )
                found = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SilenceError(f"GET /alerts: {type(exc).__name__}: {exc}") from exc
        return bool(found)

    async def expire(self, silence_id: str) -> None:
        """Expire a silence (an already expired or unknown one is fine)."""
        try:
            await self._call("DELETE", f"/silence/{silence_id}")
        except SilenceError as exc:
            if "answered 404" not in str(exc):
                raise


SendReply = Callable[[str, str, str, str], Awaitable[None]]
"""Sends a short SMS: (channel, address, text, dedup key)."""


class AckReader:
    """Reads the stored inbox for acknowledgements (see the module docstring).

    :param store: the service's store.
    :param send_reply: commits a reply SMS to the outbox (deduplicated by its key).
    :param on_ack: called with each new acknowledgement (halts the route, tells the observers).
    :param silences: creates and expires silences; None makes none.
    :param confirm: send confirmations and "unknown code" replies.
    """

    CURSOR = "alertmanager-acks"

    def __init__(
        self,
        store: Any,
        *,
        send_reply: SendReply,
        on_ack: Callable[[Acknowledgement], None],
        silences: SilenceSink | None = None,
        confirm: bool = True,
        interval: float = 1.0,
        on_closed: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self._send_reply = send_reply
        self._on_ack = on_ack
        self._on_closed = on_closed
        self.silences = silences
        self.confirm = confirm
        self.interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.handled = 0

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name="alertmanager-acks")

    async def stop(self) -> None:
        # The flag as well as the cancel: on Python 3.11 a wait_for whose wait ends (a wake)
        # as it is cancelled returns instead of raising, and the loop would go on.
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_watch = loop.time()
        while not self._stopping:
            try:
                await self.read_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("ack_read_failed", error=f"{type(exc).__name__}: {exc}")
            if self.silences is not None and loop.time() >= next_watch:
                next_watch = loop.time() + self.silences.settings.check_interval_seconds
                try:
                    await self.watch_silences()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("silence_watch_failed", error=f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()

    async def read_once(self) -> int:
        """Handle the stored inbound messages after the reader's position; :return: how many."""
        position = await self.store.cursor(self.CURSOR)
        records = await self.store.inbox(after=position, limit=500)
        for record in records:
            await self.handle(record)
            await self.store.set_cursor(self.CURSOR, record.seq)
            self.handled += 1
        return len(records)

    async def handle(self, record: Any) -> None:
        reply = parse_reply(record.text)
        if reply is None:
            return
        address = digits(record.sender)
        open_codes = await self.store.open_alert_codes(address)
        by_key: dict[str, list[Any]] = {}
        for row in open_codes:
            if record.received_at < row.opened_at - CLOCK_SKEW:
                continue  # a reply older than the alert cannot be about it
            by_key.setdefault(row.alert_key, []).append(row)
        key = f"{record.channel}:{record.seq}"
        if reply.code is None:
            pending = [rows for rows in by_key.values() if rows[0].acked_at is None]
            if len(pending) == 1:
                chosen = pending[0]
            elif not pending and len(by_key) == 1:  # the only one, acknowledged before
                (chosen,) = by_key.values()
            else:
                codes = sorted({rows[0].code for rows in (pending or list(by_key.values()))})
                text = (
                    "No open alert to acknowledge."
                    if not codes
                    else f"Several alerts are open: reply ACK and one of {', '.join(codes)}."
                )
                await self._reply(record, text, key)
                return
        else:
            chosen = next((rows for rows in by_key.values() if rows[0].code == reply.code), [])
            if not chosen:
                await self._reply(
                    record, f"Code {reply.code} matches no open alert (resolved, or mistyped).", key
                )
                return
        row = chosen[0]
        by = row.contact or record.sender
        first, rows = await self.store.acknowledge_alert(row.alert_key, by)
        stored = rows[0] if rows else row
        ack = Acknowledgement(
            alert_key=row.alert_key,
            code=row.code,
            by=stored.acked_by or by,
            address=record.sender,
            channel=record.channel,
            labels=dict(row.labels),
            acknowledged_at=stored.acked_at or utc_now(),
        )
        if first:
            log.info("alert_acknowledged", code=row.code, by=ack.by, channel=record.channel)
            self._on_ack(ack)
        silence_note = ""
        if self.silences is not None and stored.silence_id is None and stored.closed_at is None:
            try:
                silence_id = await self.silences.create(ack)
            except SilenceError as exc:
                log.error("silence_not_created", code=row.code, error=str(exc))
                silence_note = " (no silence: Alertmanager did not answer)"
            else:
                await self.store.set_alert_silence(row.alert_key, silence_id)
                hours = self.silences.settings.duration_seconds / 3600
                silence_note = f", silenced for {hours:g} h"
                log.info("silence_created", code=row.code, silence_id=silence_id)
        if first:
            text = f"Acknowledged alert {row.code}{silence_note}. Thank you."
        else:
            when = stored.acked_at.strftime("%H:%M UTC") if stored.acked_at else "before"
            text = f"Alert {row.code} was already acknowledged by {stored.acked_by} at {when}."
        await self._reply(record, text, key)

    async def _reply(self, record: Any, text: str, key: str) -> None:
        if self.confirm:
            await self._send_reply(record.channel, record.sender, text, key)

    async def watch_silences(self) -> int:
        """Close the acknowledged groups whose alerts resolved while silenced, and expire their
        silences. :return: how many were closed."""
        assert self.silences is not None
        closed = 0
        for key in sorted(await self.store.acknowledged_alert_keys()):
            rows = await self.store.alert_codes(key)
            open_rows = [r for r in rows if r.closed_at is None]
            if not open_rows or not any(r.silence_id for r in open_rows):
                continue
            if await self.silences.firing(open_rows[0].labels):
                continue
            done = await self.store.close_alert(key)
            if self._on_closed is not None:
                self._on_closed(key)
            log.info("acknowledged_alert_resolved", code=open_rows[0].code)
            await self.resolved(done)
            closed += 1
        return closed

    async def resolved(self, rows: Sequence[Any]) -> None:
        """A group resolved: expire the silence its acknowledgement created."""
        if self.silences is None:
            return
        for silence_id in {r.silence_id for r in rows if r.silence_id}:
            try:
                await self.silences.expire(silence_id)
                log.info("silence_expired", silence_id=silence_id)
            except SilenceError as exc:
                log.error("silence_not_expired", silence_id=silence_id, error=str(exc))


__all__ = [
    "AckReader",
    "Acknowledgement",
    "Reply",
    "SilenceError",
    "SilenceSink",
    "parse_reply",
]
