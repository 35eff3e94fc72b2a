"""The per-event path: a compiled mapping turns one business event into a :class:`MappedRequest`.

Nothing here parses files or compiles expressions; that happened once, at load. Only
MappingError (and its subclasses) and EventIgnored leave :meth:`MappingConfig.map_event`,
whatever the event holds, and no message quotes an event value.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from humanos_bridge.core import wire
from humanos_bridge.core.body_validation import json_type, validate_body
from humanos_bridge.core.envelopes import EVENTBRIDGE, SNS, Envelope
from humanos_bridge.core.errors import (
    EventIgnored,
    InvalidBodyError,
    MappingError,
    SerialisationError,
    UnknownSourceError,
)
from humanos_bridge.core.masking import mask_text
from humanos_bridge.mapping.expressions import evaluating
from humanos_bridge.mapping.fan_out import item_key, items_of
from humanos_bridge.mapping.model import MappedRequest, RuleConfig, SourceConfig
from humanos_bridge.mapping.providers import item_id as provider_item_id
from humanos_bridge.mapping.templates import OMIT, Node, child_path, render

#: Idempotency keys travel as the ``Idempotency-Key`` header (ASCII), as the DynamoDB idempotency
#: record's key and possibly as an SQS FIFO MessageDeduplicationId (at most 128 printable ASCII
#: characters). Keys that would not fit are replaced by a readable prefix plus the SHA-256 of the
#: whole key: still unique per event, still stable across redeliveries.
MAX_KEY_LENGTH = 128
_KEY_SAFE = re.compile(r"[\x21-\x7e]+")
_KEY_UNSAFE_CHAR = re.compile(r"[^\x21-\x7e]")


@dataclass(frozen=True)
class MappingConfig:
    """A loaded, validated and compiled mapping file. Build it with ``load_mapping``."""

    api_version: str
    #: The file it came from, for messages.
    file: str
    _sources: dict[str, SourceConfig]

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self._sources)

    def source(self, name: str) -> SourceConfig:
        """The source called ``name``; UnknownSourceError when the file has none."""
        found = self._sources.get(name) if isinstance(name, str) else None
        if found is None:
            raise UnknownSourceError(
                f"unknown source {_show(name)}; the mapping file {self.file} defines {', '.join(self.sources)}",
                details={"reason": "unknown_source"},
            )
        return found

    def resolve_source(self, attribute: str | None, envelope: Envelope | None, event: Any) -> str | None:
        """The source a queued event belongs to, in this order: its ``source`` message attribute; its envelope
        (an SNS ``source`` message attribute, then the source whose ``match`` names the EventBridge source or the
        SNS topic); the one source whose ``match.when`` holds for it. None: nothing names one."""
        if attribute:
            return attribute
        if envelope is not None:
            if envelope.kind == SNS and envelope.source:
                return envelope.source
            for name, config in self._sources.items():
                match = config.match
                if match is None:
                    continue
                if envelope.kind == EVENTBRIDGE and envelope.source in match.eventbridge_sources:
                    return name
                if envelope.kind == SNS and envelope.topic_arn in match.sns_topics:
                    return name
        for name, config in self._sources.items():
            if config.match is not None and config.match.when is not None:
                where = f"sources.{name}.match.when"
                with evaluating(event, None, envelope.fields if envelope else None):
                    if config.match.when.is_true(event, where=where):
                        return name
        return None

    def message_group(self, source: str, event: Any, headers: Mapping[str, str] | None = None) -> str:
        """The FIFO message group of ``event``: the source's ``messageGroupId``, or the source itself."""
        config = self.source(source)
        if config.message_group_id is None:
            return config.name
        where = f"sources.{config.name}.messageGroupId"
        with evaluating(event, headers):
            found = config.message_group_id.search(event, where=where)
        if found is None or found == "":
            return config.name  # events without a group value keep the source's order
        if isinstance(found, bool) or not isinstance(found, (str, int)):
            raise MappingError(
                f"{where}: `{config.message_group_id.text}` found a {json_type(found)}; a message group must be "
                "a string or an integer",
                path=where,
                details={"reason": "message_group_invalid"},
            )
        return bound_key(str(found))  # SQS: at most 128 printable ASCII characters

    def event_identity(
        self,
        source: str,
        event: Any,
        headers: Mapping[str, str] | None = None,
        envelope: Mapping[str, Any] | None = None,
    ) -> tuple[str, str]:
        """``(event_type, event_id)`` of ``event`` without mapping it (for logs and attributes)."""
        config = self.source(source)
        with evaluating(event, headers, envelope):
            return event_type_of(config, event), event_id_of(config, event)

    def route(
        self,
        source: str,
        event: Any,
        headers: Mapping[str, str] | None = None,
        envelope: Mapping[str, Any] | None = None,
    ) -> Route:
        """Where ``event`` goes, without building its bodies: its type, its id and the rule that takes it.

        What :meth:`map_requests` checks first, and raises as it does (EventIgnored, MappingError); the bodies
        may still be refused. The ingest route of a source that parks what its mapping refuses stops here.
        """
        config = self.source(source)
        with evaluating(event, headers, envelope):
            return _route(config, event)

    def event_type(
        self,
        source: str,
        event: Any,
        headers: Mapping[str, str] | None = None,
        envelope: Mapping[str, Any] | None = None,
    ) -> str:
        """``event``'s type as ``source`` reads it; MappingError when it reads none."""
        config = self.source(source)
        with evaluating(event, headers, envelope):
            return event_type_of(config, event)

    def map_event(
        self,
        source: str,
        event: Any,
        headers: Mapping[str, str] | None = None,
        envelope: Mapping[str, Any] | None = None,
    ) -> MappedRequest:
        """The one request ``event`` from ``source`` becomes (for rules without ``forEach``).

        Raises as :meth:`map_requests` does, and MappingError when the event makes several requests.
        """
        requests = self.map_requests(source, event, headers, envelope)
        if len(requests) != 1:
            raise MappingError(
                f"rule {requests[0].rule} fans out to {len(requests)} requests; map the event with map_requests",
                details={"reason": "fan_out"},
            )
        return requests[0]

    def map_requests(
        self,
        source: str,
        event: Any,
        headers: Mapping[str, str] | None = None,
        envelope: Mapping[str, Any] | None = None,
    ) -> tuple[MappedRequest, ...]:
        """Every request ``event`` from ``source`` becomes: one, or one per item of a ``forEach`` rule.

        ``headers``: the request headers the source keeps (``kept_headers``), for ``header()``; ``envelope``: the
        fields of the SNS or EventBridge envelope the event came in, for ``envelope()``. Every body is
        built and checked before any is returned, so one bad item stops the whole event
        before anything is sent: no partial side effect.

        Raises
        ------
        UnknownSourceError
            ``source`` is not in the file.
        EventIgnored
            No rule takes the event and the source says ``unmatched: "ignore"``; or the ``forEach`` array is
            empty (nothing to ask).
        MappingError
            Anything else that stops the event becoming valid bodies (InvalidBodyError for a body itself).
        """
        config = self.source(source)
        with evaluating(event, headers, envelope):
            event_type, event_id, rule = _route(config, event)
            identity = _Identity(config, rule, event_type, event_id, self.api_version)
            if rule.for_each is None:
                return (_build(identity, event, None),)
            items = items_of(rule, event)
            if not items:
                raise EventIgnored(
                    f"source {config.name}: rule {rule.name}: forEach `{rule.for_each.text}` found no items; "
                    "nothing to ask",
                    details={"reason": "no_items", "source": config.name},
                )
            return _distinct([_build(identity, item, index) for index, item in enumerate(items)], rule)


class Route(NamedTuple):
    """Where an event goes (:meth:`MappingConfig.route`)."""

    event_type: str
    event_id: str
    rule: RuleConfig


def _route(config: SourceConfig, event: Any) -> Route:
    event_type = event_type_of(config, event)
    rules = config.rules.get(event_type)
    if rules is None:
        raise _unmatched(config, event_type, "has no rules")
    event_id = event_id_of(config, event)
    rule = _choose(rules, event)
    if rule is None:
        raise _unmatched(config, event_type, f"has {len(rules)} rule(s) but no `when` matched")
    return Route(event_type, event_id, rule)


class _Identity(NamedTuple):
    """What every request of one event shares."""

    config: SourceConfig
    rule: RuleConfig
    event_type: str
    event_id: str
    api_version: str


def _build(identity: _Identity, scope: Any, item: int | None) -> MappedRequest:
    """One request. ``scope`` is what the template reads: the event, or forEach's item number ``item``."""
    config, rule = identity.config, identity.rule
    try:
        body = render(rule.request, scope)
        idempotency_key = _idempotency_key(config, rule, scope, identity.event_id, item)
        internal_id = _internal_id(rule, scope, idempotency_key)
        if internal_id is not None:
            body["internalId"] = internal_id
        body = validate_body(body, identity.api_version)
    except MappingError as exc:
        if item is not None:  # which item, as the file counts them; the message quotes no value
            exc.message = f"forEach item {item}: {exc.message}"
            exc.args = (exc.message,)
            exc.details.update(item=item)
        if isinstance(exc, InvalidBodyError):
            exc.details.update(source=config.name, rule=rule.name)
        raise
    return MappedRequest(
        source=config.name,
        event_type=identity.event_type,
        event_id=identity.event_id,
        rule=rule.name,
        idempotency_key=idempotency_key,
        internal_id=internal_id,
        body=body,
    )


def _distinct(requests: list[MappedRequest], rule: RuleConfig) -> tuple[MappedRequest, ...]:
    """Equal items are one request; two items with one key but different bodies are a mapping error."""
    by_key: dict[str, MappedRequest] = {}
    for index, request in enumerate(requests):
        first = by_key.setdefault(request.idempotency_key, request)
        if first.body != request.body:
            where = f"{rule.path}.idempotencyKey"
            raise MappingError(
                f"{where}: forEach item {index} gives the same idempotency key as an earlier item but another "
                "body; derive the key from something unique per item (its id)",
                path=where,
                details={"reason": "item_key_collision"},
            )
    return tuple(by_key.values())


def event_type_of(config: SourceConfig, event: Any) -> str:
    where = f"sources.{config.name}.eventType"
    value = config.event_type.search(event, where=where)
    if isinstance(value, str) and value:
        return value
    if isinstance(event, list):
        raise MappingError(
            f"event type: the event is a JSON array of {len(event)} item(s), not an object, so "
            f"`{config.event_type.text}` reads nothing; for a sender that batches events, give the source a "
            "literal type, eventType `'batch'`, and the rule forEach `@` (one request per item)",
            path=where,
            details={"reason": "event_is_array"},
        )
    found = "nothing" if value is None else ("an empty string" if value == "" else f"a {json_type(value)}")
    raise MappingError(
        f"event type: `{config.event_type.text}` found {found}, not a string; send the type there or fix {where}",
        path=where,
        details={"reason": "event_type_missing"},
    )


def event_id_of(config: SourceConfig, event: Any) -> str:
    where = f"sources.{config.name}.eventId"
    value = None if config.event_id is None else config.event_id.search(event, where=where)
    if value is None or value == "":
        if config.event_id_default == "content-hash":
            return content_hash(event)
        expr = config.event_id.text if config.event_id is not None else ""
        raise MappingError(
            f"event id: `{expr}` found nothing; send an id there, fix {where}, "
            f'or set eventIdDefault: "content-hash" on the source',
            path=where,
            details={"reason": "event_id_missing"},
        )
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise MappingError(
            f"event id: `{config.event_id.text if config.event_id else ''}` found a {json_type(value)}; "
            "an event id must be a string or an integer",
            path=where,
            details={"reason": "event_id_invalid"},
        )
    return str(value)


def content_hash(event: Any) -> str:
    """SHA-256 (hex) of the event's canonical JSON (keys sorted at every level): equal events, equal ids.

    The same idea as SQS FIFO content-based deduplication, for senders that put no id in their events.
    """
    try:
        return hashlib.sha256(wire.canonical_bytes(event)).hexdigest()
    except (SerialisationError, TypeError, RecursionError) as exc:
        reason = exc.message if isinstance(exc, SerialisationError) else type(exc).__name__
        raise MappingError(
            f"event id: the event has no id and cannot be hashed for one ({reason})",
            details={"reason": "event_id_unhashable"},
        ) from None


def _choose(rules: tuple[RuleConfig, ...], event: Any) -> RuleConfig | None:
    for rule in rules:
        if rule.when is None or rule.when.is_true(event, where=f"{rule.path}.when"):
            return rule
    return None


def _unmatched(config: SourceConfig, event_type: str, why: str) -> MappingError | EventIgnored:
    shown = _show(event_type)
    # The path names the type as the file would, masked like the rest of the message.
    rules_path = child_path(f"sources.{config.name}.rules", _safe(event_type))
    if config.unmatched == "ignore":
        return EventIgnored(
            f'source {config.name} ignores event type {shown}: it {why} and unmatched is "ignore"',
            details={"reason": "unmatched_event_type", "source": config.name},
        )
    return MappingError(
        f'source {config.name}: event type {shown} {why}; add a rule under {rules_path} or set unmatched: "ignore"',
        path=f"sources.{config.name}.rules",
        details={"reason": "unmatched_event_type", "source": config.name},
    )


def _internal_id(rule: RuleConfig, event: Any, idempotency_key: str) -> str | None:
    if not rule.send_internal_id:
        return None
    if rule.internal_id is None:
        # The idempotency key: unique per source, event and rule, even across sources that reuse event
        # ids, so a request found by it after an ambiguous failure can only be this event's.
        return idempotency_key
    return _text_value(rule.internal_id, event, f"{rule.path}.internalId", allow_missing=True)


def _idempotency_key(config: SourceConfig, rule: RuleConfig, scope: Any, event_id: str, item: int | None) -> str:
    if rule.idempotency_key is None:
        key = f"{config.name}:{event_id}:{rule.name}"
        if item is not None:
            # The provider's own id of the item (HubSpot's), which a retry keeps; else a hash of the item.
            own_id = provider_item_id(config.auth.scheme, scope) if config.auth is not None else None
            key = f"{config.name}:{own_id}:{rule.name}" if own_id else item_key(key, scope, f"{rule.path}.forEach")
    else:
        found = _text_value(rule.idempotency_key, scope, f"{rule.path}.idempotencyKey", allow_missing=False)
        assert found is not None  # allow_missing=False never returns None
        key = found
    return bound_key(key)


def _text_value(node: Node, event: Any, where: str, *, allow_missing: bool) -> str | None:
    value = render(node, event)
    if value is OMIT and allow_missing:
        return None
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    found = "nothing" if value is OMIT else ("an empty string" if value == "" else f"a {json_type(value)}")
    raise MappingError(
        f"{where}: found {found}; it must give a non-empty string (or an integer)",
        path=where,
        details={"reason": "key_invalid"},
    )


def bound_key(key: str) -> str:
    """``key`` itself when it is short printable ASCII, else a readable prefix plus its SHA-256."""
    if len(key) <= MAX_KEY_LENGTH and _KEY_SAFE.fullmatch(key):
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    prefix = _KEY_UNSAFE_CHAR.sub("_", key)[: MAX_KEY_LENGTH - len(digest) - 1]
    return f"{prefix}~{digest}"


def _show(text: Any) -> str:
    """A sender-controlled string, made safe for messages: contacts masked, length capped."""
    return repr(_safe(text)) if isinstance(text, str) else f"<{json_type(text)}>"


def _safe(text: str) -> str:
    masked = mask_text(text)
    return masked if len(masked) <= 64 else masked[:61] + "..."
