"""The Devino sandbox over HTTP: Devino's SmsService SOAP API on a local port.

:class:`Sandbox` is the server: its lifecycle, its routes and the way one request is answered
(content type, the read, strict mode, the rate limit, fault injection, the operation, the
request log). The jobs it hands out are modules of their own, as moto splits a service:
:mod:`.wire` (the SOAP codec), :mod:`.schema` (strict mode's walker), :mod:`.operations`
(requests to calls on the state), :mod:`.state` (the service's bookkeeping), :mod:`.rules` (the
send rules), :mod:`.ratelimit` (the sandbox's limiter), :mod:`.injected` (what an injected fault
does to an answer) and :mod:`.admin` (the admin routes).

Routes
------
``POST /SmsService.asmx`` (path case-insensitive, as on IIS)
    SOAP 1.2 (``Content-Type: application/soap+xml; charset=utf-8``, optional ``action=``
    parameter, which must then name the body's operation) or SOAP 1.1 (``Content-Type:
    text/xml; charset=utf-8`` plus ``SOAPAction: "http://ws.devinosms.com/<Operation>"``).
    The reply uses the request's SOAP version and content type. Faults are HTTP 500 with a
    SOAP Fault of the same version. Any other content type, or a charset other than UTF-8, is
    answered 415 (plain text); a body in UTF-16 or declared in another encoding is a
    ``soap:Sender`` fault: the service reads UTF-8 only.
``GET /SmsService.asmx?WSDL`` (query key case-insensitive)
    The WSDL (a reconstruction, see the file's header), its ``soap:address`` and
    ``soap12:address`` pointing at this sandbox as the request addressed it (the Host header,
    as ASMX does). Without ``?WSDL``: a short HTML page listing the operations.
``/admin/...``
    The admin routes (:mod:`.admin`): ``POST /admin/incoming`` (an SMS sent to the customer),
    ``POST /admin/expire-sessions``, ``GET /admin/requests`` (the request log),
    ``GET /admin/messages`` (every stored segment and its state).

Admin routes are neither rate-limited, nor checked by strict mode, nor logged in
:attr:`Sandbox.requests`.

Wire choices the client must know
---------------------------------
- Dates are written like .NET's ``yyyy-MM-ddTHH:mm:ss.fff`` with a trailing ``Z`` (every date
  the sandbox writes is UTC, stored to the millisecond), e.g. ``2026-03-02T09:00:01.250Z``.
  The one exception is the TimeStampUtc of an unknown message: ``0001-01-01T00:00:00``.
- Nil values are ``<CreationDateUtc xsi:nil="true" />`` (``xsi`` declared on the Envelope).
- Message IDs are decimal ``<string>`` children, one per segment, consecutive per text,
  grouped per destination in the order the destinations were given.
- Decimals (balance, Price) keep their scale: ``1.50``, ``997.00``; DeliveryRatio has two
  decimals.
- A naive date is UTC, except ``sendDate``, which is the recipient's wall-clock time (an
  offset there is ignored). Strict mode takes ``xsd:dateTime`` only (seconds required,
  fraction, ``Z`` or an offset optional); the lenient reader also takes a date without
  seconds.
- ``validity`` / ``Validity`` 0 means the default 2880 minutes (a generated client always
  sends the element, as 0 when unset).
- Strict mode (``SandboxConfig.strict``, on by default, in the packaged config and in the
  pytest fixtures) checks every request body against the schema of the WSDL served here
  (:mod:`.schema`): element names, namespace and order, ``minOccurs``/``maxOccurs``,
  ``xsi:nil`` only where ``nillable``, and int/long/boolean/decimal/dateTime values in range.
  The first element that breaks it is answered as a SOAP Client fault (``soap:Sender``; 1.1
  ``soap:Client``), HTTP 500, nothing processed: ``Server was unable to read request. --->
  There is an error in XML document (1, 366). ---> Element 'SendMessage/message/DelayUntilUtc'
  is missing (before 'DestinationAddresses'): the WSDL requires it (minOccurs="1"); with no
  value, send it as xsi:nil="true".`` With ``strict: false`` the sandbox reads requests as
  leniently as ASMX: a missing value-type element is null or its default (validity 2880).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib import resources
from typing import Any

from aiohttp import web

from notify_devino.logconfig import get_logger

from . import injected as injected_faults
from .admin import AdminRoutes
from .clock import Clock, SystemClock
from .config import SandboxConfig
from .faults import FaultInjector, FaultKind, FaultRule
from .operations import Operations
from .ratelimit import SlidingWindow
from .state import SandboxFault, SandboxState
from .wire import (
    CONTENT_TYPE_11,
    CONTENT_TYPE_12,
    NS_DEVINO,
    OPERATIONS,
    SERVICE_PATH,
    Call,
    SoapVersion,
    charset_of,
    check_schema,
    children,
    envelope,
    fault_body,
    format_datetime,
    read_call,
    strings_of,
    text_of,
    version_for,
    xml_escape,
)

log = get_logger(__name__)


# -- the request log -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request to the SOAP endpoint, as the sandbox saw it.

    :ivar monotonic: :func:`time.monotonic` when it arrived (what the rate limit measures).
    :ivar at: the sandbox clock's time when it arrived.
    :ivar operation: the operation named by the request (``WSDL`` for a WSDL GET), or None
        if none could be told.
    :ivar soap_version: ``1.1``, ``1.2``, or ``""`` (not a SOAP request: a WSDL GET, a wrong
        content type).
    :ivar login: the account it belongs to (the login given, or the session's), when known.
    :ivar status: the HTTP status answered; 0 when the connection was closed without one.
    :ivar fault: the fault text, or the rate-limit text for an HTTP 429/503, else None.
    :ivar destinations: the destination addresses as the request gave them.
    :ivar injected: the kind of fault injected into this request (see :mod:`.faults`), or None.
    """

    monotonic: float
    at: datetime
    operation: str | None
    soap_version: str
    login: str | None
    status: int
    fault: str | None
    destinations: tuple[str, ...] = ()
    injected: FaultKind | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = format_datetime(self.at)
        data["destinations"] = list(self.destinations)
        return data


# -- the sandbox ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Delayed:
    """A processed request's reply, to be given only after an injected delay."""

    response: web.Response
    seconds: float


class Sandbox:
    """Devino's SmsService on a local port, backed by a :class:`SandboxState`.

    :param config: the settings; None is ``SandboxConfig()``.
    :param clock: the time the state runs on; None is the wall clock.

    Use ``async with Sandbox(config) as sandbox:`` (starts on 127.0.0.1 on a free port), or
    :meth:`start` and :meth:`close`. :attr:`url` is the endpoint to give a client.
    """

    def __init__(self, config: SandboxConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config if config is not None else SandboxConfig()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.state = SandboxState(self.config, self.clock)
        self.requests: list[RequestRecord] = []
        self.faults = FaultInjector(self.config.faults)
        """The faults to inject (from ``config.faults``; a test adds its own with
        ``sandbox.faults.add(...)``) and what was injected (``sandbox.faults.injected``)."""
        self._closing = asyncio.Event()
        self._limiter = SlidingWindow()
        self._answering = asyncio.Lock()
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None
        self._wsdl: str | None = None
        self._operations = Operations(self.state)
        self._admin = AdminRoutes(self.state, lambda: self.requests)

    # -- lifecycle -------------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """The aiohttp application (routes in the module docstring)."""
        app = web.Application(client_max_size=8 * 1024 * 1024)
        self._admin.add_to(app)
        app.router.add_route("*", "/{path:.*}", self._service)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Sandbox:
        """Listen on ``host``:``port`` (0 picks a free port)."""
        if self._runner is not None:
            raise RuntimeError("the sandbox is already started")
        self._closing = asyncio.Event()
        runner = web.AppRunner(self.make_app(), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._host = host
        self._port = int(runner.addresses[0][1])
        log.info("sandbox_started", url=self.url)
        return self

    async def close(self) -> None:
        self._closing.set()  # delayed replies stop waiting
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
            log.info("sandbox_closed")

    async def __aenter__(self) -> Sandbox:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def serve_forever(self) -> None:
        """Wait until cancelled (the sandbox must be started)."""
        if self._runner is None:
            raise RuntimeError("start the sandbox first")
        await asyncio.Event().wait()

    @property
    def base_url(self) -> str:
        """``http://host:port`` (a wildcard host is shown as loopback)."""
        if self._port is None:
            raise RuntimeError("the sandbox is not started")
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self._host, self._host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._port}"

    @property
    def url(self) -> str:
        """The SOAP endpoint: ``http://127.0.0.1:<port>/SmsService.asmx``."""
        return self.base_url + SERVICE_PATH

    @property
    def port(self) -> int | None:
        return self._port

    # -- HTTP ------------------------------------------------------------------------------------

    async def _service(self, request: web.Request) -> web.StreamResponse:
        if request.path.lower() != SERVICE_PATH.lower():
            raise web.HTTPNotFound(text="Not found\n")
        if request.method == "POST":
            return await self._soap(request)
        if request.method in ("GET", "HEAD"):
            return self._get(request)
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])

    def _get(self, request: web.Request) -> web.Response:
        if any(key.lower() == "wsdl" for key in request.query):
            response = web.Response(
                body=self._wsdl_for(f"{request.scheme}://{request.host}{SERVICE_PATH}").encode(),
                headers={"Content-Type": CONTENT_TYPE_11},
            )
            status, operation = 200, "WSDL"
        else:
            items = "".join(f"<li>{op}</li>" for op in OPERATIONS)
            response = web.Response(
                text=f"<html><body><h1>SmsService (Devino sandbox)</h1><ul>{items}</ul>"
                f'<p><a href="{SERVICE_PATH}?WSDL">Service description</a></p></body></html>',
                content_type="text/html",
            )
            status, operation = 200, None
        self._record(time.monotonic(), self._now(), operation, "", None, status, None, ())
        return response

    def _wsdl_for(self, location: str) -> str:
        if self._wsdl is None:
            self._wsdl = (
                resources.files(__package__).joinpath("SmsService.wsdl").read_text(encoding="utf-8")
            )
        return re.sub(
            r'(<soap(?:12)?:address\s+location=")[^"]*(")',
            lambda m: m[1] + xml_escape(location) + m[2],
            self._wsdl,
        )

    def _now(self) -> datetime:
        return self.clock.now()

    async def _soap(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        started = time.perf_counter()
        at = self._now()
        body = await request.read()
        # Requests are answered one at a time, each having taken its arrival time first. The
        # rate limit measures arrivals: were several 1000-address requests parsed and checked
        # side by side, a request arriving meanwhile would wait a slice of each before it could
        # take its time, and requests sent a second apart would look closer together.
        async with self._answering:
            answer = await self._answer(request, body, arrived, started, at)
        if isinstance(answer, _Delayed):  # an injected delay holds only its own request
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), answer.seconds)
            return answer.response
        return answer

    async def _answer(
        self, request: web.Request, body: bytes, arrived: float, started: float, at: datetime
    ) -> web.Response | _Delayed:
        version = version_for(request.headers.get("Content-Type", ""))
        if version is None:
            content_type = request.headers.get("Content-Type", "(none)")
            self._record(arrived, at, None, "", None, 415, None, ())
            return web.Response(
                status=415,
                text=f"Unsupported content type {content_type}: use text/xml (SOAP 1.1) or "
                "application/soap+xml (SOAP 1.2).\n",
            )
        charset = charset_of(request.headers["Content-Type"])
        if charset is not None and charset.lower() != "utf-8":
            self._record(arrived, at, None, version, None, 415, None, ())
            return web.Response(
                status=415,
                text=f"Unsupported charset {charset}: the service reads requests in UTF-8 only "
                "(charset=utf-8).\n",
            )
        call: Call | None = None
        read_error: SandboxFault | None = None
        try:
            call = read_call(version, request.headers, body)
            if self.config.strict:
                check_schema(version, body)
        except SandboxFault as fault:
            read_error = fault
        login = self._login_of(call)
        destinations = self._destinations_of(call)
        operation = call.operation if call else None
        limit = self.config.rate_limit
        if limit.enabled and not self._limiter.admit(login, arrived, limit.requests_per_second):
            log.info("sandbox_rate_limited", login=login, operation=operation)
            if limit.response == "fault":
                read_error = SandboxFault.processing(self.config.fault_texts.rate_limited)
            else:
                status = 429 if limit.response == "http_429" else 503
                text = self.config.fault_texts.rate_limited
                self._record(arrived, at, operation, version, login, status, text, destinations)
                return web.Response(
                    status=status,
                    text=text + "\n",
                    headers={"Retry-After": str(math.ceil(limit.retry_after_seconds))},
                )
        injected: tuple[FaultRule, int] | None = None
        if call is not None and read_error is None:
            injected = self.faults.draw(call.operation)
        if injected is not None:
            assert call is not None
            rule, ordinal = injected
            self.faults.record(rule, ordinal, call.operation, login, destinations)
            log.info("sandbox_fault_injected", kind=rule.kind, operation=operation, login=login)
            early = injected_faults.refuse(
                rule,
                request,
                call,
                version,
                self.state,
                lambda status, text: self._record(
                    arrived, at, operation, version, login, status, text, destinations, rule.kind
                ),
            )
            if early is not None:
                return early
        status, payload, fault_text, headers = self._process(call, version, read_error)
        kind = injected[0].kind if injected is not None else None
        answered = 0 if kind == "close_after_processing" else status
        self._record(
            arrived, at, operation, version, login, answered, fault_text, destinations, kind
        )
        log.info(
            "sandbox_request_handled",
            operation=operation,
            soap_version=version,
            login=login,
            status=status,
            fault=fault_text,
            elapsed_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        content_type = CONTENT_TYPE_11 if version == "1.1" else CONTENT_TYPE_12
        response = web.Response(
            status=status, body=payload, headers={"Content-Type": content_type, **headers}
        )
        if injected is not None:
            if injected[0].kind == "delay":  # waited for outside the answering lock
                return _Delayed(response, injected[0].delay_seconds)
            spoiled = injected_faults.spoil(injected[0], request, status, payload, content_type)
            if spoiled is not None:
                return spoiled
        return response

    def _process(
        self, call: Call | None, version: SoapVersion, read_error: SandboxFault | None
    ) -> tuple[int, bytes, str | None, dict[str, str]]:
        """Handle a read request: (HTTP status, reply body, fault text, extra headers)."""
        try:
            if read_error is not None:
                raise read_error
            assert call is not None
            try:
                result = self._operations.answer(call)
            except SandboxFault:
                raise
            except Exception as exc:  # what ASMX does with an unhandled exception
                log.exception("sandbox_internal_error", operation=call.operation)
                raise SandboxFault.processing(type(exc).__name__) from exc
            op = call.operation
            payload = f'<{op}Response xmlns="{NS_DEVINO}">{result}</{op}Response>'
            return 200, envelope(version, payload), None, {}
        except SandboxFault as fault:
            return (
                fault.http_status,
                envelope(version, fault_body(version, fault)),
                fault.reason,
                fault.headers,
            )

    def _record(
        self,
        arrived: float,
        at: datetime,
        operation: str | None,
        version: str,
        login: str | None,
        status: int,
        fault: str | None,
        destinations: tuple[str, ...],
        injected: FaultKind | None = None,
    ) -> None:
        self.requests.append(
            RequestRecord(
                arrived, at, operation, version, login, status, fault, destinations, injected
            )
        )

    def _login_of(self, call: Call | None) -> str | None:
        if call is None:
            return None
        if call.operation == "GetSessionID":
            login = text_of(call.params.get("d:login"))
            return login if login in self.state.accounts else None
        return self.state.login_for_session(text_of(call.params.get("d:sessionID")))

    @staticmethod
    def _destinations_of(call: Call | None) -> tuple[str, ...]:
        if call is None:
            return ()
        params = call.params
        if call.operation == "SendMessage":
            found = strings_of(children(params.get("d:message")).get("d:DestinationAddresses"))
        elif call.operation == "SendMessageByTimeZoneToAddresses":
            found = strings_of(params.get("d:destinationAddresses"))
        elif call.operation == "SendMessageByTimeZone":
            found = [text_of(params.get("d:destinationAddress"))]
        else:
            found = None
        return tuple(d for d in found or () if d is not None)


async def run_sandbox(
    config: SandboxConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 8085,
    *,
    clock: Clock | None = None,
    on_ready: Callable[[Sandbox], object] | None = None,
) -> None:
    """Run a sandbox until cancelled (the CLI's ``notify-devino sandbox``).

    Logs ``sandbox_started`` with the URL; ``on_ready`` is called with the started sandbox
    (the CLI prints :attr:`Sandbox.url` from it).
    """
    sandbox = Sandbox(config, clock=clock)
    await sandbox.start(host, port)
    try:
        if on_ready is not None:
            on_ready(sandbox)
        await sandbox.serve_forever()
    finally:
        await sandbox.close()


__all__ = ["RequestRecord", "Sandbox", "run_sandbox"]
