"""The error tree of notify-devino.

One root, :class:`NotifyError`, and a shallow tree under it. Data lives on attributes, not only in
the message, so callers can branch on it without parsing text::

    NotifyError
    ├── ConfigError                 bad YAML, a missing secret, a channel no plugin provides
    ├── PluginError                 a plugin registered something malformed or conflicting
    └── ChannelError                anything a channel met while doing its job
        ├── InvalidInputError       rejected before any request (bad number, text too long, ...)
        ├── UnsupportedOperationError
        ├── TransportError          the request did not complete
        │   ├── RequestTimeoutError
        │   └── ConnectionFailedError
        ├── ProviderFaultError      the provider answered with a fault
        │   ├── AuthenticationError
        │   ├── SessionExpiredError
        │   ├── InsufficientFundsError
        │   └── RateLimitedError
        └── ParseError              the provider's reply could not be understood
"""

from __future__ import annotations


class NotifyError(Exception):
    """Root of every error raised by notify-devino and its plugins."""


class ConfigError(NotifyError):
    """The configuration is malformed, incomplete or names something that does not exist.

    :ivar path: the YAML path of the offending value (``channels.sms.settings.login``) or None.
    :ivar line: the 1-based line of that value in the YAML file, when known.
    :ivar source: the file the configuration was read from, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        source: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.source = source
        where = ""
        if source is not None:
            where = source + (f":{line}" if line is not None else "") + ": "
        elif line is not None:
            where = f"line {line}: "
        at = f"{path}: " if path else ""
        super().__init__(f"{where}{at}{message}")
        self.message = message


class PluginError(NotifyError):
    """A plugin registered something malformed, or two plugins claim the same name.

    :ivar plugins: the names of the plugins involved, offender last.
    """

    def __init__(self, message: str, *, plugins: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.plugins = plugins


class ChannelError(NotifyError):
    """A channel failed to do what was asked.

    :ivar channel: the configured channel name (``sms``), when known.
    """

    channel: str | None = None

    def __init__(self, message: str, *, channel: str | None = None) -> None:
        super().__init__(message)
        self.channel = channel

    def is_transient(self) -> bool:
        """Whether repeating the same request later may succeed.

        The default is False; transport errors and some provider faults override it.
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
    ) -> None:
        text = message if expected is None else f"{message}; expected {expected}"
        super().__init__(text, channel=channel)
        self.field = field
        self.value = value
        self.expected = expected
        self.reason = reason


class UnsupportedOperationError(ChannelError):
    """The channel does not offer this operation (an email channel has no balance)."""


class TransportError(ChannelError):
    """The request did not complete: no reply, or no usable HTTP reply.

    :ivar request_sent: True when the request may have reached the provider. A send whose
        request may have been processed must not be repeated blindly.
    """

    def __init__(self, message: str, *, request_sent: bool, channel: str | None = None) -> None:
        super().__init__(message, channel=channel)
        self.request_sent = request_sent

    def is_transient(self) -> bool:
        return True


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
    ) -> None:
        super().__init__(message, channel=channel)
        self.code = code
        self.text = text
        self.http_status = http_status
        self.raw = raw

    def is_transient(self) -> bool:
        return self.transient


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


class ParseError(ChannelError):
    """The provider's reply could not be understood (not XML, wrong shape, bad value).

    :ivar body: the start of the offending body, for diagnosis.
    """

    def __init__(
        self, message: str, *, body: str | None = None, channel: str | None = None
    ) -> None:
        super().__init__(message, channel=channel)
        self.body = body
