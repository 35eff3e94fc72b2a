"""The mapping file: parsing (JSON or TOML), validation of everything at once, and compilation.

Every problem in the file is reported together, each as
``<file>: <path inside>: <what is wrong>; <how to fix it>``, with paths written the way a reader
finds them (``sources.crm.rules["contact.created"][0].request.contacts``). The result is compiled
once per container (:func:`load_mapping_cached`) and never touched again on the per-event path.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from pathlib import Path
from typing import Any

from humanos_bridge.core import sender_auth
from humanos_bridge.core.body_validation import (
    KNOWN_API_VERSIONS,
    NESTED_FIELDS,
    Problem,
    body_fields,
    check_field,
    field_name_problems,
    item_field_problems,
    json_type,
    required_problems,
    unknown_field_problem,
)
from humanos_bridge.core.errors import ConfigError
from humanos_bridge.mapping.engine import MappingConfig
from humanos_bridge.mapping.expressions import Expression, ExpressionSyntaxError, compile_expression, header_names
from humanos_bridge.mapping.fan_out import contacts_from_arrays
from humanos_bridge.mapping.model import (
    EVENT_ID_DEFAULTS,
    MAX_OTP_RESENDS,
    OTP_FAILED_ACTIONS,
    OTP_NONE,
    OTP_RESEND,
    UNMAPPABLE_CHOICES,
    UNMATCHED_CHOICES,
    AuthConfig,
    OtpFailedPolicy,
    RuleConfig,
    SourceConfig,
    SourceMatch,
)
from humanos_bridge.mapping.providers import default_unmappable, with_provider_identity
from humanos_bridge.mapping.templates import (
    EXPRESSION_PREFIX,
    Arr,
    Const,
    Node,
    Obj,
    TemplateError,
    child_path,
    compile_template,
    is_constant,
    render,
)

#: Mapping file format versions this code reads.
FILE_VERSIONS: tuple[int, ...] = (1,)
TOP_KEYS: tuple[str, ...] = ("version", "apiVersion", "sources", "description")
SOURCE_KEYS: tuple[str, ...] = (
    "eventType",
    "eventId",
    "eventIdDefault",
    "unmatched",
    "unmappable",
    "auth",
    "headers",
    "match",
    "messageGroupId",
    "onOtpFailed",
    "rules",
    "description",
)
MATCH_KEYS: tuple[str, ...] = ("eventBridgeSource", "snsTopicArn", "when")
#: At most this many request headers are kept with an event (they travel in its queue message).
MAX_HEADERS = 10
#: An HTTP header name (RFC 9110 token).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")
#: Parts of header names that carry credentials: never kept, so never in a queue message or a mapping.
_SECRET_HEADER_PARTS = ("authorization", "cookie", "signature", "hmac", "secret", "token", "api-key", "apikey")
AUTH_KEYS: tuple[str, ...] = ("scheme", "secretKey")
OTP_FAILED_KEYS: tuple[str, ...] = ("action", "maxResends")
RULE_KEYS: tuple[str, ...] = (
    "name",
    "when",
    "forEach",
    "request",
    "internalId",
    "idempotencyKey",
    "allContactsInOneRequest",
    "description",
)
# Source names appear in URL paths (/events/{source}) and SQS message attributes.
_SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# Rule names are part of idempotency keys, so they stay short and plain.
_RULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._#-]{0,63}")


class _Problems:
    """Collects every problem of one file, then raises them together."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.lines.append(f"{self.file}: {path or '(top level)'}: {message}")

    def raise_if_any(self) -> None:
        if self.lines:
            raise ConfigError("\n".join(self.lines), details={"file": self.file, "errors": list(self.lines)})


def load_mapping(path: str | Path) -> MappingConfig:
    """Read, validate and compile a mapping file (``.json`` or ``.toml``).

    Raises
    ------
    ConfigError
        Listing every problem of the file, one per line; ``.details["errors"]`` holds the list.
    """
    file = str(path)
    return parse_mapping(_read(Path(path), file), file=file)


@functools.lru_cache(maxsize=8)
def load_mapping_cached(path: str | Path) -> MappingConfig:
    """:func:`load_mapping` once per container and path (``load_mapping_cached.cache_clear()`` in tests)."""
    return load_mapping(path)


def _read(path: Path, file: str) -> Any:
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise ConfigError(f"{file}: unsupported file type {suffix or '(none)'!r}; write the mapping as .json or .toml")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file; check the path (MAPPING_FILE in the functions)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not UTF-8 text; save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot be read ({exc.strerror}); check the path and permissions") from None
    return _parse_toml(text, file) if suffix == ".toml" else _parse_json(text, file)


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json keeps the last of two equal keys silently; for a mapping that would drop a rule unseen.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_json(text: str, file: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_unique_object, parse_constant=_refuse_constant)
    except _DuplicateKey as exc:
        raise ConfigError(
            f"{file}: key {exc.key!r} appears twice in one object; merge the two entries (JSON keeps only the last)"
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{file}: line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg}); fix the syntax there"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"{file}: {exc}; write null or a number") from None


def _parse_toml(text: str, file: str) -> Any:
    import tomllib  # here: the deployed mapping is JSON, and tomllib costs 4 ms of every cold start

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML ({exc}); fix the syntax there") from None


def parse_mapping(document: Any, *, file: str = "<mapping>") -> MappingConfig:
    """Validate and compile an already-parsed mapping document (what :func:`load_mapping` reads)."""
    problems = _Problems(file)
    if not isinstance(document, dict):
        problems.add("", f"must be an object with version, apiVersion and sources, got {json_type(document)}")
        problems.raise_if_any()
    _check_keys(document, TOP_KEYS, "", problems)
    _check_file_version(document, problems)
    api_version = _api_version(document, problems)
    sources = _sources(document, api_version, problems)
    problems.raise_if_any()
    assert api_version is not None  # a missing or bad apiVersion was a problem above
    return MappingConfig(api_version=api_version, file=file, _sources=sources)


#: Keys people write from other tools' vocabulary, and this file's word for them.
_SYNONYMS = {
    "condition": "when",
    "foreach": "forEach",
    "for_each": "forEach",
    "each": "forEach",
    "iterator": "forEach",
    "map": "forEach",
    "if": "when",
    "filter": "when",
    "match": "when",
    "body": "request",
    "template": "request",
    "key": "idempotencyKey",
    "idempotency_key": "idempotencyKey",
    "dedupKey": "idempotencyKey",
    "internal_id": "internalId",
    "event_type": "eventType",
    "type": "eventType",
    "event_id": "eventId",
    "id": "eventId",
}


def _check_keys(raw: dict[str, Any], valid: tuple[str, ...], base: str, problems: _Problems) -> None:
    for key in raw:
        if key in valid:
            continue
        if _SYNONYMS.get(key) in valid:
            problems.add(child_path(base, key), f"unknown key; it is called {_SYNONYMS[key]!r} here")
            continue
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(valid)}"
        problems.add(child_path(base, key), f"unknown key; {hint}")


def _check_file_version(document: dict[str, Any], problems: _Problems) -> None:
    if "version" not in document:
        problems.add("version", 'required; add "version": 1')
        return
    version = document["version"]
    if isinstance(version, bool) or version not in FILE_VERSIONS:
        problems.add("version", f"unsupported mapping file version {version!r}; this bridge reads version 1")


def _api_version(document: dict[str, Any], problems: _Problems) -> str | None:
    value = document.get("apiVersion")
    if value is None:
        problems.add("apiVersion", f'required; add "apiVersion": "{KNOWN_API_VERSIONS[0]}" (the Humanos API version)')
        return None
    if not isinstance(value, str) or value not in KNOWN_API_VERSIONS:
        shown = repr(value) if isinstance(value, str) else f"a {json_type(value)}"
        problems.add(
            "apiVersion", f"unsupported Humanos API version {shown}; use one of {', '.join(KNOWN_API_VERSIONS)}"
        )
        return None
    return value


def _sources(document: dict[str, Any], api_version: str | None, problems: _Problems) -> dict[str, SourceConfig]:
    raw = document.get("sources")
    if raw is None:
        problems.add("sources", 'required; add the sending systems, e.g. "sources": {"crm": {...}}')
        return {}
    if not isinstance(raw, dict) or not raw:
        got = "empty" if isinstance(raw, dict) else f"a {json_type(raw)}"
        problems.add("sources", f"must be an object of sources by name, got {got}; add at least one source")
        return {}
    sources = {}
    for name, spec in raw.items():
        source = _source(name, spec, api_version, problems)
        if source is not None:
            sources[name] = source
    _check_matches(sources, problems)
    return sources


def _source(name: str, raw: Any, api_version: str | None, problems: _Problems) -> SourceConfig | None:
    path = child_path("sources", name)
    if not _SOURCE_NAME.fullmatch(name):
        problems.add(path, "source names are 1 to 64 letters, digits, '-' or '_' (they appear in URLs); rename it")
    if not isinstance(raw, dict):
        problems.add(path, f"must be an object (eventType, eventId, rules...), got {json_type(raw)}")
        return None
    raw = with_provider_identity(raw)  # a provider preset's eventType, eventId and headers, where left out
    _check_keys(raw, SOURCE_KEYS, path, problems)
    event_type = _expression_field(raw, "eventType", path, problems, required=True)
    event_id = _expression_field(raw, "eventId", path, problems, required=False)
    event_id_default = _choice(raw, "eventIdDefault", (*EVENT_ID_DEFAULTS, None), None, path, problems)
    if "eventId" not in raw and event_id_default is None:
        problems.add(
            child_path(path, "eventId"),
            'required unless eventIdDefault is "content-hash"; give the JMESPath of the event\'s id, e.g. "id"',
        )
    unmatched = _choice(raw, "unmatched", UNMATCHED_CHOICES, "reject", path, problems)
    auth = _auth(raw.get("auth"), name, child_path(path, "auth"), problems)
    unmappable = _choice(raw, "unmappable", UNMAPPABLE_CHOICES, default_unmappable(auth), path, problems)
    headers = _headers(raw.get("headers", []), child_path(path, "headers"), problems)
    match = _match(raw.get("match"), child_path(path, "match"), problems)
    message_group_id = _expression_field(raw, "messageGroupId", path, problems, required=False)
    rules = _rules(raw.get("rules"), child_path(path, "rules"), api_version, problems)
    on_otp_failed = _on_otp_failed(raw.get("onOtpFailed"), rules, child_path(path, "onOtpFailed"), problems)
    if event_type is None:
        return None
    identity = [
        (child_path(path, "eventType"), event_type),
        (child_path(path, "eventId"), event_id),
        (child_path(path, "messageGroupId"), message_group_id),
    ]
    used = [(where, e) for where, e in identity if e is not None]
    used += [(where, e) for group in rules.values() for rule in group for where, e, _ in rule.expressions()]
    _check_header_calls(used, headers, path, problems)
    return SourceConfig(
        name=name,
        event_type=event_type,
        event_id=event_id,
        event_id_default=event_id_default,
        unmatched=str(unmatched),
        auth=auth,
        rules=rules,
        headers=headers,
        match=match,
        message_group_id=message_group_id,
        on_otp_failed=on_otp_failed,
        unmappable=str(unmappable),
    )


def _on_otp_failed(
    raw: Any, rules: dict[str, tuple[RuleConfig, ...]], path: str, problems: _Problems
) -> OtpFailedPolicy:
    """``onOtpFailed``: ``{"action": "none"}`` (the default) or ``{"action": "resend", "maxResends": 1..3}``."""
    example = f'{{"action": "{OTP_RESEND}", "maxResends": 1}}'
    if raw is None:
        return OtpFailedPolicy()
    if not isinstance(raw, dict):
        problems.add(path, f"must be an object such as {example}, got {json_type(raw)}")
        return OtpFailedPolicy()
    _check_keys(raw, OTP_FAILED_KEYS, path, problems)
    actions = " or ".join(json.dumps(action) for action in OTP_FAILED_ACTIONS)
    action = raw.get("action")
    if action not in OTP_FAILED_ACTIONS or not isinstance(action, str):
        got = "nothing" if action is None else _describe(action)
        problems.add(child_path(path, "action"), f"must be {actions}, got {got}; e.g. {example}")
        return OtpFailedPolicy()
    if action == OTP_NONE:
        if "maxResends" in raw:
            problems.add(
                child_path(path, "maxResends"),
                f'applies to "action": "{OTP_RESEND}" only; remove it, or set the action to "{OTP_RESEND}"',
            )
        return OtpFailedPolicy()
    count = raw.get("maxResends", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_OTP_RESENDS:
        problems.add(
            child_path(path, "maxResends"),
            f"must be a whole number from 1 to {MAX_OTP_RESENDS} (resend calls per request and contact), "
            f"got {json.dumps(count) if isinstance(count, int | float) else _describe(count)}",
        )
        return OtpFailedPolicy()
    # The receiver reads a webhook's source back from the internalId the rule sent (receive.origin): only the
    # default one, ``<source>:<event id>:<rule>``, names it. Without such a rule no resend could ever happen.
    if rules and not any(
        rule.send_internal_id and rule.internal_id is None and rule.idempotency_key is None
        for group in rules.values()
        for rule in group
    ):
        problems.add(
            path,
            "no rule of this source sends the default internalId (<source>:<event id>:<rule>), which is how the "
            "receiver knows an otp.failed webhook is this source's, so no code would ever be resent; leave "
            "internalId and idempotencyKey unset on the rules whose SMS codes should be resent",
        )
    return OtpFailedPolicy(OTP_RESEND, count)


def _match(raw: Any, path: str, problems: _Problems) -> SourceMatch | None:
    """``match``: how a queued event that names no source is recognised as this one's."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        problems.add(path, f"must be an object with any of {', '.join(MATCH_KEYS)}")
        return None
    _check_keys(raw, MATCH_KEYS, path, problems)
    return SourceMatch(
        eventbridge_sources=_names(raw, "eventBridgeSource", path, problems),
        sns_topics=_names(raw, "snsTopicArn", path, problems, prefix="arn:"),
        when=_expression_field(raw, "when", path, problems, required=False),
    )


def _names(raw: dict[str, Any], key: str, base: str, problems: _Problems, *, prefix: str = "") -> tuple[str, ...]:
    value = raw.get(key, [])
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and n.startswith(prefix) and n for n in names):
        what = "ARN" if prefix else "name"
        problems.add(child_path(base, key), f"must be a non-empty {what} or a list of them")
        return ()
    return tuple(names)


def _check_matches(sources: dict[str, SourceConfig], problems: _Problems) -> None:
    """Two sources that could both take one event are refused: resolution is never a coin toss."""
    claimed: dict[tuple[str, str], str] = {}
    by_body = []
    for name, source in sources.items():
        match = source.match
        if match is None:
            continue
        values = [("eventBridgeSource", v) for v in match.eventbridge_sources]
        values += [("snsTopicArn", v) for v in match.sns_topics]
        for key, value in values:
            other = claimed.setdefault((key, value), name)
            if other != name:
                problems.add(
                    child_path(child_path(child_path("sources", name), "match"), key),
                    f"{value} is also matched by source {other}; an event must belong to one source",
                )
        if match.when is not None:
            by_body.append(name)
    if len(by_body) > 1:
        problems.add(
            child_path(child_path(child_path("sources", by_body[1]), "match"), "when"),
            f"sources {' and '.join(by_body)} both match by body (match.when), and an event could satisfy both; "
            "keep one, and recognise the others by their EventBridge source, SNS topic or a source attribute",
        )


def _headers(raw: Any, path: str, problems: _Problems) -> tuple[str, ...]:
    """The request headers kept with each event: names only, never one that carries a credential."""
    if not isinstance(raw, list) or not all(isinstance(name, str) for name in raw):
        problems.add(path, 'must be a list of header names, e.g. ["X-Shopify-Topic", "X-Shopify-Webhook-Id"]')
        return ()
    if len(raw) > MAX_HEADERS:
        problems.add(path, f"at most {MAX_HEADERS} headers are kept with an event; keep the ones the rules read")
    kept: list[str] = []
    for index, name in enumerate(raw):
        where = f"{path}[{index}]"
        lowered = name.lower()
        if not _HEADER_NAME.fullmatch(name):
            problems.add(where, "not an HTTP header name (letters, digits and -, up to 64 characters)")
        elif any(part in lowered for part in _SECRET_HEADER_PARTS):
            problems.add(
                where,
                f"{name} looks like a credential, and kept headers travel in the queue message; the sender's "
                "signature is checked by auth, so leave it out",
            )
        elif lowered in kept:
            problems.add(where, f"{name} is listed twice (header names are case-insensitive)")
        else:
            kept.append(lowered)
    return tuple(kept)


def _check_header_calls(
    used: list[tuple[str, Expression]], headers: tuple[str, ...], path: str, problems: _Problems
) -> None:
    """Every ``header('Name')`` names a header the source keeps: anything else would read null forever."""
    for where, expression in used:
        for name in header_names(expression):
            if name is None:
                problems.add(where, "header() takes the header's name as a literal string: header('X-Shopify-Topic')")
            elif name.lower() not in headers:
                problems.add(
                    where,
                    f"header('{name}') reads a header the source does not keep; add \"{name}\" to "
                    f"{child_path(path, 'headers')}",
                )


def _expression_field(
    raw: dict[str, Any], key: str, base: str, problems: _Problems, *, required: bool
) -> Expression | None:
    path = child_path(base, key)
    if key not in raw:
        if required:
            problems.add(path, 'required; give the JMESPath that finds it in the event, e.g. "type"')
        return None
    text = raw[key]
    if not isinstance(text, str):
        problems.add(path, f"must be a JMESPath string, got {json_type(text)}")
        return None
    try:
        return compile_expression(text)
    except ExpressionSyntaxError as exc:
        if text.startswith(EXPRESSION_PREFIX):
            fix = f"{key} is always JMESPath, so drop the leading '='"
        else:
            fix = "fix the expression (syntax: https://jmespath.org/specification.html)"
        problems.add(path, f"{exc.message}; {fix}" if ";" not in exc.message else exc.message)
        return None


def _choice(
    raw: dict[str, Any], key: str, allowed: tuple[Any, ...], default: Any, base: str, problems: _Problems
) -> Any:
    value = raw.get(key, default)
    if value in allowed and (value is None or isinstance(value, str)):
        return value
    shown = " or ".join("null" if a is None else json.dumps(a) for a in allowed)
    problems.add(child_path(base, key), f"must be {shown}, got {_describe(value)}")
    return default


def _describe(value: Any) -> str:
    return repr(value) if isinstance(value, str) else f"a {json_type(value)}"


def _auth(raw: Any, source: str, path: str, problems: _Problems) -> AuthConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.add(path, f'must be an object such as {{"scheme": "humanos-hmac"}}, got {json_type(raw)}')
        return None
    scheme = raw.get("scheme")
    if not isinstance(scheme, str) or scheme not in sender_auth.SCHEMES:
        _check_keys(raw, AUTH_KEYS + sender_auth.ALL_FIELDS, path, problems)
        close = difflib.get_close_matches(scheme, sender_auth.SCHEMES, n=1) if isinstance(scheme, str) else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        got = "nothing" if scheme is None else _describe(scheme)
        problems.add(child_path(path, "scheme"), f"must be one of {', '.join(sender_auth.SCHEMES)}, got {got}{hint}")
        return None
    # Keys another scheme takes are reported by read_auth_fields, which says which scheme takes them.
    unknown = {key: value for key, value in raw.items() if key not in sender_auth.ALL_FIELDS}
    _check_keys(unknown, AUTH_KEYS + sender_auth.fields_for(scheme), path, problems)
    fields = sender_auth.read_auth_fields(scheme, raw)
    for key, message in fields.problems:
        problems.add(child_path(path, key), message)
    secret_key = raw.get("secretKey", source)
    if not isinstance(secret_key, str) or not secret_key:
        problems.add(child_path(path, "secretKey"), "must be a non-empty string: the key in the sender-secrets JSON")
        return None
    if fields.problems:
        return None
    # A preset's own settings, so whoever reads the mapping (the send command too) sees how the source signs.
    preset: sender_auth.SchemeSettings | None = sender_auth.PRESETS.get(scheme)
    settings = preset or fields.settings
    return AuthConfig(scheme=scheme, secret_key=secret_key, settings=settings, tolerance=fields.tolerance)


def _rules(raw: Any, path: str, api_version: str | None, problems: _Problems) -> dict[str, tuple[RuleConfig, ...]]:
    if raw is None:
        problems.add(path, 'required; add rules by event type, e.g. "rules": {"contact.created": [{...}]}')
        return {}
    if not isinstance(raw, dict) or not raw:
        got = "empty" if isinstance(raw, dict) else f"a {json_type(raw)}"
        problems.add(path, f"must be an object of rule lists by event type, got {got}; add at least one event type")
        return {}
    rules: dict[str, tuple[RuleConfig, ...]] = {}
    seen: dict[str, str] = {}
    for event_type, specs in raw.items():
        type_path = child_path(path, event_type)
        if not isinstance(specs, list) or not specs:
            got = "an empty list" if isinstance(specs, list) else f"a {json_type(specs)}"
            problems.add(type_path, f"must be a non-empty list of rules, got {got}; wrap a single rule in [...]")
            continue
        compiled = [
            _rule(spec, event_type, i, f"{type_path}[{i}]", api_version, problems) for i, spec in enumerate(specs)
        ]
        for rule in compiled:
            if rule is None:
                continue
            if rule.name in seen:
                problems.add(
                    child_path(rule.path, "name"),
                    f"rule name {rule.name!r} is also used at {seen[rule.name]}; names are part of the idempotency "
                    "key, so make them unique within the source",
                )
            seen.setdefault(rule.name, rule.path)
        rules[event_type] = tuple(r for r in compiled if r is not None)
    return rules


def _rule(
    raw: Any, event_type: str, index: int, path: str, api_version: str | None, problems: _Problems
) -> RuleConfig | None:
    if not isinstance(raw, dict):
        problems.add(path, f"must be a rule object with a request, got {json_type(raw)}")
        return None
    _check_keys(raw, RULE_KEYS, path, problems)
    name = _rule_name(raw, f"{event_type}#{index}", path, problems)
    when = _expression_field(raw, "when", path, problems, required=False)
    for_each = _expression_field(raw, "forEach", path, problems, required=False)
    together = raw.get("allContactsInOneRequest", False)
    if not isinstance(together, bool):
        problems.add(child_path(path, "allContactsInOneRequest"), f"must be true or false, got {json_type(together)}")
        together = False
    request = _request(raw, child_path(path, "request"), api_version, problems)
    send_internal_id, internal_id = _internal_id(raw, path, problems)
    idempotency_key = _idempotency_key(raw, path, problems)
    if request is None:
        return None
    if for_each is None and not together:
        for where in contacts_from_arrays(request):
            problems.add(
                where,
                "these contacts come from every item of an array, so different people would share one request; "
                'add "forEach" to the rule for one request per item, or "allContactsInOneRequest": true when '
                "they really sign one request together",
            )
    return RuleConfig(
        name=name,
        event_type=event_type,
        path=path,
        request=request,
        when=when,
        internal_id=internal_id,
        send_internal_id=send_internal_id,
        idempotency_key=idempotency_key,
        for_each=for_each,
        contacts_in_one_request=together,
    )


def _rule_name(raw: dict[str, Any], default: str, path: str, problems: _Problems) -> str:
    if "name" not in raw:
        return default
    name = raw["name"]
    if not isinstance(name, str) or not _RULE_NAME.fullmatch(name):
        problems.add(
            child_path(path, "name"),
            "rule names are 1 to 64 letters, digits, '.', '_', '#' or '-' "
            "(they are part of idempotency keys); rename it",
        )
        return default
    return name


def _compile(value: Any, path: str, problems: _Problems) -> Node:
    return _compile_checked(value, path, problems)[0]


def _compile_checked(value: Any, path: str, problems: _Problems) -> tuple[Node, list[str]]:
    """The compiled template and where its parts failed to compile (empty when it compiled cleanly)."""
    errors: list[TemplateError] = []
    node = compile_template(value, path, errors)
    for error in errors:
        problems.add(error.where, error.message)
    return node, [error.where for error in errors]


def _request(raw: dict[str, Any], path: str, api_version: str | None, problems: _Problems) -> Obj | None:
    if "request" not in raw:
        problems.add(path, "required; add the Humanos request body template")
        return None
    template = raw["request"]
    if not isinstance(template, dict):
        problems.add(path, f"must be an object (the request body template), got {json_type(template)}")
        return None
    node, failed = _compile_checked(template, path, problems)
    assert isinstance(node, Obj)  # a dict compiles to Obj
    _check_request(node, path, api_version, failed, problems)
    return node


def _check_request(node: Obj, path: str, api_version: str | None, failed: list[str], problems: _Problems) -> None:
    """What can be known before any event: required fields, field names and constant values.

    Every field is checked whatever else is wrong, so that one run of ``mappings check`` lists every problem:
    a field whose own expression failed to compile is the only one left out (it would read as null), and with
    a wrong ``apiVersion`` (already reported) each value is checked under a version that has its field.
    """
    present = {key for key, _ in node.items}
    if api_version is not None:
        for problem in required_problems(present - {"internalId"}, api_version):
            problems.add(problem.at(path).partition(": ")[0], problem.what)
    for key, child in node.items:
        where = child_path(path, key)
        if key == "internalId":
            problems.add(
                where,
                "set internalId on the rule, not inside request; move it up one level "
                "(it defaults to the idempotency key)",
            )
            continue
        version = api_version or _version_with_field(key)
        if version is None:  # unknown in every version, and apiVersion is wrong too
            found = [unknown_field_problem(key, key, _ALL_BODY_FIELDS)]
        elif is_constant(child) and not any(_under(place, where) for place in failed):
            found = [_with_expression_hint(p, child, key) for p in check_field(key, render(child, None), version)[1]]
        elif api_version is not None:
            found = field_name_problems(key, api_version) or _nested_key_problems(key, child)
        else:
            found = _nested_key_problems(key, child)
        for problem in found:
            problems.add(problem.at(path).partition(": ")[0], problem.what)


#: Every top-level body field of any API version, for a field name checked when apiVersion is wrong.
_ALL_BODY_FIELDS: tuple[str, ...] = tuple(
    dict.fromkeys(field for version in KNOWN_API_VERSIONS for field in body_fields(version))
)
#: Body fields that are lists of strings: a path written without '=' there is best read with as_list().
_STRING_LIST_FIELDS = ("contacts", "groupIds", "resourcesIds", "authorizedDIDs")


def _version_with_field(key: str) -> str | None:
    """The first API version whose body has ``key`` (the file's apiVersion being unusable)."""
    return next((version for version in KNOWN_API_VERSIONS if not field_name_problems(key, version)), None)


def _under(place: str, where: str) -> bool:
    """True when ``place`` is ``where`` or inside it (``where.x``, ``where[0]``)."""
    return place == where or place.startswith((f"{where}.", f"{where}["))


def _with_expression_hint(problem: Problem, child: Node, key: str) -> Problem:
    """``problem`` with a hint when the constant it is about reads like an expression missing its '='.

    ``"contacts": "data.contact.phone"`` is a constant (the text itself), so the body check only says
    "must be a list, got string": the missing '=' is the real mistake, and the message should say so.
    """
    text = _constant_strings(child, key).get(problem.where)
    if text is None or not _reads_like_expression(text):
        return problem
    fix = f"as_list({text})" if problem.where == key and key in _STRING_LIST_FIELDS else text
    return Problem(
        problem.where,
        f"{problem.what}; {json.dumps(text)} is sent as this very text: to read it from the event, start it "
        f"with '=': {json.dumps(EXPRESSION_PREFIX + fix)}",
    )


def _constant_strings(node: Node, where: str) -> dict[str, str]:
    """The constant strings under ``node`` by their place, written as body problems name it (``users[0].contact``)."""
    if isinstance(node, Const):
        return {where: node.value} if isinstance(node.value, str) else {}
    found: dict[str, str] = {}
    if isinstance(node, Obj):
        for key, child in node.items:
            found.update(_constant_strings(child, f"{where}.{key}"))
    elif isinstance(node, Arr):
        for index, child in enumerate(node.items):
            found.update(_constant_strings(child, f"{where}[{index}]"))
    return found


def _reads_like_expression(text: str) -> bool:
    """A path, projection or function call (``data.contact.phone``, ``as_list(phone)``), not a bare word.

    A bare word (``KYC``, ``document``) also compiles as JMESPath, but it is far likelier to be meant as text.
    Contacts, URLs and sentences do not compile, so no hint is ever given for them.
    """
    try:
        parsed = compile_expression(text).parsed.parsed
    except ExpressionSyntaxError:
        return False
    return isinstance(parsed, dict) and parsed.get("type") not in ("field", "literal", "current", "identity")


def _nested_key_problems(key: str, child: Node) -> list[Problem]:
    """Inside users[] / credentials[] / expectedDocIds[] items written as objects: field names, required
    fields, and the value of every field that is a constant (``"type": "payment-plan"`` beside an expression)."""
    spec = NESTED_FIELDS.get(key)
    if spec is None or not isinstance(child, Arr):
        return []
    fields, required = spec
    found: list[Problem] = []
    for index, item in enumerate(child.items):
        if not isinstance(item, Obj):
            continue
        names = [name for name, _ in item.items]
        where = f"{key}[{index}]"
        found.extend(Problem(f"{where}.{r}", "required; add it") for r in required if r not in names)
        found.extend(unknown_field_problem(f"{where}.{n}", n, fields) for n in names if n not in fields)
        for name, value in item.items:
            if name in fields and is_constant(value):
                problems = item_field_problems(key, name, render(value, None), f"{where}.{name}")
                found.extend(_with_expression_hint(p, child, key) for p in problems)
    return found


def _internal_id(raw: dict[str, Any], path: str, problems: _Problems) -> tuple[bool, Node | None]:
    if "internalId" not in raw:
        return True, None
    value = raw["internalId"]
    if value is None or value is False:  # TOML has no null: false says "send none" there
        return False, None
    if not isinstance(value, str) or not value:
        problems.add(child_path(path, "internalId"), 'must be a string, an "=expression" or null (send none)')
        return True, None
    return True, _compile(value, child_path(path, "internalId"), problems)


def _idempotency_key(raw: dict[str, Any], path: str, problems: _Problems) -> Node | None:
    if "idempotencyKey" not in raw:
        return None
    where = child_path(path, "idempotencyKey")
    value = raw["idempotencyKey"]
    if not isinstance(value, str) or not value.startswith(EXPRESSION_PREFIX) or value.startswith(EXPRESSION_PREFIX * 2):
        problems.add(
            where,
            'must be an "=expression": a constant gives every event the same key, so all but the first '
            "would be dropped as duplicates; e.g. \"=concat('crm:', id)\", or leave it out for the default",
        )
        return None
    return _compile(value, where, problems)
