"""Where each provider puts its event's identity: the defaults a source with a provider's ``auth`` preset gets.

A source verified by a provider's preset (``"auth": {"scheme": "github"}``) need not say where the event type
and id are: the provider documents it, and :data:`IDENTITIES` says it once. At load (``schema``), a source
that leaves out ``eventType`` or ``eventId`` gets the preset's expression, and the request headers those read
are added to its ``headers``, so the ingest route keeps them and the dispatcher maps with them too. A
mapping that sets either key itself keeps its own: the defaults only fill what is missing.

The id is the provider's delivery id where it has one (``X-GitHub-Delivery``, ``X-Shopify-Webhook-Id``,
Stripe's and Typeform's event id): a provider's retry carries the same id, so the default idempotency key
(``<source>:<event id>:<rule>``) makes it one Humanos request however its signature differs.

HubSpot sends a JSON array of events, each with its own ``eventId`` and ``subscriptionType``, and the array
itself has neither: its type is the literal ``'batch'``, its id the content hash, and each ``forEach`` item's
default idempotency key is built from the item's own ids (:func:`item_id`), since HubSpot retries events, not
batches, and counts each retry in the item (``attemptNumber``), so a hash of the item would change.

Provider headers are not signed (no preset signs them), so a copy of a delivery could carry other ones; the
replay guard (``replays``) therefore keys copies by signature, and these ids serve idempotency and logs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from humanos_bridge.core.sender_auth import GITHUB, HUBSPOT_V3, SHOPIFY, STRIPE, TYPEFORM
from humanos_bridge.mapping.expressions import compile_expression, header_names
from humanos_bridge.mapping.model import PARK, REFUSE, AuthConfig

CONTENT_HASH = "content-hash"


class ProviderIdentity(NamedTuple):
    """Where one provider's events keep their type and id: mapping expressions (``header()`` reads a header)."""

    event_type: str
    #: None: the provider gives the body no id (HubSpot's array); ``event_id_default`` applies then.
    event_id: str | None
    event_id_default: str | None = None
    #: For each item of a batch (``forEach``): the item's own id, the base of its default idempotency key; None
    #: when the item lacks it. Plain Python, not an expression: it runs once per item of every batch.
    item_id: Callable[[Any], str | None] | None = None

    @property
    def headers(self) -> tuple[str, ...]:
        """The request headers the event type and id are read from."""
        return tuple(name for text in (self.event_type, self.event_id) if text for name in _headers_read(text))


def _hubspot_event_id(item: Any) -> str | None:
    """``<portalId>:<subscriptionId>:<eventId>``: HubSpot documents eventId as "not guaranteed to be unique", so it
    is joined with the account and the subscription that sent it. None unless all three are numbers or text."""
    if not isinstance(item, dict):
        return None
    parts = (item.get("portalId"), item.get("subscriptionId"), item.get("eventId"))
    if not all(isinstance(part, int | str) and not isinstance(part, bool) and part != "" for part in parts):
        return None
    return ":".join(str(part) for part in parts)


#: Each provider preset's event identity, from the provider's documentation.
IDENTITIES: dict[str, ProviderIdentity] = {
    # Stripe's Event object: {"id": "evt_...", "type": "checkout.session.completed", "data": {...}}; a retry is
    # signed afresh (a new t=) and carries the same id.
    STRIPE: ProviderIdentity(event_type="type", event_id="id"),
    # Shopify: the topic and a per-delivery id ("use it to deduplicate deliveries") travel in headers.
    SHOPIFY: ProviderIdentity(event_type="header('X-Shopify-Topic')", event_id="header('X-Shopify-Webhook-Id')"),
    # GitHub: the event name and the delivery's GUID (kept by a redelivery) travel in headers.
    GITHUB: ProviderIdentity(event_type="header('X-GitHub-Event')", event_id="header('X-GitHub-Delivery')"),
    # HubSpot: a JSON array of up to 100 events (each with its subscriptionType), retried event by event.
    HUBSPOT_V3: ProviderIdentity(
        event_type="'batch'", event_id=None, event_id_default=CONTENT_HASH, item_id=_hubspot_event_id
    ),
    # Typeform: {"event_id": "01J...", "event_type": "form_response", "form_response": {...}}.
    TYPEFORM: ProviderIdentity(event_type="event_type", event_id="event_id"),
}


def with_provider_identity(raw: dict[str, Any]) -> dict[str, Any]:
    """A source as written, plus its provider's ``eventType``, ``eventId`` and the headers they read where the
    source leaves them out (``raw`` itself when its scheme is no provider's, or when it sets both)."""
    auth = raw.get("auth")
    scheme = auth.get("scheme") if isinstance(auth, dict) else None
    identity = IDENTITIES.get(scheme) if isinstance(scheme, str) else None
    if identity is None:
        return raw
    filled = dict(raw)
    used = []
    if "eventType" not in raw:
        filled["eventType"] = identity.event_type
        used.append(identity.event_type)
    if "eventId" not in raw:
        if identity.event_id is not None:  # a source's own eventIdDefault stays, for events without the id
            filled["eventId"] = identity.event_id
            used.append(identity.event_id)
        elif "eventIdDefault" not in raw:
            filled["eventIdDefault"] = identity.event_id_default
    listed = raw.get("headers", [])
    needed = [name for text in used for name in _headers_read(text)]
    if needed and isinstance(listed, list):  # a malformed list is reported as written
        kept = {name.lower() for name in listed if isinstance(name, str)}
        filled["headers"] = [*listed, *(name for name in needed if name.lower() not in kept)]
    return filled


def default_unmappable(auth: AuthConfig | None) -> str:
    """PARK for a provider's preset, REFUSE for every other sender: what ``/events`` does with an unmappable event.

    A provider cannot act on a 422: it retries the same event, which fails the same way, and then gives up
    (Shopify, after 8 failed deliveries over 4 hours, deletes a subscription made through its Admin API;
    Stripe disables an endpoint that keeps failing). The event would be lost, and with a deleted subscription
    every later one too. Parked, it waits in the dead-letter queue with its reason for a fixed mapping and a
    redrive. A sender the user controls (humanos-hmac, standard-webhooks, hmac, static credentials) gets the 422
    and its reason, and can fix the event it sent.
    """
    return PARK if auth is not None and auth.scheme in IDENTITIES else REFUSE


def item_id(scheme: str, item: Any) -> str | None:
    """The provider's own id of one ``forEach`` item (HubSpot's), or None: no such id, or the item lacks it."""
    identity = IDENTITIES.get(scheme)
    return None if identity is None or identity.item_id is None else identity.item_id(item)


def _headers_read(text: str) -> list[str]:
    return [name for name in header_names(compile_expression(text)) if name is not None]
