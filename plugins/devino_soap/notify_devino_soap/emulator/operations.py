"""The service's operations: a read :class:`~.wire.Call` becomes calls on the
:class:`~.state.SandboxState`, and its result the XML inside ``<OperationResponse>``.

This is moto's ``responses`` for the sandbox: it reads each operation's parameters the way
ASMX's reader does (absent, empty or nil is None; a value its type cannot hold is a read error)
and writes each result element in the WSDL's order. The rules of the service are the state's
(:mod:`.state`, :mod:`.rules`); the envelope around a result is the wire's (:mod:`.wire`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .config import SandboxConfig
from .state import (
    IncomingRecord,
    MessageStateRecord,
    SandboxFault,
    SandboxState,
    StatisticsRecord,
)
from .wire import (
    Call,
    children,
    element,
    is_nil,
    parse_datetime,
    read_fault,
    string_array,
    strings_of,
    text_of,
)


class Operations:
    """Answers each operation of a :class:`Call` from a :class:`SandboxState`.

    :meth:`answer` returns the result XML or raises :class:`SandboxFault`.
    """

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._handlers: dict[str, Callable[[dict[str, Any]], str]] = {
            "GetSessionID": self._get_session_id,
            "GetBalance": self._get_balance,
            "SendMessage": self._send_message,
            "SendMessageByTimeZone": self._send_by_time_zone,
            "SendMessageByTimeZoneToAddresses": self._send_by_time_zone_to_addresses,
            "GetMessageState": self._get_message_state,
            "GetStatistics": self._get_statistics,
            "GetIncomingMessages": self._get_incoming_messages,
        }

    @property
    def config(self) -> SandboxConfig:
        return self.state.config

    def answer(self, call: Call) -> str:
        """The XML inside ``<{operation}Response>``.

        :raise SandboxFault: the service's refusal, as the state or a parameter gives it.
        """
        return self._handlers[call.operation](call.params)

    # -- parameters ------------------------------------------------------------------------------

    def _required(self, params: dict[str, Any], name: str) -> str:
        value = text_of(params.get(f"d:{name}"))
        if value is None:
            raise SandboxFault.processing(self.config.fault_texts.argument_null, name)
        return value

    def _datetime(
        self, params: dict[str, Any], name: str, *, required: bool = True
    ) -> datetime | None:
        raw = text_of(params.get(f"d:{name}"))
        if raw is None:
            if required:
                raise SandboxFault.processing(self.config.fault_texts.argument_null, name)
            return None
        try:
            return parse_datetime(raw)
        except ValueError:
            raise read_fault(f"The string '{raw}' is not a valid AllXsd value.") from None

    @staticmethod
    def _integer(raw: str | None, bits: int) -> int | None:
        if raw is None:
            return None
        text = raw.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise read_fault("Input string was not in a correct format.")
        value = int(text)
        if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            kind = "an Int64" if bits == 64 else "an Int32"
            raise read_fault(f"Value was either too large or too small for {kind}.")
        return value

    @staticmethod
    def _boolean(raw: str | None) -> bool | None:
        if raw is None:
            return None
        value = raw.strip()
        if value not in ("true", "false", "1", "0"):
            raise read_fault(f"The string '{raw}' is not a valid Boolean value.")
        return value in ("true", "1")

    # -- operations (each returns the XML inside <OpResponse>) -----------------------------------

    def _get_session_id(self, params: dict[str, Any]) -> str:
        session_id = self.state.login(
            text_of(params.get("d:login")), text_of(params.get("d:password"))
        )
        return element("GetSessionIDResult", session_id)

    def _get_balance(self, params: dict[str, Any]) -> str:
        balance = self.state.balance(text_of(params.get("d:sessionID")))
        return element("GetBalanceResult", balance)

    def _send_message(self, params: dict[str, Any]) -> str:
        session_id = text_of(params.get("d:sessionID"))
        self.state.account_for_session(session_id)
        message_node = params.get("d:message")
        if message_node is None or is_nil(message_node):
            raise SandboxFault.processing(self.config.fault_texts.argument_null, "message")
        message = children(message_node)
        delay = self._datetime(message, "DelayUntilUtc", required=False)
        validity = self._integer(text_of(message.get("d:Validity")), 32)
        self._boolean(text_of(message.get("d:ReceiptRequested")))
        ids = self.state.send(
            session_id,
            text_of(message.get("d:SourceAddress")),
            strings_of(message.get("d:DestinationAddresses")),
            text_of(message.get("d:Data")),
            delay_until_utc=delay,
            validity_minutes=validity,
        )
        return string_array("SendMessageResult", ids)

    def _send_by_time_zone_common(
        self, params: dict[str, Any], destinations: list[str | None] | None
    ) -> list[int]:
        session_id = text_of(params.get("d:sessionID"))
        self.state.account_for_session(session_id)
        send_date = self._datetime(params, "sendDate")
        validity = self._integer(text_of(params.get("d:validity")), 32)
        return self.state.send(
            session_id,
            text_of(params.get("d:sourceAddress")),
            destinations,
            text_of(params.get("d:data")),
            local_send_time=send_date,
            validity_minutes=validity,
        )

    def _send_by_time_zone(self, params: dict[str, Any]) -> str:
        destination = text_of(params.get("d:destinationAddress"))
        if destination is None:
            self.state.account_for_session(text_of(params.get("d:sessionID")))
            raise SandboxFault.processing(
                self.config.fault_texts.argument_null, "destinationAddress"
            )
        ids = self._send_by_time_zone_common(params, [destination])
        return string_array("SendMessageByTimeZoneResult", ids)

    def _send_by_time_zone_to_addresses(self, params: dict[str, Any]) -> str:
        ids = self._send_by_time_zone_common(
            params, strings_of(params.get("d:destinationAddresses"))
        )
        return string_array("SendMessageByTimeZoneToAddressesResult", ids)

    def _get_message_state(self, params: dict[str, Any]) -> str:
        session_id = text_of(params.get("d:sessionID"))
        self.state.account_for_session(session_id)
        message_id = self._integer(self._required(params, "messageID"), 64)
        assert message_id is not None
        return state_xml(self.state.message_state(session_id, message_id))

    def _get_statistics(self, params: dict[str, Any]) -> str:
        session_id = text_of(params.get("d:sessionID"))
        self.state.account_for_session(session_id)
        start = self._datetime(params, "startDateTime")
        end = self._datetime(params, "endDateTime")
        assert start is not None
        assert end is not None
        return statistics_xml(self.state.statistics(session_id, start, end))

    def _get_incoming_messages(self, params: dict[str, Any]) -> str:
        session_id = text_of(params.get("d:sessionID"))
        self.state.account_for_session(session_id)
        high = self._datetime(params, "maxDateUTC")
        low = self._datetime(params, "minDateUTC")
        assert high is not None
        assert low is not None
        return incoming_xml(self.state.incoming(session_id, low, high))


# -- result elements, in the WSDL's order ----------------------------------------------------


def state_xml(record: MessageStateRecord) -> str:
    return (
        "<GetMessageStateResult>"
        + element("State", record.state)
        + element("CreationDateUtc", record.creation_date_utc)
        + element("SubmittedDateUtc", record.submitted_date_utc)
        + element("ReportedDateUtc", record.reported_date_utc)
        + element("TimeStampUtc", record.time_stamp_utc)
        + element("StateDescription", record.state_description)
        + element("Price", record.price)
        + "</GetMessageStateResult>"
    )


def statistics_xml(stats: StatisticsRecord) -> str:
    fields = (
        ("Sent", stats.sent),
        ("Delivered", stats.delivered),
        ("Errors", stats.errors),
        ("InProcess", stats.in_process),
        ("Expired", stats.expired),
        ("Rejected", stats.rejected),
        ("Optimized", stats.optimized),
        ("Tarificated", stats.tarificated),
        ("Total", stats.total),
        ("TotalWithErrors", stats.total_with_errors),
        ("DeliveryRatio", stats.delivery_ratio),
    )
    return (
        "<GetStatisticsResult>"
        + "".join(element(name, value) for name, value in fields)
        + "</GetStatisticsResult>"
    )


def incoming_xml(records: list[IncomingRecord]) -> str:
    if not records:
        return "<GetIncomingMessagesResult />"
    items = "".join(
        "<IncomingMessage>"
        + element("Data", r.data)
        + element("SourceAddress", r.source_address)
        + element("DestinationAddress", r.destination_address)
        + element("CreatedDateUtc", r.created_date_utc)
        + "</IncomingMessage>"
        for r in records
    )
    return f"<GetIncomingMessagesResult>{items}</GetIncomingMessagesResult>"
