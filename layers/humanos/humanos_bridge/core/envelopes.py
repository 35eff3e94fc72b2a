"""AWS envelopes around a business event on the request queue: SNS notifications and EventBridge events.

An SNS topic subscribed without raw delivery, and an EventBridge rule with the queue as its target, both put
the business event inside an envelope of their own, and neither can set an SQS message attribute. The
envelope is recognised by its exact shape, never guessed: a business event that merely has a ``detail`` or a
``Message`` field stays a business event. What the mapping sees is the business event; the envelope's own
fields are there too, through ``envelope()`` (its id can be an event id, its detail-type an event type).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from humanos_bridge.core import wire
from humanos_bridge.core.errors import SerialisationError

SNS = "sns"
EVENTBRIDGE = "eventbridge"

#: What every SNS notification delivered to SQS has (the signature fields vary with SignatureVersion).
_SNS_KEYS = frozenset({"Type", "MessageId", "TopicArn", "Message", "Timestamp"})
#: What every EventBridge event has, whatever its source (AWS documents ``account`` and ``resources`` too; the
#: shape is recognised without them, as moto's rule targets deliver it, and ``version`` must be "0").
_EVENTBRIDGE_KEYS = frozenset({"version", "id", "detail-type", "source", "time", "region", "detail"})


class Envelope(NamedTuple):
    kind: str
    #: The business event inside.
    event: Any
    #: What ``envelope()`` gives expressions: the envelope without the event.
    fields: dict[str, Any]
    #: EventBridge: the event's ``source``; SNS: the ``source`` message attribute, if the publisher set one.
    source: str | None
    #: SNS: the topic the notification came from.
    topic_arn: str | None = None


def open_envelope(message: Any) -> Envelope | None:
    """The envelope ``message`` (a parsed queue message body) is, or None for a plain business event."""
    if not isinstance(message, dict):
        return None
    if _is_sns(message):
        return _sns(message)
    if _is_eventbridge(message):
        fields = {key: value for key, value in message.items() if key != "detail"}
        return Envelope(EVENTBRIDGE, message["detail"], fields, message["source"])
    return None


def _is_sns(message: dict[str, Any]) -> bool:
    return (
        message.keys() >= _SNS_KEYS
        and message["Type"] == "Notification"
        and isinstance(message["Message"], str)
        and isinstance(message["TopicArn"], str)
        and message["TopicArn"].startswith("arn:")
    )


def _is_eventbridge(message: dict[str, Any]) -> bool:
    return (
        message.keys() >= _EVENTBRIDGE_KEYS
        and message["version"] == "0"
        and isinstance(message["source"], str)
        and isinstance(message["detail-type"], str)
        and isinstance(message["detail"], dict)
    )


def _sns(message: dict[str, Any]) -> Envelope:
    try:
        event = wire.loads(message["Message"])
    except SerialisationError as exc:
        reason = f"the SNS notification's Message is not a JSON business event: {exc.message}"
        raise SerialisationError(reason) from None
    found = message.get("MessageAttributes")
    attributes: dict[str, Any] = found if isinstance(found, dict) else {}
    values = {
        name: attribute.get("Value")
        for name, attribute in attributes.items()
        if isinstance(attribute, dict) and isinstance(attribute.get("Value"), str)
    }
    # The notification's own fields, without its signature material (nothing a mapping needs).
    kept = ("Type", "MessageId", "TopicArn", "Subject", "Timestamp")
    fields: dict[str, Any] = {key: message[key] for key in kept if key in message}
    fields["MessageAttributes"] = values
    source = values.get("source")
    return Envelope(SNS, event, fields, source, message["TopicArn"])
