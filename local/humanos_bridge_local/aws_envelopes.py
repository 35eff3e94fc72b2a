"""A business event as AWS would put it on the request queue: raw, in an EventBridge event, in an SNS notification.

For ``humanos-bridge send --via`` and the demo: the queue message is what the EventBridge rule or the SNS
subscription of the template would deliver, so the dispatcher's unwrapping and source matching are tried for
real, with no AWS account.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from humanos_bridge.core.errors import ConfigError
from humanos_bridge.core.queue_messages import string_attributes
from humanos_bridge.mapping import MappingConfig

VIAS = ("sqs", "eventbridge", "sns")
ACCOUNT = "123456789012"


def queue_message(
    mapping: MappingConfig, source: str, body: bytes, via: str, *, fifo: bool = False, region: str = "eu-west-1"
) -> dict[str, Any]:
    """``send_message`` arguments (without the queue URL) for ``body`` from ``source``, delivered ``via``.

    ``fifo``: to a FIFO queue, with the group AWS would give it: the template's EventBridge target uses the group
    ``eventbridge``, a FIFO SNS topic the publisher's (here the source), a plain sender the source's mapping.
    """
    message = _message(mapping, source, body, via, region)
    if fifo:
        envelope = json.loads(message["MessageBody"]) if via != "sqs" else None
        group = "eventbridge" if via == "eventbridge" else source
        if via == "sqs":
            group = mapping.message_group(source, json.loads(body))
        dedup = str(envelope.get("id") or envelope.get("MessageId")) if envelope else hashlib.sha256(body).hexdigest()
        message.update(MessageGroupId=group, MessageDeduplicationId=dedup)
    return message


def _message(mapping: MappingConfig, source: str, body: bytes, via: str, region: str) -> dict[str, Any]:
    match = mapping.source(source).match
    now = datetime.now(UTC)
    if via == "sqs":
        return {"MessageBody": body.decode("utf-8"), "MessageAttributes": string_attributes({"source": source})}
    if via == "eventbridge":
        if match is None or not match.eventbridge_sources:
            raise ConfigError(
                f"source {source} has no match.eventBridgeSource in the mapping, so an EventBridge event would not "
                "find it; add one (and deploy with EventBridgeSources)"
            )
        event = json.loads(body)
        envelope = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": mapping.event_identity(source, event)[0],
            "source": match.eventbridge_sources[0],
            "account": ACCOUNT,
            "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region,
            "resources": [],
            "detail": event,
        }
        return {"MessageBody": json.dumps(envelope)}
    if via == "sns":
        # Named by the topic when the mapping matches one, else by a `source` message attribute on the notification.
        topics = match.sns_topics if match is not None else ()
        topic = topics[0] if topics else f"arn:aws:sns:{region}:{ACCOUNT}:{source}-events"
        notification: dict[str, Any] = {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic,
            "Message": body.decode("utf-8"),
            "Timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "SignatureVersion": "1",
        }
        if not topics:
            notification["MessageAttributes"] = {"source": {"Type": "String", "Value": source}}
        return {"MessageBody": json.dumps(notification)}
    raise ConfigError(f"--via {via}: choose one of {', '.join(VIAS)}")
