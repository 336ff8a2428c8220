"""The error tree of notify-devino.

One root, :class:`NotifyError`, and a shallow tree under it. Data lives on attributes, not only in
the message, so callers can branch on it without parsing text::

    NotifyError
    ├── ConfigError                 bad YAML, a missing secret, a channel no plugin provides
    ├── PluginError                 a plugin registered something malformed or conflicting
    ├── DispatcherStateError        a dispatcher used outside its life (closed, another loop)
    ├── DepartureRefused            the caller of a send could not record that it leaves
    └── ChannelError                anything a channel met while doing its job
        ├── InvalidInputError       rejected before any request (bad number, text too long, ...)
        │   └── UnknownChannelError a call names a channel the dispatcher does not run
        ├── UnsupportedOperationError
        ├── UnexpectedError         a plugin raised outside this tree (a bug) after it may have sent
        ├── TransportError          the request did not complete
        │   ├── RequestTimeoutError
        │   └── ConnectionFailedError
        ├── ProviderFaultError      the provider answered with a fault
        │   ├── AuthenticationError
        │   ├── SessionExpiredError
        │   ├── InsufficientFundsError
        │   ├── RateLimitedError
        │   └── TemporaryFaultError
        └── ParseError              the provider's reply could not be understood

Two questions every channel error answers, for retries and for the outcome of a send:

- :meth:`ChannelError.is_transient`: may the same request succeed if made again later?
- :meth:`ChannelError.may_have_been_processed`: may the provider have acted on the request
  (an SMS out and paid for) although the caller got this error instead of an answer?

:func:`send_outcome_of` turns the second answer into the outcome of a send's recipients; every
channel uses it, so *failed* and *unknown* mean the same on every channel.

Every attribute is set by the constructor: code that meets an error never edits it.
"""

from __future__ import annotations

from collections.abc import Collection

from .types import SendOutcome


class NotifyError(Exception):
    """Root of every error raised by notify-devino and its plugins."""


class ConfigError(NotifyError):
    """The configuration is malformed, incomplete or names something that does not exist.

    :ivar path: the YAML path of the offending value (``channels.sms.settings.login``) or None.
    :ivar line: the 1-based line of that value in the YAML file, when known.
    :ivar source: the file the configuration was read from, when known.

    The message never quotes a secret: registered secrets are masked in it.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        source: str | None = None,
        located: bool = False,
    ) -> None:
        """:param located: the message already says where (a list of problems, each with its
        line): only the file is put before it; ``path`` and ``line`` are the first problem's."""
        from .logconfig import redact  # here: importing errors.py stays free of structlog

        message = redact(message)
        self.path = path
        self.line = line
        self.source = source
        where = ""
        if source is not None:
            where = source + (f":{line}" if line is not None and not located else "") + ": "
        elif line is not None and not located:
            where = f"line {line}: "
        at = f"{path}: " if path and not located else ""
        super().__init__(f"{where}{at}{message}")
        self.message = message


class PluginError(NotifyError):
    """A plugin registered something malformed, or two plugins claim the same name.

    :ivar plugins: the names of the plugins involved, offender last.
    """

    def __init__(self, message: str, *, plugins: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.plugins = plugins


class DispatcherStateError(NotifyError, RuntimeError):
    """A dispatcher was used where its lifecycle does not allow it: before it started, after
    it began to close, started a second time, or from an event loop other than the one it
    started in. Nothing was sent.

    :ivar state: the dispatcher's state at the time (``new``, ``closing``, ...).
    """

    def __init__(self, message: str, *, state: str) -> None:
        super().__init__(message)
        self.state = state


class DepartureRefused(NotifyError):
    """The caller of a send could not record that a request is leaving (see
    :mod:`notify_devino.departure`): nothing was sent. A plugin lets it through unchanged, so
    the caller knows the recipients are still unsent; it never becomes an outcome."""


class ChannelError(NotifyError):
    """A channel failed to do what was asked.

    :ivar channel: the configured channel name (``sms``), when known.
    :ivar operation: the provider operation whose request failed (``SendMessage``), when known.
        A channel sets it so a caller can tell a failed login before a send from the send.
    """

    def __init__(
        self, message: str, *, channel: str | None = None, operation: str | None = None
    ) -> None:
        super().__init__(message)
        self.channel = channel
        self.operation = operation

    def is_transient(self) -> bool:
        """Whether repeating the same request later may succeed.

        The default is False; transport errors, unreadable replies and some provider faults
        override it.
        """
        return False

    def may_have_been_processed(self) -> bool:
        """Whether the provider may have acted on the request despite this error.

        False means the error proves the request was not processed (it never left, or the
        provider answered that it refused it), so sending it again cannot duplicate anything.
        The default is False; errors that can follow a request that left override it.
        """
        return False


class InvalidInputError(ChannelError, ValueError):
    """The input breaks a rule of the channel; nothing was sent.

    :ivar field: which input was wrong (``recipient``, ``text``, ``sender``, ...).
    :ivar value: the offending value (never a secret).
    :ivar expected: what would have been accepted, in words.
    :ivar reason: a short code for the problem, for programs (a bad number: ``empty``,
        ``not_digits``, ``too_short``, ``too_long``, ``invalid_country_code``,
        ``invalid_length``, ``unassigned``), when the channel gives one.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str,
        value: object = None,
        expected: str | None = None,
        channel: str | None = None,
        reason: str | None = None,
        operation: str | None = None,
    ) -> None:
        text = message if expected is None else f"{message}; expected {expected}"
        super().__init__(text, channel=channel, operation=operation)
        self.field = field
        self.value = value
        self.expected = expected
        self.reason = reason


class UnknownChannelError(InvalidInputError):
    """A call names a channel the dispatcher does not run, or names none where no channel is
    the default (``field`` is ``channel``, ``value`` the name given, ``expected`` the names
    configured). Nothing was sent."""

    def __init__(self, message: str, *, value: str | None, expected: str) -> None:
        super().__init__(message, field="channel", value=value, expected=expected)


class UnsupportedOperationError(ChannelError):
    """The channel does not offer this operation (an email channel has no balance)."""


class UnexpectedError(ChannelError):
    """A channel's code raised something outside this tree (a bug in a plugin) while it was
    sending, or answered what the send contract does not allow: the request may have been
    processed, so the outcome is *unknown*.

    :ivar error_type: the name of the class of what was raised (``TypeError``) or answered.
    :ivar cause: the exception raised, when there was one (also the ``__cause__``).
    """

    def __init__(
        self,
        message: str,
        *,
        error_type: str,
        cause: BaseException | None = None,
        channel: str | None = None,
    ) -> None:
        super().__init__(message, channel=channel)
        self.error_type = error_type
        self.cause = cause
        self.__cause__ = cause

    @classmethod
    def of(
        cls, exc: BaseException, *, channel: str | None = None, where: str | None = None
    ) -> UnexpectedError:
        """The error for ``exc`` raised in a send: ``unexpected TypeError: ...``, or, with
        ``where``, ``<where> raised TypeError: ...``. The text masks every registered secret
        (:func:`notify_devino.logconfig.redact`): a plugin's exception may quote a password."""
        from .logconfig import redact  # structlog is imported only once an error needs it

        what = redact(f"{type(exc).__name__}: {exc}")
        message = f"{where} raised {what}" if where else f"unexpected {what}"
        return cls(message, error_type=type(exc).__name__, cause=exc, channel=channel)

    def may_have_been_processed(self) -> bool:
        return True


class TransportError(ChannelError):
    """The request did not complete: no reply, or no usable HTTP reply.

    :ivar request_sent: True when the request may have reached the provider. A send whose
        request may have been processed must not be repeated blindly.
    """

    def __init__(
        self,
        message: str,
        *,
        request_sent: bool,
        channel: str | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message, channel=channel, operation=operation)
        self.request_sent = request_sent

    def is_transient(self) -> bool:
        return True

    def may_have_been_processed(self) -> bool:
        return self.request_sent


class RequestTimeoutError(TransportError):
    """The provider did not answer within the configured timeout."""


class ConnectionFailedError(TransportError):
    """The connection could not be made or broke before a reply was read."""


class ProviderFaultError(ChannelError):
    """The provider answered with a fault.

    :ivar code: the fault code as the provider gives it (``soap:Receiver``).
    :ivar text: the fault's text, verbatim.
    :ivar http_status: the HTTP status of the reply.
    :ivar raw: the raw reply body, for diagnosis.
    :ivar transient: whether the same request may succeed later; each class has its default
        (a rate limit is transient, a refused login is not), which ``transient=`` overrides
        (an SMTP 4xx reply, a webhook receiver's 5xx).

    A reply with a fault (a ``code`` or a ``text``) is the provider's own answer: it refused the
    request, so nothing was processed. An HTTP 5xx without one (a proxy's 502, a gateway's 504,
    a server's error page) says nothing of whether the provider processed the request, and
    repeating it may well succeed.
    """

    transient = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        text: str | None = None,
        http_status: int | None = None,
        raw: str | None = None,
        channel: str | None = None,
        operation: str | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(message, channel=channel, operation=operation)
        self.code = code
        self.text = text
        self.http_status = http_status
        self.raw = raw
        if transient is not None:
            self.transient = transient

    def _bare_server_error(self) -> bool:
        return self.code is None and self.text is None and (self.http_status or 500) >= 500

    def is_transient(self) -> bool:
        return self.transient or self._bare_server_error()

    def may_have_been_processed(self) -> bool:
        return self._bare_server_error()


class AuthenticationError(ProviderFaultError):
    """The provider refused the credentials."""


class SessionExpiredError(ProviderFaultError):
    """The provider says the session is invalid or expired; a new login may fix it."""


class InsufficientFundsError(ProviderFaultError):
    """The account's balance does not cover the send."""


class RateLimitedError(ProviderFaultError):
    """The provider refused the request for exceeding its rate limit.

    :ivar retry_after: seconds the provider asked to wait, when it said so.
    """

    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after

    def may_have_been_processed(self) -> bool:
        return False  # a refusal, whatever carried it (a fault, HTTP 429 or 503)


class TemporaryFaultError(ProviderFaultError):
    """The provider refused the request with a fault it marks as temporary (``Service is
    temporarily unavailable, try again later``): nothing was processed, and the same request
    may succeed later."""

    transient = True


class ParseError(ChannelError):
    """The provider's reply could not be understood (not XML, wrong shape, bad value).

    A reply came back, so the request reached the provider and may have been processed.

    :ivar body: the start of the offending body, for diagnosis.
    :ivar transient: True when the bytes themselves were unreadable (empty, cut short, not
        XML: a truncated transfer or an intermediary's error page), which a second try may not
        meet; False when a well-formed reply had the wrong shape or was refused as hostile,
        which a second try would meet again.
    """

    def __init__(
        self,
        message: str,
        *,
        body: str | None = None,
        channel: str | None = None,
        operation: str | None = None,
        transient: bool = False,
    ) -> None:
        super().__init__(message, channel=channel, operation=operation)
        self.body = body
        self.transient = transient

    def is_transient(self) -> bool:
        return self.transient

    def may_have_been_processed(self) -> bool:
        return True


def send_outcome_of(
    error: ChannelError, *, send_operations: Collection[str] | None = None
) -> SendOutcome:
    """The outcome of a send's recipients when the send ended in ``error``: the one rule every
    channel uses.

    *Unknown* when the provider may have processed the request that carries the message
    (:meth:`~ChannelError.may_have_been_processed`: no answer after the request was written, a
    reply that could not be read, a bare HTTP 5xx); sending again may deliver twice. *Failed*
    when the error proves it did not: the request never left, or the provider refused it.

    :param send_operations: the operations whose requests carry the message, for a channel
        whose send makes other requests first (a login): an error whose ``operation`` is
        another one came before the message left, so it failed.
    """
    if (
        send_operations is not None
        and error.operation is not None
        and error.operation not in send_operations
    ):
        return SendOutcome.FAILED
    return SendOutcome.UNKNOWN if error.may_have_been_processed() else SendOutcome.FAILED
