"""Which business event a webhook answers: read back from the ``internalId`` our request carried.

A rule that sets neither ``internalId`` nor ``idempotencyKey`` sends its idempotency key as the
internalId: ``<source>:<event id>:<rule>``, with ``forEach`` plus ``:<16 hex digits of the item>``
(``mapping.engine``). Source and rule names cannot hold a colon (``mapping.schema``), so the source is
what precedes the first colon, the rule what follows the last one (or the last but one, for an item), and
the event id is everything between, colons included. A reading is trusted only when the mapping has that
source and a rule of that name that sends the default internalId (with ``forEach`` exactly when an item
hash follows); anything else (a custom internalId, a renamed rule, no mapping) recovers nothing.

A key that was too long or not printable ASCII was sent as ``<prefix>~<SHA-256>`` (``bound_key``): its
event id cannot be read back, only its source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from humanos_bridge.mapping import MappingConfig

_ITEM = re.compile(r"[0-9a-f]{16}")
_BOUND = re.compile(r"~[0-9a-f]{64}")


@dataclass(frozen=True)
class Origin:
    """The business event behind a Humanos request, as far as it can be read back."""

    source: str
    #: None when the internalId holds only a digest of the key.
    event_id: str | None = None
    rule: str | None = None

    def as_detail(self) -> dict[str, str]:
        """The ``business`` object of the published event (only what is known)."""
        found = {"source": self.source, "eventId": self.event_id, "rule": self.rule}
        return {name: value for name, value in found.items() if value is not None}


class OriginIndex:
    """The mapping's sources and, per source, the rules that send the default internalId (and whether with forEach)."""

    def __init__(self, rules: dict[str, dict[str, bool]]) -> None:
        self._rules = rules

    @classmethod
    def from_mapping(cls, mapping: MappingConfig | None) -> OriginIndex:
        """Index ``mapping`` (None: nothing is ever recovered)."""
        rules: dict[str, dict[str, bool]] = {}
        if mapping is None:
            return cls(rules)
        for name in mapping.sources:
            source = mapping.source(name)
            rules[name] = {
                rule.name: rule.for_each is not None
                for rule_list in source.rules.values()
                for rule in rule_list
                if rule.send_internal_id and rule.internal_id is None and rule.idempotency_key is None
            }
        return cls(rules)

    def origin_of(self, internal_id: str | None) -> Origin | None:
        """The business event behind ``internal_id``, or None when it is not one the mapping's rules send."""
        if not internal_id or ":" not in internal_id:
            return None
        source, _, rest = internal_id.partition(":")
        rules = self._rules.get(source)
        if rules is None:
            return None
        if _BOUND.fullmatch(internal_id[-65:]):
            return Origin(source)  # bound_key's digest form: the event id is not in it
        head, _, last = rest.rpartition(":")
        if head and rules.get(last) is False:
            return Origin(source, head, last)
        event_id, _, rule = head.rpartition(":")
        if event_id and _ITEM.fullmatch(last) and rules.get(rule) is True:
            return Origin(source, event_id, rule)
        return None
