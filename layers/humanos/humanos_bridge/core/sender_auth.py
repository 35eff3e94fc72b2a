"""Verification of inbound sender credentials: one small verifier per scheme.

Every signing verifier follows one pattern (the Standard Webhooks ``Webhook`` class): the constructor
validates the secrets (several may be active at once, for rotation), ``sign`` (or ``sign_headers``) is
the single definition of what a sender signs and ``verify`` recomputes it over the raw body bytes,
comparing in constant time against every signature and every secret. The timestamp is checked
in both directions against ``tolerance`` seconds; ``now`` is a parameter so tests need no clock.

Every failure raises SignatureError whose ``reason`` names the failed check, for the log only:
callers answer one generic message whatever the reason. No message carries a secret, a
signature or body bytes.

A request that verifies is a ``SignedDelivery``: what makes it the same delivery when it comes again,
and until when its signature verifies. :mod:`humanos_bridge.core.replays` handles each delivery once.

Schemes
-------
``humanos-hmac``
    ``X-Timestamp`` (Unix ms) and ``X-Signature`` (hex HMAC-SHA256 over ``"<ts>.<body>"``, key =
    the secret's UTF-8 text): the scheme Humanos uses, see :mod:`humanos_bridge.core.signing`.
``standard-webhooks``
    ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` (space-separated
    ``v1,<base64>`` entries), HMAC-SHA256 over ``"<id>.<ts>.<body>"`` keyed with the base64-decoded
    part of a ``whsec_<base64>`` secret (https://www.standardwebhooks.com).
``hmac``
    The generic, declarative scheme (:class:`HmacScheme`, the auth block's other keys): the header that
    carries the signature and how to read it (a prefix, a ``t=...,v1=...`` list, several signatures), the
    algorithm and encoding, what is signed (a template of the body, the timestamp, the method, the URL and
    header values), and where the timestamp is and in which unit. The key is the secret's UTF-8 text.
``stripe``, ``shopify``, ``github``, ``hubspot-v3``, ``typeform``
    Presets: one :class:`HmacScheme` each, as the provider documents it (:data:`PRESETS`).
``basic-auth``, ``api-key``
    Static credentials, for senders that can only add a header: ``Authorization: Basic`` for a
    ``user:password`` secret, or the secret itself in a named header (:class:`ApiKeyScheme`). Nothing
    binds them to the body or to a moment (:func:`protects_body`, :func:`signs_timestamp`).
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
import hmac
import math
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, TypeAlias

from humanos_bridge.core import signing
from humanos_bridge.core.errors import ConfigError, SignatureError

#: Default tolerated clock skew, both directions, in seconds.
DEFAULT_TOLERANCE_SECONDS = signing.DEFAULT_TOLERANCE_SECONDS
HUMANOS_HMAC = "humanos-hmac"
STANDARD_WEBHOOKS = "standard-webhooks"
HMAC = "hmac"
STRIPE, SHOPIFY, GITHUB, HUBSPOT_V3, TYPEFORM = "stripe", "shopify", "github", "hubspot-v3", "typeform"
BASIC_AUTH, API_KEY = "basic-auth", "api-key"
#: Every scheme a mapping file may name, in the order messages list them.
SCHEMES: tuple[str, ...] = (
    HUMANOS_HMAC,
    STANDARD_WEBHOOKS,
    HMAC,
    STRIPE,
    SHOPIFY,
    GITHUB,
    HUBSPOT_V3,
    TYPEFORM,
    BASIC_AUTH,
    API_KEY,
)
#: Schemes that check a static credential: nothing ties it to the body or to a moment.
STATIC_SCHEMES: tuple[str, ...] = (BASIC_AUTH, API_KEY)
#: Prefix of a Standard Webhooks secret; the rest is the base64 of the HMAC key.
WHSEC_PREFIX = "whsec_"
#: The spec bounds the key length: shorter keys are guessable, longer ones are a mistake.
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64
#: Headers longer than this are refused before any work (a signature header lists a few entries).
MAX_HEADER_CHARS = 4096
_V1 = "v1,"


class SignedDelivery(NamedTuple):
    """A request whose signature verified: what identifies it, and until when it verifies."""

    scheme: str
    #: The same for every copy of this delivery, never shown (it holds a signature): Standard Webhooks'
    #: ``webhook-id`` (the spec's "deduplicate on it"; a sender's retry keeps it), or for ``humanos-hmac``
    #: ``"<X-Timestamp>.<X-Signature>"`` (a sender's retry is signed afresh, so only a copy repeats it).
    #: ``hmac`` and its presets: ``"<timestamp>.<signature>"``, or the signature alone when none is signed
    #: (the providers' own delivery ids, ``X-GitHub-Delivery`` and the like, are not signed: a copy could
    #: change them). Static credentials: ``"body:<SHA-256 of the body>"``.
    delivery_id: str
    #: Unix seconds after which its timestamp is stale (its timestamp plus the tolerance): the end of the
    #: window in which a copy of it could still be accepted. Without a signed timestamp a copy verifies
    #: forever, so it is ``UNTIMED_CLAIM_SECONDS`` after it arrived.
    stale_after: int


class RequestTarget(NamedTuple):
    """The request line a URL-signing scheme signs: the method and the URL the sender called."""

    method: str
    #: ``https://<host><path>[?<query>]`` as the sender wrote it (percent-escapes kept); "" when unknown.
    url: str


class SenderVerifier(Protocol):
    """Verifies one request from a sender; raises SignatureError with a ``reason`` when it fails."""

    scheme: str
    tolerance: float

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: float | None = None,
        target: RequestTarget | None = None,
    ) -> SignedDelivery: ...


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name``, whatever the case of the names in ``headers``."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, found in headers.items():
        if key.lower() == wanted:
            return found
    return None


class HumanosHmacVerifier:
    """``X-Timestamp`` / ``X-Signature``, exactly as Humanos signs its own requests.

    Parameters
    ----------
    secrets
        The active secrets (plain text, used as UTF-8), newest first. At least one.
    tolerance
        Accepted clock skew in seconds, both directions.
    """

    scheme = HUMANOS_HMAC

    def __init__(self, secrets: Sequence[str], *, tolerance: float = DEFAULT_TOLERANCE_SECONDS) -> None:
        self._secrets = _check_secrets(secrets, self.scheme)
        self.tolerance = _check_tolerance(tolerance)

    def sign(self, body: bytes, *, timestamp_ms: int | None = None) -> dict[str, str]:
        """The headers a sender adds (with the first secret): ``X-Timestamp`` and ``X-Signature``."""
        stamp = signing.now_ms() if timestamp_ms is None else timestamp_ms
        return {"X-Timestamp": str(stamp), "X-Signature": signing.sign(self._secrets[0], stamp, body)}

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: float | None = None,
        target: RequestTarget | None = None,
    ) -> SignedDelivery:
        stamp = _bounded(header(headers, "X-Timestamp"), "timestamp")
        given = _bounded(header(headers, "X-Signature"), "signature")
        signing.verify(self._secrets, stamp, given, body, tolerance=self.tolerance, now=now)
        assert stamp is not None and given is not None  # signing.verify refused a missing one
        # As compared: an upper-case copy of the signature verifies too, and is the same delivery.
        delivery_id = f"{stamp.strip()}.{given.strip().lower()}"
        return SignedDelivery(self.scheme, delivery_id, _stale_after(int(stamp.strip()) / 1000, self.tolerance))

    def __repr__(self) -> str:
        return f"HumanosHmacVerifier(<{len(self._secrets)} secret(s)>, tolerance={self.tolerance:g})"


class StandardWebhooksVerifier:
    """``webhook-id`` / ``webhook-timestamp`` / ``webhook-signature`` (Standard Webhooks, ``v1``).

    Parameters
    ----------
    secrets
        The active secrets, each ``whsec_<base64 of 24 to 64 bytes>``, newest first. At least one.
    tolerance
        Accepted clock skew in seconds, both directions.
    """

    scheme = STANDARD_WEBHOOKS

    def __init__(self, secrets: Sequence[str], *, tolerance: float = DEFAULT_TOLERANCE_SECONDS) -> None:
        checked = _check_secrets(secrets, self.scheme)
        self._keys = tuple(_decode_whsec(secret, index) for index, secret in enumerate(checked))
        self.tolerance = _check_tolerance(tolerance)

    @staticmethod
    def signed_content(msg_id: str, timestamp: str, body: bytes) -> bytes:
        """The exact bytes that are signed: ``"<id>.<timestamp>.<body>"``."""
        return f"{msg_id}.{timestamp}.".encode() + body

    def sign(self, msg_id: str, timestamp: int, body: bytes) -> str:
        """The ``webhook-signature`` value a sender sends (one ``v1`` entry, with the first secret)."""
        return _V1 + self._digest(self._keys[0], self.signed_content(msg_id, str(timestamp), body))

    def sign_headers(self, msg_id: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        """All three headers for ``body`` (``timestamp`` in Unix seconds; default now)."""
        stamp = int(time.time()) if timestamp is None else timestamp
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": self.sign(msg_id, stamp, body),
        }

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: float | None = None,
        target: RequestTarget | None = None,
    ) -> SignedDelivery:
        msg_id = _bounded(header(headers, "webhook-id"), "id")
        stamp = _bounded(header(headers, "webhook-timestamp"), "timestamp")
        given = _bounded(header(headers, "webhook-signature"), "signature")
        if msg_id is None or not msg_id.strip():
            raise SignatureError("webhook-id header is missing", reason="id_missing")
        seconds = _parse_seconds(stamp)
        signing.check_freshness(seconds * 1000, tolerance=self.tolerance, now=now)
        if given is None or not given.strip():
            raise SignatureError("webhook-signature header is missing", reason="signature_missing")
        offered = [entry[len(_V1) :].encode("ascii", "replace") for entry in given.split() if entry.startswith(_V1)]
        if not offered:
            raise SignatureError("webhook-signature has no v1 entry", reason="signature_no_v1")
        assert stamp is not None  # _parse_seconds refused None
        content = self.signed_content(msg_id, stamp.strip(), body)
        matched = False
        for key in self._keys:
            expected = self._digest(key, content).encode("ascii")
            for candidate in offered:
                # Every pair is compared, so timing tells nothing about which (if any) matched.
                matched |= hmac.compare_digest(expected, candidate)
        if not matched:
            raise SignatureError("no webhook-signature entry matches the body", reason="signature_mismatch")
        return SignedDelivery(self.scheme, msg_id, _stale_after(seconds, self.tolerance))

    @staticmethod
    def _digest(key: bytes, content: bytes) -> str:
        # hmac.digest: the same bytes as hmac.new(...).digest(), in one call, without the HMAC object (~1 µs).
        return base64.b64encode(hmac.digest(key, content, hashlib.sha256)).decode("ascii")

    def __repr__(self) -> str:
        return f"StandardWebhooksVerifier(<{len(self._keys)} secret(s)>, tolerance={self.tolerance:g})"


# --- the generic HMAC scheme ----------------------------------------------------------------------

SECONDS, MILLISECONDS = "seconds", "milliseconds"
#: The digests the generic scheme computes, by the name the auth block uses.
ALGORITHMS: dict[str, Callable[[], Any]] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
ENCODINGS: tuple[str, ...] = ("hex", "base64")
TIMESTAMP_UNITS: tuple[str, ...] = (SECONDS, MILLISECONDS)
#: What may separate several signatures (or ``key=value`` entries) in one header.
SIGNATURE_SEPARATORS: tuple[str, ...] = (" ", ",")
#: The parts a ``signed`` template may name, besides ``{header:<name>}``.
TEMPLATE_PARTS: tuple[str, ...] = ("body", "timestamp", "method", "url")
HEADER_PART = "header:"
#: How long a delivery without a signed timestamp is remembered (its copies verify forever): as long as the
#: exactly-once ledger keeps an event's record (``exactly_once.DEFAULT_TTL_SECONDS``), so past it the event's
#: idempotency key still stops a second Humanos request.
UNTIMED_CLAIM_SECONDS = 15 * 24 * 3600
#: The widest tolerance a source may set: a longer window lets a captured request through for longer.
MAX_TOLERANCE_SECONDS = 3600
#: The auth block's keys for the generic scheme, and the HmacScheme field each fills.
HMAC_FIELDS: dict[str, str] = {
    "signatureHeader": "signature_header",
    "algorithm": "algorithm",
    "encoding": "encoding",
    "signed": "signed",
    "signaturePrefix": "signature_prefix",
    "signatureSeparator": "signature_separator",
    "signatureKey": "signature_key",
    "timestampHeader": "timestamp_header",
    "timestampKey": "timestamp_key",
    "timestampUnit": "timestamp_unit",
    "urlDecode": "url_decode",
}
API_KEY_FIELDS: tuple[str, ...] = ("keyHeader", "keyPrefix")
TOLERANCE = "tolerance"
#: Every auth block key besides ``scheme`` and ``secretKey``, whatever the scheme.
ALL_FIELDS: tuple[str, ...] = (TOLERANCE, *HMAC_FIELDS, *API_KEY_FIELDS)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")
_ENTRY_KEY = re.compile(r"[A-Za-z0-9_-]{1,32}")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_PARTS_HELP = "the parts are {body}, {timestamp}, {method}, {url} and {header:<name>}"
#: One piece of a ``signed`` template: ("text", literal), (part, "") or ("header", header name).
Part = tuple[str, str]


class TemplateError(ConfigError):
    """A ``signed`` template that cannot be read; the message says where and how to fix it."""


def parse_signed(template: str) -> tuple[Part, ...]:
    """The pieces of a ``signed`` template, in order. ``{{`` and ``}}`` are literal braces.

    Raises TemplateError naming the first unreadable piece.
    """
    parts: list[Part] = []
    text: list[str] = []
    index = 0
    while index < len(template):
        char = template[index]
        if template.startswith(("{{", "}}"), index):
            text.append(char)
            index += 2
        elif char == "}":
            raise TemplateError(f"a lone '}}' at character {index + 1}; write }}}} for a literal brace")
        elif char == "{":
            end = template.find("}", index)
            if end < 0:
                raise TemplateError(f"the '{{' at character {index + 1} is never closed; {_PARTS_HELP}")
            if text:
                parts.append(("text", "".join(text)))
                text = []
            parts.append(_part(template[index + 1 : end]))
            index = end + 1
        else:
            text.append(char)
            index += 1
    if text:
        parts.append(("text", "".join(text)))
    return tuple(parts)


def _part(name: str) -> Part:
    if name in TEMPLATE_PARTS:
        return (name, "")
    if name.startswith(HEADER_PART):
        field = name[len(HEADER_PART) :]
        if not _HEADER_NAME.fullmatch(field):
            raise TemplateError(f"{{{name}}} does not name a header; write {{header:X-Request-Id}}, a header's name")
        return ("header", field)
    close = difflib.get_close_matches(name, (*TEMPLATE_PARTS, HEADER_PART), n=1)
    hint = ""
    if close == [HEADER_PART]:
        hint = "did you mean {header:<name>}? "
    elif close:
        hint = f"did you mean {{{close[0]}}}? "
    raise TemplateError(f"unknown part {{{name}}}; {hint}{_PARTS_HELP}")


class HmacScheme(NamedTuple):
    """How a sender signs with HMAC: the generic ``hmac`` scheme's settings, and each preset's.

    Each field is an auth block key (``signature_header`` is ``signatureHeader``, see ``HMAC_FIELDS``).
    Nothing is checked here: :meth:`problems` lists what is wrong, and a verifier refuses settings with any.
    """

    #: The header that carries the signature(s).
    signature_header: str = ""
    algorithm: str = "sha256"
    #: How the digest is written: lowercase ``hex``, or standard ``base64`` with padding.
    encoding: str = "hex"
    #: What is signed: literal text and ``{body}``, ``{timestamp}``, ``{method}``, ``{url}``, ``{header:<name>}``.
    signed: str = "{body}"
    #: Text before each signature (``sha256=``); an entry without it is not a signature.
    signature_prefix: str = ""
    #: The header holds several signatures (or ``key=value`` entries) separated by this: ``" "`` or ``","``.
    signature_separator: str | None = None
    #: The header is a list of ``key=value`` entries, and the signatures are those with this key (``v1``).
    signature_key: str | None = None
    #: The header carrying the timestamp; or ``timestamp_key``, the entry of the signature list carrying it.
    timestamp_header: str | None = None
    timestamp_key: str | None = None
    timestamp_unit: str = SECONDS
    #: Characters whose %XX escapes in ``{url}`` are decoded before signing (HubSpot signs some decoded).
    url_decode: str = ""

    @property
    def timed(self) -> bool:
        """Whether a timestamp is signed (and so checked against the tolerance)."""
        return self.timestamp_header is not None or self.timestamp_key is not None

    @property
    def parts(self) -> tuple[Part, ...]:
        """The ``signed`` template's pieces (TemplateError when it cannot be read)."""
        return parse_signed(self.signed)

    def problems(self) -> list[tuple[str, str]]:
        """Everything wrong with these settings, as (auth block key, what and how to fix); empty when none."""
        found: list[tuple[str, str]] = []
        if not self.signature_header:
            found.append(("signatureHeader", 'required: the header that carries the signature, e.g. "X-Signature"'))
        elif not _HEADER_NAME.fullmatch(self.signature_header):
            found.append(("signatureHeader", f"{self.signature_header!r} is not a header name"))
        if self.algorithm not in ALGORITHMS:
            found.append(("algorithm", _one_of("algorithm", self.algorithm, tuple(ALGORITHMS))))
        if self.encoding not in ENCODINGS:
            found.append(("encoding", _one_of("encoding", self.encoding, ENCODINGS)))
        return found + self._list_problems() + self._timestamp_problems() + self._template_problems()

    def _list_problems(self) -> list[tuple[str, str]]:
        found = []
        separator = self.signature_separator
        if separator is not None and separator not in SIGNATURE_SEPARATORS:
            found.append(("signatureSeparator", f'must be " " or ",", got {separator!r}'))
        if self.signature_key is not None and not _ENTRY_KEY.fullmatch(self.signature_key):
            found.append(
                ("signatureKey", f'{self.signature_key!r} is not an entry key; write the key alone, e.g. "v1"')
            )
        splits_on = separator or ("," if self.signature_key is not None else None)
        if len(self.signature_prefix) > 64 or (splits_on is not None and splits_on in self.signature_prefix):
            found.append(("signaturePrefix", "must be at most 64 characters, without the signature separator"))
        return found

    def _timestamp_problems(self) -> list[tuple[str, str]]:
        found = []
        if self.timestamp_header is not None and self.timestamp_key is not None:
            found.append(("timestampKey", "set timestampHeader or timestampKey, not both"))
        if self.timestamp_header is not None and not _HEADER_NAME.fullmatch(self.timestamp_header):
            found.append(("timestampHeader", f"{self.timestamp_header!r} is not a header name"))
        if self.timestamp_key is not None and self.signature_key is None:
            found.append(("timestampKey", "needs signatureKey: it names an entry of the signature header's list"))
        elif self.timestamp_key is not None and (
            not _ENTRY_KEY.fullmatch(self.timestamp_key) or self.timestamp_key == self.signature_key
        ):
            found.append(("timestampKey", 'must be an entry key other than signatureKey, e.g. "t"'))
        if self.timestamp_unit not in TIMESTAMP_UNITS:
            found.append(("timestampUnit", _one_of("timestampUnit", self.timestamp_unit, TIMESTAMP_UNITS)))
        elif self.timestamp_unit != SECONDS and not self.timed:
            found.append(("timestampUnit", "applies only with timestampHeader or timestampKey; remove it"))
        return found

    def _template_problems(self) -> list[tuple[str, str]]:
        try:
            parts = self.parts
        except TemplateError as exc:
            return [("signed", str(exc))]
        kinds = {kind for kind, _ in parts}
        found = []
        if "body" not in kinds:
            found.append(("signed", "must include {body}: a signature that leaves the body out does not protect it"))
        if "timestamp" in kinds and not self.timed:
            found.append(("signed", "names {timestamp} but no timestamp is read; add timestampHeader or timestampKey"))
        if self.timed and "timestamp" not in kinds:
            where = "timestampHeader" if self.timestamp_header is not None else "timestampKey"
            found.append((where, "the timestamp must be signed, or anyone could refresh it: add {timestamp} to signed"))
        if any(kind == "header" and name.lower() == self.signature_header.lower() for kind, name in parts):
            found.append(
                ("signed", "a signature cannot sign its own header; remove {header:" + self.signature_header + "}")
            )
        if self.url_decode and "url" not in kinds:
            found.append(("urlDecode", "applies only when signed includes {url}; remove it"))
        if not all(char.isascii() and char.isprintable() and not char.isalnum() for char in self.url_decode):
            found.append(("urlDecode", 'must list ASCII punctuation whose %XX escapes are decoded, e.g. ":/?@"'))
        return found


#: The providers' schemes, each as the provider documents it (tolerance: the source's, 300 s by default). The key
#: is the secret's UTF-8 text in every one: Stripe's whole ``whsec_...`` endpoint secret, Shopify's and
#: HubSpot's app client secret, GitHub's and Typeform's webhook secret.
PRESETS: dict[str, HmacScheme] = {
    # Stripe, "Verify webhook signatures manually": "t=<ts>,v1=<hex>[,v1=...,v0=...]" over "<t>.<body>".
    STRIPE: HmacScheme(
        "Stripe-Signature", signed="{timestamp}.{body}", signature_key="v1", timestamp_key="t", signature_separator=","
    ),
    # Shopify, "Verify the webhook": base64 of the HMAC-SHA256 of the raw body. No timestamp is signed.
    SHOPIFY: HmacScheme("X-Shopify-Hmac-Sha256", encoding="base64"),
    # GitHub, "Validating webhook deliveries": "sha256=" and the hex digest of the body. No timestamp is signed.
    GITHUB: HmacScheme("X-Hub-Signature-256", signature_prefix="sha256="),
    # HubSpot, "Validating requests", v3: base64 over method + URI + body + the timestamp (ms), with the
    # characters HubSpot lists decoded in the URI; requests older than 5 minutes are to be refused.
    HUBSPOT_V3: HmacScheme(
        "X-HubSpot-Signature-v3",
        encoding="base64",
        signed="{method}{url}{body}{timestamp}",
        timestamp_header="X-HubSpot-Request-Timestamp",
        timestamp_unit=MILLISECONDS,
        url_decode=":/?@!$'()*,;",
    ),
    # Typeform, "Secure your webhooks": "sha256=" and the base64 digest of the body. No timestamp is signed.
    TYPEFORM: HmacScheme("Typeform-Signature", encoding="base64", signature_prefix="sha256="),
}


class HmacVerifier:
    """The generic HMAC scheme (and each preset): what :class:`HmacScheme` describes.

    Parameters
    ----------
    secrets
        The active secrets (plain text, used as UTF-8), newest first. At least one.
    settings
        How the sender signs; ConfigError lists every problem it has.
    tolerance
        Accepted clock skew in seconds, both directions (only when a timestamp is signed).
    scheme
        The name the mapping used (``hmac`` or a preset's), for messages and replay scoping.
    """

    def __init__(
        self,
        secrets: Sequence[str],
        settings: HmacScheme,
        *,
        tolerance: float = DEFAULT_TOLERANCE_SECONDS,
        scheme: str = HMAC,
    ) -> None:
        problems = settings.problems()
        if problems:
            raise ConfigError(f"{scheme} settings: " + "; ".join(f"{key}: {message}" for key, message in problems))
        self.scheme = scheme
        self.settings = settings
        self._keys = tuple(secret.encode("utf-8") for secret in _check_secrets(secrets, scheme))
        self.tolerance = _check_tolerance(tolerance)
        self._parts = settings.parts
        self._algorithm = ALGORITHMS[settings.algorithm]
        self._decoded = frozenset(settings.url_decode)

    @property
    def signs_url(self) -> bool:
        """Whether the method or URL is signed: the sender's request line is needed to sign and to verify."""
        return any(kind in ("method", "url") for kind, _ in self._parts)

    def signed_content(
        self,
        body: bytes,
        *,
        timestamp: str | None = None,
        target: RequestTarget | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """The exact bytes that are signed: the ``signed`` template filled in (``timestamp`` as the text sent)."""
        if self.signs_url and target is None:
            raise ConfigError(f"{self.scheme} signs the request's method and URL; pass them (target=)")
        pieces = []
        for kind, value in self._parts:
            if kind == "body":
                pieces.append(body)
            elif kind == "header":
                pieces.append(_utf8(self._signed_header(headers or {}, value)))
            else:
                pieces.append(_utf8(self._piece(kind, value, timestamp, target)))
        return b"".join(pieces)

    def sign(self, content: bytes) -> str:
        """The signature of ``content`` with the first secret, encoded as the sender writes it (no prefix)."""
        return self._digest(self._keys[0], content)

    def sign_headers(
        self,
        body: bytes,
        *,
        now: float | None = None,
        target: RequestTarget | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Every header a sender adds for ``body`` at ``now`` (Unix seconds; default the clock).

        Headers the template signs and ``headers`` does not give get a fresh random value (a request id).
        """
        given = dict(headers or {})
        signed_names = [name for kind, name in self._parts if kind == "header"]
        added = {name: header(given, name) or uuid.uuid4().hex for name in signed_names}
        stamp = None
        if self.settings.timed:
            seconds = time.time() if now is None else now
            stamp = str(int(seconds * 1000) if self.settings.timestamp_unit == MILLISECONDS else int(seconds))
        content = self.signed_content(body, timestamp=stamp, target=target, headers=added)
        entry = self.settings.signature_prefix + self.sign(content)
        if self.settings.signature_key is not None:
            entry = f"{self.settings.signature_key}={entry}"
            if self.settings.timestamp_key is not None:
                entry = f"{self.settings.timestamp_key}={stamp}{self.settings.signature_separator or ','}{entry}"
        result = dict(added)
        if self.settings.timestamp_header is not None and stamp is not None:
            result[self.settings.timestamp_header] = stamp
        result[self.settings.signature_header] = entry
        return result

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: float | None = None,
        target: RequestTarget | None = None,
    ) -> SignedDelivery:
        name = self.settings.signature_header
        value = _bounded(header(headers, name), "signature")
        if value is None or not value.strip():
            raise SignatureError(f"{name} header is missing", reason="signature_missing")
        offered, listed_stamp = self._offered(value)
        stamp, seconds = self._timestamp(headers, listed_stamp, now)
        if not offered:
            raise SignatureError(f"{name} holds no signature {self._shape()}", reason="signature_malformed")
        content = self.signed_content(body, timestamp=stamp, target=target, headers=headers)
        candidates = [candidate.encode("ascii", "replace") for candidate in offered]
        matched = b""
        for key in self._keys:
            expected = self._digest(key, content).encode("ascii")
            for candidate in candidates:
                # Every pair is compared, so timing tells nothing about which (if any) matched; what matched
                # is kept only to name the delivery, which the answer reveals anyway.
                if hmac.compare_digest(expected, candidate):
                    matched = expected
        if not matched:
            raise SignatureError(f"no signature in {name} matches the request", reason="signature_mismatch")
        if seconds is None:
            current = time.time() if now is None else now
            return SignedDelivery(self.scheme, matched.decode("ascii"), math.ceil(current) + UNTIMED_CLAIM_SECONDS)
        return SignedDelivery(self.scheme, f"{stamp}.{matched.decode('ascii')}", _stale_after(seconds, self.tolerance))

    def _offered(self, value: str) -> tuple[list[str], str | None]:
        """The signatures the header offers (prefix removed), and the timestamp its list holds (``timestampKey``)."""
        settings = self.settings
        stamp = None
        if settings.signature_key is not None:
            pairs = [entry.partition("=") for entry in value.split(settings.signature_separator or ",")]
            entries = [found.strip() for key, _, found in pairs if key.strip() == settings.signature_key]
            stamps = [found for key, _, found in pairs if key.strip() == settings.timestamp_key]
            stamp = stamps[0] if stamps else None
        elif settings.signature_separator == " ":
            entries = value.split()
        else:
            entries = value.split(settings.signature_separator) if settings.signature_separator else [value]
        prefix = settings.signature_prefix
        stripped = (entry.strip() for entry in entries)
        return [entry[len(prefix) :] for entry in stripped if entry and entry.startswith(prefix)], stamp

    def _timestamp(
        self, headers: Mapping[str, str], listed: str | None, now: float | None
    ) -> tuple[str | None, float | None]:
        """The timestamp as sent and in seconds (both None when none is signed), checked against the tolerance."""
        settings = self.settings
        if not settings.timed:
            return None, None
        if settings.timestamp_header is not None:
            where, text = settings.timestamp_header, _bounded(header(headers, settings.timestamp_header), "timestamp")
        else:
            where, text = f"{settings.signature_header} entry {settings.timestamp_key}", listed
        if text is None or not text.strip():
            raise SignatureError(f"{where} is missing", reason="timestamp_missing")
        stamp = text.strip()
        if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 16:
            raise SignatureError(
                f"{where} must be Unix time in {settings.timestamp_unit}, digits only", reason="timestamp_malformed"
            )
        stamp_ms = int(stamp) if settings.timestamp_unit == MILLISECONDS else int(stamp) * 1000
        signing.check_freshness(stamp_ms, tolerance=self.tolerance, now=now)
        return stamp, stamp_ms / 1000

    def _piece(self, kind: str, value: str, timestamp: str | None, target: RequestTarget | None) -> str:
        if kind == "text":
            return value
        if kind == "timestamp":
            assert timestamp is not None  # a signed {timestamp} makes the settings timed
            return timestamp
        assert target is not None  # signed_content refused a missing target
        if kind == "method":
            return target.method
        if not target.url:
            raise SignatureError("the request's URL is unknown (no domain in the event)", reason="url_unknown")
        return self._decode_url(target.url)

    def _signed_header(self, headers: Mapping[str, str], name: str) -> str:
        value = _bounded(header(headers, name), "signed")
        if value is None:
            raise SignatureError(f"{name} header is signed but missing", reason="signed_header_missing")
        return value

    def _decode_url(self, url: str) -> str:
        if not self._decoded:
            return url

        def decoded(match: re.Match[str]) -> str:
            char = chr(int(match.group(1), 16))
            return char if char in self._decoded else match.group(0)

        return _ESCAPE.sub(decoded, url)

    def _digest(self, key: bytes, content: bytes) -> str:
        digest = hmac.digest(key, content, self._algorithm)  # hmac.new(...).digest() in one call, ~1 µs less
        return digest.hex() if self.settings.encoding == "hex" else base64.b64encode(digest).decode("ascii")

    def _shape(self) -> str:
        settings = self.settings
        if settings.signature_key is not None:
            return f"(no {settings.signature_key}={settings.signature_prefix}<signature> entry)"
        return f"starting with {settings.signature_prefix!r}" if settings.signature_prefix else "(it is blank)"

    def __repr__(self) -> str:
        return f"HmacVerifier({self.scheme!r}, <{len(self._keys)} secret(s)>, tolerance={self.tolerance:g})"


# --- static credentials ---------------------------------------------------------------------------


class ApiKeyScheme(NamedTuple):
    """Where an ``api-key`` sender puts its key: ``key_header``, after ``key_prefix`` (``Bearer ``)."""

    key_header: str = ""
    #: Text before the key in the header (compared ignoring case, as HTTP auth schemes are).
    key_prefix: str = ""

    def problems(self) -> list[tuple[str, str]]:
        """Everything wrong, as (auth block key, message); empty when none."""
        if not self.key_header:
            return [("keyHeader", 'required: the header that carries the key, e.g. "X-Api-Key"')]
        if not _HEADER_NAME.fullmatch(self.key_header):
            return [("keyHeader", f"{self.key_header!r} is not a header name")]
        if len(self.key_prefix) > 64:
            return [("keyPrefix", "must be at most 64 characters")]
        return []


class BasicAuthVerifier:
    """``Authorization: Basic <base64 of user:password>``, each secret being ``user:password``.

    A static credential: it does not protect the body and has no replay window (see the module docstring).
    """

    scheme = BASIC_AUTH

    def __init__(self, secrets: Sequence[str], *, tolerance: float = DEFAULT_TOLERANCE_SECONDS) -> None:
        checked = _check_secrets(secrets, self.scheme)
        for index, secret in enumerate(checked):
            if ":" not in secret:
                raise ConfigError(f"basic-auth sender secret #{index + 1} must be <user>:<password>")
        self._credentials = tuple(secret.encode("utf-8") for secret in checked)
        self.tolerance = _check_tolerance(tolerance)

    def sign_headers(self) -> dict[str, str]:
        """The header a sender adds (with the first secret)."""
        return {"Authorization": "Basic " + base64.b64encode(self._credentials[0]).decode("ascii")}

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: float | None = None,
        target: RequestTarget | None = None,
    ) -> SignedDelivery:
        value = _bounded(header(headers, "Authorization"), "credentials")
        if value is None or not value.strip():
            raise SignatureError("Authorization header is missing", reason="credentials_missing")
        kind, _, token = value.strip().partition(" ")
        if kind.lower() != "basic":
            raise SignatureError("Authorization does not hold Basic credentials", reason="credentials_malformed")
        try:
            given = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("Basic credentials are not base64", reason="credentials_malformed") from None
        _match_credential(self._credentials, given)
        return _body_delivery(self.scheme, body, now)

    def __repr__(self) -> str:
        return f"BasicAuthVerifier(<{len(self._credentials)} secret(s)>)"


class ApiKeyVerifier:
    """The secret itself in a named header (``X-Api-Key: <secret>``, ``Authorization: Bearer <secret>``).

    A static credential: it does not protect the body and has no replay window (see the module docstring).
    """

    scheme = API_KEY

    def __init__(
        self, secrets: Sequence[str], settings: ApiKeyScheme, *, tolerance: float = DEFAULT_TOLERANCE_SECONDS
    ) -> None:
        problems = settings.problems()
        if problems:
            raise ConfigError("api-key settings: " + "; ".join(f"{key}: {message}" for key, message in problems))
        self.settings = settings
        self._keys = tuple(secret.encode("utf-8") for secret in _check_secrets(secrets, self.scheme))
        self.tolerance = _check_tolerance(tolerance)

    def sign_headers(self) -> dict[str, str]:
        """The header a sender adds (with the first secret)."""
        return {self.settings.key_header: self.settings.key_prefix + self._keys[0].decode("utf-8")}

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: float | None = None,
        target: RequestTarget | None = None,
    ) -> SignedDelivery:
        name, prefix = self.settings.key_header, self.settings.key_prefix
        value = _bounded(header(headers, name), "credentials")
        if value is None or not value.strip():
            raise SignatureError(f"{name} header is missing", reason="credentials_missing")
        if value[: len(prefix)].lower() != prefix.lower():
            raise SignatureError(f"{name} does not start with {prefix!r}", reason="credentials_malformed")
        _match_credential(self._keys, value[len(prefix) :].strip().encode("utf-8", "surrogatepass"))
        return _body_delivery(self.scheme, body, now)

    def __repr__(self) -> str:
        return f"ApiKeyVerifier(<{len(self._keys)} secret(s)>, header={self.settings.key_header!r})"


def _match_credential(secrets: tuple[bytes, ...], given: bytes) -> None:
    matched = False
    for secret in secrets:
        # Every secret is compared, so timing tells nothing about which (if any) matched.
        matched |= hmac.compare_digest(secret, given)
    if not matched:
        raise SignatureError("the credentials match no active sender secret", reason="credentials_mismatch")


def _body_delivery(scheme: str, body: bytes, now: float | None) -> SignedDelivery:
    # Every request carries the same credential, so only the body tells one delivery from another.
    current = time.time() if now is None else now
    delivery_id = "body:" + hashlib.sha256(body).hexdigest()
    return SignedDelivery(scheme, delivery_id, math.ceil(current) + UNTIMED_CLAIM_SECONDS)


# --- choosing a verifier --------------------------------------------------------------------------

#: What the ``hmac`` and ``api-key`` schemes need beyond their secrets (the auth block's other keys).
SchemeSettings: TypeAlias = HmacScheme | ApiKeyScheme

#: The verifier class for each scheme that needs nothing but its secrets and tolerance.
VERIFIERS: dict[str, type[HumanosHmacVerifier] | type[StandardWebhooksVerifier] | type[BasicAuthVerifier]] = {
    HUMANOS_HMAC: HumanosHmacVerifier,
    STANDARD_WEBHOOKS: StandardWebhooksVerifier,
    BASIC_AUTH: BasicAuthVerifier,
}


def verifier_for(
    scheme: str,
    secrets: Sequence[str],
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    settings: SchemeSettings | None = None,
) -> SenderVerifier:
    """The verifier for ``scheme`` over ``secrets``; ConfigError for an unknown scheme or bad secrets or settings.

    ``settings`` are the auth block's: required for ``hmac`` (an HmacScheme) and ``api-key`` (an ApiKeyScheme).
    """
    kind = VERIFIERS.get(scheme)
    if kind is not None:
        return kind(secrets, tolerance=tolerance)
    if scheme in PRESETS:
        return HmacVerifier(secrets, PRESETS[scheme], tolerance=tolerance, scheme=scheme)
    if scheme == HMAC:
        if not isinstance(settings, HmacScheme):
            raise ConfigError("the hmac scheme needs its settings (signatureHeader, signed ...) from the auth block")
        return HmacVerifier(secrets, settings, tolerance=tolerance)
    if scheme == API_KEY:
        if not isinstance(settings, ApiKeyScheme):
            raise ConfigError("the api-key scheme needs its settings (keyHeader) from the auth block")
        return ApiKeyVerifier(secrets, settings, tolerance=tolerance)
    raise ConfigError(f"unknown sender authentication scheme {scheme!r}; use one of {', '.join(SCHEMES)}")


def protects_body(scheme: str) -> bool:
    """Whether ``scheme`` binds the credential to the body: False for static credentials (basic-auth, api-key).

    With those, anyone who sees one request (a log, a proxy) can send any body, at any later time.
    """
    return scheme not in STATIC_SCHEMES


def signs_timestamp(scheme: str, settings: SchemeSettings | None = None) -> bool:
    """Whether ``scheme`` signs a timestamp, so a captured request stops verifying after the tolerance."""
    if scheme in (HUMANOS_HMAC, STANDARD_WEBHOOKS):
        return True
    hmac_settings = PRESETS.get(scheme) or (settings if scheme == HMAC else None)
    return isinstance(hmac_settings, HmacScheme) and hmac_settings.timed


# --- reading an auth block ------------------------------------------------------------------------


class AuthFields(NamedTuple):
    """What an auth block's keys besides ``scheme`` and ``secretKey`` say, and what is wrong with them."""

    settings: SchemeSettings | None
    #: Seconds; None: the ingest function's SIGNATURE_TOLERANCE_SECONDS.
    tolerance: float | None
    #: (auth block key, what is wrong and how to fix it), for ``mappings check``.
    problems: list[tuple[str, str]]


def fields_for(scheme: str) -> tuple[str, ...]:
    """The auth block keys ``scheme`` takes besides ``scheme`` and ``secretKey``."""
    if scheme == HMAC:
        return (TOLERANCE, *HMAC_FIELDS)
    if scheme == API_KEY:
        return API_KEY_FIELDS
    return (TOLERANCE,) if signs_timestamp(scheme) else ()


def read_auth_fields(scheme: str, raw: Mapping[str, Any]) -> AuthFields:
    """Read and check the keys of an auth block for ``scheme`` (a known one); every problem is reported."""
    problems = [(key, _misplaced(scheme, key)) for key in raw if key in ALL_FIELDS and key not in fields_for(scheme)]
    settings: SchemeSettings | None = None
    if scheme == HMAC:
        settings = HmacScheme(**_strings(raw, HMAC_FIELDS, problems))
        problems += [found for found in settings.problems() if not _typed_badly(found[0], raw)]
        if TOLERANCE in raw and not settings.timed:
            problems.append((TOLERANCE, "applies only with timestampHeader or timestampKey; remove it"))
    elif scheme == API_KEY:
        settings = ApiKeyScheme(**_strings(raw, {"keyHeader": "key_header", "keyPrefix": "key_prefix"}, problems))
        problems += [found for found in settings.problems() if not _typed_badly(found[0], raw)]
    tolerance = None
    if TOLERANCE in raw and TOLERANCE in fields_for(scheme):
        tolerance = _tolerance(raw[TOLERANCE], problems)
    return AuthFields(settings if not problems else None, tolerance, problems)


def _strings(raw: Mapping[str, Any], fields: Mapping[str, str], problems: list[tuple[str, str]]) -> dict[str, str]:
    values = {}
    for key, attribute in fields.items():
        if key not in raw:
            continue
        value = raw[key]
        if not isinstance(value, str):
            problems.append((key, f"must be a string, got {_kind(value)}"))
        elif key == "algorithm" and value.lower().replace("-", "") in ALGORITHMS:
            values[attribute] = value.lower().replace("-", "")  # "SHA-256" is what providers' docs write
        else:
            values[attribute] = value
    return values


def _typed_badly(key: str, raw: Mapping[str, Any]) -> bool:
    # A key that is not a string was reported as such, and its default then fills the settings.
    return key in raw and not isinstance(raw[key], str)


def _tolerance(value: Any, problems: list[tuple[str, str]]) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_TOLERANCE_SECONDS:
        shown = value if isinstance(value, int | float) and not isinstance(value, bool) else _kind(value)
        problems.append(
            (TOLERANCE, f"must be a number of seconds above 0 and at most {MAX_TOLERANCE_SECONDS}, got {shown}")
        )
        return None
    return float(value)


def _misplaced(scheme: str, key: str) -> str:
    if key == TOLERANCE:
        return f"{scheme} signs no timestamp, so there is no tolerance to set; remove it"
    if key in HMAC_FIELDS and scheme in PRESETS:
        return (
            f"the {scheme} preset fixes how requests are signed; remove {key}, or describe the signature "
            'yourself with "scheme": "hmac"'
        )
    owner = HMAC if key in HMAC_FIELDS else API_KEY
    return f'{key} belongs to the "{owner}" scheme, not {scheme}; remove it'


def _one_of(what: str, value: str, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(value.lower(), allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} {value!r}; use one of {', '.join(allowed)}{hint}"


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", bool: "a boolean", type(None): "null", str: "a string"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a date or time")


def _utf8(text: str) -> bytes:
    # Header values and URLs as API Gateway handed them; a lone surrogate stays bytes (and so never matches).
    return text.encode("utf-8", "surrogatepass")


def _check_secrets(secrets: Sequence[str], scheme: str) -> tuple[str, ...]:
    if isinstance(secrets, str) or not isinstance(secrets, Sequence):
        raise ConfigError(f"{scheme} sender secrets must be a list of strings")
    if not secrets:
        raise ConfigError(f"{scheme} needs at least one sender secret")
    for index, secret in enumerate(secrets):
        if not isinstance(secret, str) or not secret.strip():
            raise ConfigError(f"{scheme} sender secret #{index + 1} must be a non-empty string")
    return tuple(secrets)


def _check_tolerance(tolerance: float) -> float:
    if not tolerance > 0:
        raise ConfigError(f"signature tolerance must be greater than 0 seconds (got {tolerance})")
    return float(tolerance)


def _decode_whsec(secret: str, index: int) -> bytes:
    where = f"standard-webhooks sender secret #{index + 1}"
    if not secret.startswith(WHSEC_PREFIX):
        raise ConfigError(f"{where} must start with {WHSEC_PREFIX!r} followed by base64 (whsec_<base64>)")
    try:
        key = base64.b64decode(secret[len(WHSEC_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where} is not valid base64 after {WHSEC_PREFIX!r}") from None  # never quote it
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ConfigError(
            f"{where} decodes to {len(key)} bytes; Standard Webhooks keys are {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes"
        )
    return key


def _stale_after(timestamp: float, tolerance: float) -> int:
    return math.ceil(timestamp + tolerance)


def _bounded(value: str | None, what: str) -> str | None:
    if value is not None and len(value) > MAX_HEADER_CHARS:
        raise SignatureError(
            f"signature {what} header is longer than {MAX_HEADER_CHARS} characters", reason="header_too_long"
        )
    return value


def _parse_seconds(value: str | None) -> int:
    if value is None or not value.strip():
        raise SignatureError("webhook-timestamp header is missing", reason="timestamp_missing")
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise SignatureError("webhook-timestamp must be Unix time in seconds (10 digits)", reason="timestamp_malformed")
    return int(text)
