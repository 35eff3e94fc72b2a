"""Playing the sender: secrets for each source of a mapping, and signed webhook requests.

Signing reuses the verifiers' own ``sign`` methods (``humanos_bridge.core.sender_auth``), so what the
local tools send is by definition what the ingest function accepts; nothing here restates a scheme.
"""

from __future__ import annotations

import base64
import secrets
import shlex
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from humanos_bridge.core.errors import ConfigError
from humanos_bridge.core.sender_auth import (
    BASIC_AUTH,
    HUMANOS_HMAC,
    SCHEMES,
    STANDARD_WEBHOOKS,
    STRIPE,
    WHSEC_PREFIX,
    ApiKeyVerifier,
    BasicAuthVerifier,
    HmacVerifier,
    HumanosHmacVerifier,
    RequestTarget,
    StandardWebhooksVerifier,
    verifier_for,
)
from humanos_bridge.mapping import AuthConfig, MappingConfig, SourceConfig
from humanos_bridge.mapping.expressions import Expression, header_names


@dataclass(frozen=True)
class SenderAuth:
    """How one source signs: its scheme and the key of its entry in the sender secret."""

    source: str
    scheme: str
    secret_key: str
    #: The whole auth block: what ``signed_headers`` needs for the ``hmac`` and ``api-key`` schemes.
    config: AuthConfig | None = None


def sender_auth(mapping: MappingConfig, source: str) -> SenderAuth:
    """The scheme and secret key of ``source``; ConfigError when it is unknown or unauthenticated."""
    if source not in mapping.sources:
        known = ", ".join(mapping.sources)
        raise ConfigError(f"source {source!r} is not in {mapping.file}; use one of: {known}")
    auth = mapping.source(source).auth
    if auth is None:
        raise ConfigError(f"source {source!r} in {mapping.file} has no sender authentication (auth.scheme)")
    return SenderAuth(source, auth.scheme, auth.secret_key, auth)


def new_secret(scheme: str) -> str:
    """A fresh sender secret in the form ``scheme`` expects (Standard Webhooks: ``whsec_`` + 32 bytes)."""
    if scheme == STANDARD_WEBHOOKS:
        return WHSEC_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    if scheme == STRIPE:
        return WHSEC_PREFIX + secrets.token_urlsafe(32)  # as Stripe's look; Stripe uses the whole text as the key
    if scheme == BASIC_AUTH:
        return f"sender:{secrets.token_urlsafe(24)}"
    if scheme in SCHEMES:
        return secrets.token_urlsafe(32)
    raise ConfigError(f"unknown sender authentication scheme {scheme!r}")


def generate_sender_secrets(mapping: MappingConfig) -> dict[str, list[str]]:
    """One fresh secret per secret key of the mapping's authenticated sources: the SenderSecret value."""
    generated: dict[str, list[str]] = {}
    for name in mapping.sources:
        auth = mapping.source(name).auth
        if auth is not None and auth.secret_key not in generated:
            generated[auth.secret_key] = [new_secret(auth.scheme)]
    return generated


def signed_headers(
    scheme: str | AuthConfig,
    secret: str,
    body: bytes,
    *,
    now: float | None = None,
    url: str | None = None,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The headers a sender sends with ``body``: ``Content-Type``, ``headers`` and the signature's.

    ``scheme`` is a scheme's name, or a source's whole auth block (``sender_auth(...).config``), which the
    ``hmac`` and ``api-key`` schemes need. ``url`` and ``method`` are the request the sender makes: needed by
    the schemes that sign them (``hubspot-v3``, an ``hmac`` template with ``{url}`` or ``{method}``).
    ``headers`` are the other headers the sender sends (``identity_headers``), signed where the scheme signs them.
    """
    name, settings = (scheme.scheme, scheme.settings) if isinstance(scheme, AuthConfig) else (scheme, None)
    sent = {"Content-Type": "application/json", **(headers or {})}
    if name == STANDARD_WEBHOOKS:
        stamp = None if now is None else int(now)
        sent |= StandardWebhooksVerifier([secret]).sign_headers(f"msg_{uuid.uuid4().hex}", body, timestamp=stamp)
    elif name == HUMANOS_HMAC:
        stamp_ms = None if now is None else int(now * 1000)
        sent |= HumanosHmacVerifier([secret]).sign(body, timestamp_ms=stamp_ms)
    else:
        verifier = verifier_for(name, [secret], settings=settings)
        if isinstance(verifier, HmacVerifier):
            if verifier.signs_url and url is None:
                raise ConfigError(f"{name} signs the request's URL; pass the URL the event is posted to (url=)")
            target = None if url is None else RequestTarget(method, url)
            sent |= verifier.sign_headers(body, now=now, target=target, headers=headers)
        elif isinstance(verifier, BasicAuthVerifier | ApiKeyVerifier):
            sent |= verifier.sign_headers()
    return sent


def parse_headers(given: list[str]) -> dict[str, str]:
    """``--header 'Name: value'`` options; ConfigError for one without a colon or a name."""
    headers = {}
    for text in given:
        name, colon, value = text.partition(":")
        if not colon or not name.strip():
            raise ConfigError(f"--header {text!r}: write it as 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


def identity_headers(source: SourceConfig, given: Mapping[str, str]) -> dict[str, str]:
    """``given``, plus the headers ``source`` reads its event id from that ``given`` lacks, as the provider sends
    them: a fresh id each (every delivery has its own, as ``X-GitHub-Delivery`` does).

    ConfigError when a header the event type is read from is missing: only the sender knows the topic.
    """
    given_names = {name.lower() for name in given}
    for name in headers_read(source.event_type):
        if name.lower() not in given_names:
            first = next(iter(source.rules), "<type>")
            raise ConfigError(
                f"source {source.name!r} reads its event type from the {name} header; send it with --header "
                f"'{name}: <type>' (e.g. '{name}: {first}')"
            )
    missing = [name for name in headers_read(source.event_id) if name.lower() not in given_names]
    return {**given, **{name: str(uuid.uuid4()) for name in dict.fromkeys(missing)}}


def headers_read(expression: Expression | None) -> list[str]:
    """The headers ``expression`` reads with ``header()``, named as the mapping file writes them."""
    return [name for name in header_names(expression) if name is not None] if expression is not None else []


def curl_command(url: str, headers: dict[str, str], body_file: Path) -> str:
    """A ready-to-paste ``curl`` posting ``body_file`` byte for byte (``--data-binary @file`` keeps its bytes)."""
    parts = ["curl", "-sS", "-X", "POST", shlex.quote(url)]
    for name, value in headers.items():
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    parts += ["--data-binary", shlex.quote(f"@{body_file}")]
    return " ".join(parts)
