"""A local HTTP server that behaves like Humanos, for tests and local runs.

It verifies ``Authorization``, ``X-Timestamp`` and ``X-Signature`` exactly as documented (the
signature over its own re-serialisation of the parsed body), serves each ``API-Version`` (the key's
pinned one when the header is absent) in that version's answer shapes, validates and stores
``POST /request`` bodies, honours ``Idempotency-Key``, answers errors in the NestJS shape,
rate-limits request creations and injects faults (status answers, latency, hangs, dropped
connections before or after processing). It also closes the loop: told to decide a stored request (or
deciding each one by itself, ``auto_decide``), it posts the webhooks Humanos would, encrypted and signed,
to the configured URL, retrying until a 2xx. Every call is recorded for tests to assert on::

    with Sandbox(api_key="k", signature_secret="s") as sb:
        ...  # call sb.base_url
        assert sb.calls[0].status == 201
"""

from __future__ import annotations

from humanos_bridge_local.sandbox.decisions import OUTCOMES, DecisionError
from humanos_bridge_local.sandbox.delivery import Delivery
from humanos_bridge_local.sandbox.faults import Fault
from humanos_bridge_local.sandbox.server import RecordedCall, Sandbox
from humanos_bridge_local.sandbox.validation import SUPPORTED_VERSIONS
from humanos_bridge_local.sandbox.webhook_crypto import WebhookSecrets

__all__ = [
    "OUTCOMES",
    "SUPPORTED_VERSIONS",
    "DecisionError",
    "Delivery",
    "Fault",
    "RecordedCall",
    "Sandbox",
    "WebhookSecrets",
]
