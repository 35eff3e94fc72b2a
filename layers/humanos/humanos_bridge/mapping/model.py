"""The compiled mapping file: what :mod:`schema` builds at load and :mod:`engine` runs per event."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from humanos_bridge.core.sender_auth import SchemeSettings
from humanos_bridge.mapping.expressions import Expression
from humanos_bridge.mapping.templates import Arr, Expr, Node, Obj

#: What a source does with events that no rule takes.
UNMATCHED_CHOICES: tuple[str, ...] = ("reject", "ignore")
#: What ``/events`` does with an event its mapping refuses: answer 422 (a dry run at ingest), or answer 202 and have it
#: parked in the dead-letter queue with the reason (by the dispatcher, or by ingest when it cannot be routed), to be
#: redriven once the mapping is fixed.
REFUSE, PARK = "refuse", "park"
UNMAPPABLE_CHOICES: tuple[str, ...] = (REFUSE, PARK)
#: Defaults for events whose id is missing (None: such events are rejected).
EVENT_ID_DEFAULTS: tuple[str, ...] = ("content-hash",)
#: What the receiver does with an ``otp.failed`` webhook about one of a source's requests (``onOtpFailed``).
OTP_NONE, OTP_RESEND = "none", "resend"
OTP_FAILED_ACTIONS: tuple[str, ...] = (OTP_NONE, OTP_RESEND)
#: Most resends per request and contact a mapping may ask for: each one texts a number every SMS provider just
#: failed to reach, so a few tries are worth it, more are spam (and a loop if every resend fails again).
MAX_OTP_RESENDS = 3


class AuthConfig(NamedTuple):
    """How the ingest function verifies this source's webhooks (``sender_auth`` defines each scheme)."""

    scheme: str
    #: Key of this source's entry in the sender-secrets JSON (default: the source name).
    secret_key: str
    #: The auth block's settings: an HmacScheme for ``hmac`` and for each preset (the preset's own, so every
    #: reader sees how the source signs), an ApiKeyScheme for ``api-key``; None for the other schemes.
    settings: SchemeSettings | None = None
    #: Accepted clock skew for this source, seconds; None: the ingest function's SIGNATURE_TOLERANCE_SECONDS.
    tolerance: float | None = None


class RuleConfig(NamedTuple):
    """One way to turn an event type into a request; the first rule whose ``when`` holds wins."""

    #: Stable name: part of the default idempotency key, so renaming a rule changes the key.
    name: str
    event_type: str
    #: Where the rule sits in the file (``sources.crm.rules["contact.created"][0]``).
    path: str
    request: Obj
    when: Expression | None = None
    #: None: use the idempotency key (unique per event). See ``send_internal_id``.
    internal_id: Node | None = None
    #: False when the file says ``internalId: null`` (send none).
    send_internal_id: bool = True
    #: None: ``<source>:<event id>:<rule name>`` (with ``forEach``: plus ``:<hash of the item>``).
    idempotency_key: Node | None = None
    #: Fan-out: one request per item of this array; the template then reads the item (``root()`` the event).
    for_each: Expression | None = None
    #: The file says the contacts this rule collects from an array belong in one request (co-signers).
    contacts_in_one_request: bool = False

    def expressions(self) -> Iterator[tuple[str, Expression, bool]]:
        """Every expression of the rule: where it sits in the file, the expression, and whether it fills a
        body value (the template, internalId, idempotencyKey) rather than choosing (``when``, ``forEach``)."""
        if self.when is not None:
            yield f"{self.path}.when", self.when, False
        if self.for_each is not None:
            yield f"{self.path}.forEach", self.for_each, False
        for node in (self.request, self.internal_id, self.idempotency_key):
            if node is not None:
                yield from ((e.where, e.expression, True) for e in _template_expressions(node))


def _template_expressions(node: Node) -> Iterator[Expr]:
    if isinstance(node, Expr):
        yield node
    elif isinstance(node, Obj):
        for _, child in node.items:
            yield from _template_expressions(child)
    elif isinstance(node, Arr):
        for child in node.items:
            yield from _template_expressions(child)


class SourceMatch(NamedTuple):
    """How a queued event with no ``source`` attribute is recognised as this source's (``match`` in the file)."""

    #: EventBridge events whose ``source`` is one of these.
    eventbridge_sources: tuple[str, ...] = ()
    #: SNS notifications from one of these topics.
    sns_topics: tuple[str, ...] = ()
    #: Any event (inside its envelope, if any) for which this holds.
    when: Expression | None = None


class OtpFailedPolicy(NamedTuple):
    """``onOtpFailed``: what the receiver does when Humanos reports that no SMS provider delivered a code."""

    #: ``OTP_NONE`` (publish the event, nothing more) or ``OTP_RESEND`` (also call ``otp.resendEndpoint``).
    action: str = OTP_NONE
    #: With ``OTP_RESEND``: at most this many resend calls per Humanos request and contact; 0 otherwise.
    max_resends: int = 0

    @property
    def resends(self) -> bool:
        return self.action == OTP_RESEND and self.max_resends > 0


class SourceConfig(NamedTuple):
    """One sending system: where its events keep their type and id, and its rules per event type."""

    name: str
    event_type: Expression
    event_id: Expression | None
    event_id_default: str | None
    unmatched: str
    auth: AuthConfig | None
    rules: dict[str, tuple[RuleConfig, ...]]
    #: Request headers kept with each event for ``header()``, lower-case (HTTP names are case-insensitive).
    headers: tuple[str, ...] = ()
    match: SourceMatch | None = None
    #: FIFO request queue: the message group of an event (events of one group reach Humanos in order).
    message_group_id: Expression | None = None
    #: The receiver's reaction to ``otp.failed`` webhooks about this source's requests (default: none).
    on_otp_failed: OtpFailedPolicy = OtpFailedPolicy()
    #: ``/events/<source>`` and an event its mapping refuses: REFUSE (422) or PARK (202, then the dead-letter queue).
    unmappable: str = REFUSE

    @property
    def rule_count(self) -> int:
        return sum(len(rules) for rules in self.rules.values())


class MappedRequest(NamedTuple):
    """What a business event becomes: the body to sign and the keys that make it exactly-once."""

    source: str
    event_type: str
    event_id: str
    #: The rule's stable name (explicit ``name`` or ``<type>#<index>``).
    rule: str
    idempotency_key: str
    internal_id: str | None
    body: dict[str, Any]
