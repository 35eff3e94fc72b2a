"""``humanos-bridge mappings init|check|preview``: start a mapping from a preset, validate a mapping file, or show
what an event becomes."""

from __future__ import annotations

import argparse
import difflib
import json
import shlex
import sys
import uuid
from pathlib import Path
from typing import Any, NamedTuple

from humanos_bridge.core import wire
from humanos_bridge.core.envelopes import Envelope, open_envelope
from humanos_bridge.core.errors import ConfigError, EventIgnored, MappingError, SerialisationError
from humanos_bridge.core.masking import mask_contact, mask_text
from humanos_bridge.mapping import MappedRequest, MappingConfig, load_mapping
from humanos_bridge.mapping.explain import Evaluation, RuleExplanation, explain_event
from humanos_bridge.mapping.fan_out import CONTACT_FIELDS
from humanos_bridge.mapping.lint import warnings
from humanos_bridge_local.cli import command_name
from humanos_bridge_local.senders import headers_read, parse_headers
from humanos_bridge_local.stack import ROOT

PRESETS_DIR = ROOT / "mappings" / "presets"
PRESET_SAMPLES = ROOT / "events" / "business" / "presets"
#: ``mappings init --preset NAME``: each preset's file in mappings/presets/ and its sample event in
#: events/business/presets/. The name is the file's one source, so ``send NAME`` and ``/events/NAME`` match it.
PRESETS: dict[str, tuple[str, str]] = {
    "stripe": ("stripe-checkout.json", "stripe-checkout-session-completed.json"),
    "shopify": ("shopify-orders-paid.json", "shopify-orders-paid.json"),
    "typeform": ("typeform-consent.json", "typeform-form-response.json"),
    "hubspot": ("hubspot-contacts.json", "hubspot-contact-batch.json"),
    "hr": ("hr-employee-hired.json", "hr-employee-hired.json"),
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "mappings",
        help="check a mapping file or preview the request an event becomes",
        description="Work with mapping files (see mappings/README.md).",
    )
    actions = parser.add_subparsers(dest="mappings_command", metavar="ACTION", required=True)
    init = actions.add_parser(
        "init",
        help="write a preset mapping (Stripe, Shopify, Typeform, HubSpot, HR) to start from",
        description=(
            "Copy a preset from mappings/presets/ to FILE, and print how to check it, preview its sample event, "
            f"set its sender secret and run it locally. Presets: {', '.join(PRESETS)}."
        ),
    )
    init.add_argument("--preset", required=True, metavar="NAME", help=f"one of: {', '.join(PRESETS)}")
    init.add_argument("--output", type=Path, metavar="FILE", help="where to write it (default: mappings/<NAME>.json)")
    init.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    init.set_defaults(func=run_init)
    check = actions.add_parser("check", help="validate a mapping file; list every problem")
    check.add_argument("file", type=Path, help="mapping file (.json or .toml)")
    check.set_defaults(func=run_check)
    preview = actions.add_parser(
        "preview", help="print the rule, keys and exact body bytes an event would be signed and sent as"
    )
    preview.add_argument("file", type=Path, help="mapping file (.json or .toml)")
    preview.add_argument("event", type=Path, help="business event as JSON")
    preview.add_argument(
        "--source",
        help="source the event comes from (without it: the file's only source, the one its `match` names, or the "
        "only one with a rule for the event's type)",
    )
    preview.add_argument("--mask", action="store_true", help="mask contacts in the printed body")
    preview.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a request header the event came with, for header() (repeat it; only the source's headers are kept)",
    )
    preview.add_argument(
        "--explain",
        action="store_true",
        help="also show, rule by rule, each `when`, the rule chosen and what every expression found",
    )
    preview.set_defaults(func=run_preview)


def run_init(args: argparse.Namespace) -> int:
    name = args.preset.strip().lower()
    if name not in PRESETS:
        stems = {Path(file).stem: preset for preset, (file, _) in PRESETS.items()}  # the file's name works too
        if name.removesuffix(".json") not in stems:
            close = difflib.get_close_matches(name, [*PRESETS, *stems], n=1)
            hint = f"; did you mean {stems.get(close[0], close[0])!r}?" if close else ""
            return _fail(f"--preset {args.preset}: no such preset; use one of: {', '.join(PRESETS)}{hint}")
        name = stems[name.removesuffix(".json")]
    file, sample = PRESETS[name]
    output: Path = args.output or ROOT / "mappings" / f"{name}.json"
    if output.exists() and not args.force:
        return _fail(f"{_path_shown(output)} exists; choose another --output FILE, or pass --force to overwrite it")
    text = (PRESETS_DIR / file).read_text(encoding="utf-8")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        return _fail(f"cannot write {_path_shown(output)} ({exc.strerror}); choose another --output FILE")
    print(f"wrote {_path_shown(output)} (the {name} preset, from mappings/presets/{file})")
    print("\n".join(next_steps(load_mapping(output), output, PRESET_SAMPLES / sample)))
    return 0


def next_steps(cfg: MappingConfig, file: Path, sample: Path) -> list[str]:
    """What to do with a mapping written by ``init``: check, preview the sample, the secret, run it locally."""
    (source,) = cfg.sources
    config = cfg.source(source)
    cli, shown, event = command_name(), shlex.quote(str(_path_shown(file))), shlex.quote(str(_path_shown(sample)))
    # The provider's headers the sample needs: the event type's from the rules, a fresh delivery id for the id's.
    first_type = next(iter(config.rules))
    types = headers_read(config.event_type)
    values = {name: first_type for name in types}
    values |= {name: str(uuid.uuid4()) for name in headers_read(config.event_id) if name not in values}
    preview_headers = "".join(f" --header {shlex.quote(f'{n}: {v}')}" for n, v in values.items())
    send_headers = "".join(f" --header {shlex.quote(f'{n}: {v}')}" for n, v in values.items() if n in types)
    auth = config.auth
    scheme, key = (auth.scheme, auth.secret_key) if auth is not None else ("(none)", source)
    return [
        "next:",
        f"  1. edit it (group ids, form ids, locales: see its descriptions), then check it:  {cli} mappings check "
        f"{shown}",
        f"  2. preview its sample event:  {cli} mappings preview {shown} {event} --source {source}{preview_headers}",
        f"  3. the sender secret: the source verifies the {scheme} signature with the secret under {key!r} in the "
        f'bridge\'s sender secret ({{"{key}": ["<the provider\'s signing secret>"]}}; docs/senders.md says where '
        "the provider shows it); the local stack generates one",
        f"  4. run it locally:  {cli} local --mapping {shown}",
        f"     and send the sample, signed as the provider signs:  {cli} send {source} {event} --mapping "
        f"{shown}{send_headers}",
    ]


def _path_shown(path: Path) -> Path:
    """``path`` relative to the working directory when it is inside it."""
    try:
        return path.absolute().relative_to(Path.cwd())
    except ValueError:
        return path


def _load(file: Path) -> MappingConfig | None:
    try:
        return load_mapping(file)
    except ConfigError as exc:
        errors = exc.details.get("errors") or [exc.message]
        print(f"humanos-bridge: {len(errors)} problem(s) in {file}:", file=sys.stderr)
        for line in errors:
            print(f"  {line}", file=sys.stderr)
        return None


def run_check(args: argparse.Namespace) -> int:
    cfg = _load(args.file)
    if cfg is None:
        return 1
    rules = sum(cfg.source(name).rule_count for name in cfg.sources)
    print(
        f"OK {args.file}: {len(cfg.sources)} source(s) ({', '.join(cfg.sources)}), {rules} rule(s), "
        f"API version {cfg.api_version}"
    )
    for note in internal_id_notes(cfg):
        print(f"  note: {note}")
    for warning in warnings(cfg):
        print(f"  warning: {warning}")
    for line in deploy_notes(cfg):
        print(f"  {line}")
    return 0


def deploy_notes(cfg: MappingConfig) -> list[str]:
    """The template parameters the file's ``match`` declarations need, so that the events reach the queue."""
    matches = [cfg.source(name).match for name in cfg.sources]
    sources = [value for match in matches if match is not None for value in match.eventbridge_sources]
    topics = [value for match in matches if match is not None for value in match.sns_topics]
    notes = []
    if sources:
        notes.append(f"deploy with: EventBridgeSources={','.join(sources)} (a rule sends these events to the queue)")
    if len(topics) == 1:
        notes.append(f"deploy with: SnsTopicArn={topics[0]} (the queue subscribes to this topic)")
    elif topics:
        notes.append(f"note: {len(topics)} SNS topics; SnsTopicArn subscribes the queue to one, subscribe the others")
    return notes


def internal_id_notes(cfg: MappingConfig) -> list[str]:
    """What each rule's internalId means for recovery after an ambiguous failure (README, "Exactly once")."""
    notes = []
    for name in cfg.sources:
        for rules in cfg.source(name).rules.values():
            for rule in rules:
                if not rule.send_internal_id:
                    notes.append(
                        f"{rule.path}: internalId null: after a crash, if Humanos has forgotten the Idempotency-Key, "
                        "nothing can be looked up and the request may be created twice; drop the null to use the "
                        "default (the idempotency key)"
                    )
                elif rule.internal_id is not None:
                    notes.append(
                        f"{rule.path}: custom internalId: several events may share it, so after an ambiguous failure "
                        "a request found by it counts as the event's only if no other event claimed it, its "
                        "contacts and name are the event's, and no event with another body but the same contacts "
                        "and name used it at the same time (else, once Humanos has forgotten the key, it is created "
                        "again); the default (the idempotency key) is unique per event"
                    )
    return notes


def run_preview(args: argparse.Namespace) -> int:
    cfg = _load(args.file)
    if cfg is None:
        return 1
    if args.source is not None and args.source not in cfg.sources:
        return _fail(f"--source {args.source}: not in the file; its sources are {', '.join(cfg.sources)}")
    try:
        message = wire.loads(args.event.read_bytes())
    except OSError as exc:
        return _fail(f"cannot read {args.event} ({exc.strerror})")
    except SerialisationError as exc:
        return _fail(f"{args.event}: {exc.message}")
    # An EventBridge event or an SNS notification is opened as the dispatcher opens it: the rules read the event
    # inside, envelope() the rest, and no request headers came with it.
    envelope = open_envelope(message)
    event, fields = (envelope.event, envelope.fields) if envelope is not None else (message, None)
    try:
        given = parse_headers(args.header)
    except ConfigError as exc:
        return _fail(exc.message)
    source = args.source or _infer_source(cfg, event, envelope, given)
    if source is None:
        return 1
    headers = {} if envelope is not None else _kept(given, cfg.source(source).headers)
    preview = Preview(cfg, source, event, headers, fields)
    try:
        requests = cfg.map_requests(source, event, headers, fields)
    except EventIgnored as exc:
        print(f"ignored: {exc.message}")
        return _explained(args, preview, 0)
    except MappingError as exc:
        _fail(f"cannot map {args.event}: {exc.message}")
        return _explained(args, preview, 1)
    for number, request in enumerate(requests, start=1):
        if len(requests) > 1:
            print(f"{'' if number == 1 else chr(10)}request {number} of {len(requests)} (forEach):")
        _print_request(request, cfg.api_version, mask=args.mask)
    return _explained(args, preview, 0)


class Preview(NamedTuple):
    """What ``preview`` maps: the event (opened if it came in an envelope), from which source, with what."""

    cfg: MappingConfig
    source: str
    event: Any
    headers: dict[str, str]
    envelope: dict[str, Any] | None


def _infer_source(cfg: MappingConfig, event: Any, envelope: Envelope | None, given: dict[str, str]) -> str | None:
    """The source of an event previewed without ``--source``, or None (said why on stderr).

    As the dispatcher resolves it (the file's only source; the one whose ``match`` names the envelope's source
    or topic, or holds for the event), then the only source with a rule for the event's type as it reads it. A
    source that gives every event the same type (a literal ``eventType``, such as a batch's) would take any
    event, so it is never guessed.
    """
    if len(cfg.sources) == 1:
        return cfg.sources[0]
    matched = cfg.resolve_source(None, envelope, event)
    if matched is not None:
        print(f"humanos-bridge: no --source: {matched}, whose match takes this event", file=sys.stderr)
        return matched
    candidates, catch_all = [], []
    for name in cfg.sources:
        headers = {} if envelope is not None else _kept(given, cfg.source(name).headers)
        try:
            event_type = cfg.event_type(name, event, headers, envelope.fields if envelope else None)
        except MappingError:
            continue
        if event_type in cfg.source(name).rules:
            (catch_all if _takes_any_event(cfg, name, event_type) else candidates).append((name, event_type))
    if len(candidates) == 1:
        ((name, event_type),) = candidates
        print(f"humanos-bridge: no --source: {name}, the only source with a rule for {event_type!r}", file=sys.stderr)
        return name
    found = "several have a rule for it: " if candidates else "none has a rule for its type as it reads it"
    found += ", ".join(f"{name} ({event_type!r})" for name, event_type in candidates)
    if catch_all:
        found += "; " + ", ".join(f"{name} takes every event (its type is always {t!r})" for name, t in catch_all)
    _fail(f"the file has {len(cfg.sources)} sources ({', '.join(cfg.sources)}) and {found}; pass --source NAME")
    return None


def _print_request(request: MappedRequest, api_version: str, *, mask: bool) -> None:
    body = _masked(request.body) if mask else request.body
    signed = wire.dump_bytes(request.body)
    print(f"source:          {request.source}")
    print(f"event type:      {request.event_type}")
    print(f"event id:        {request.event_id}")
    print(f"rule:            {request.rule}")
    print(f"idempotency key: {request.idempotency_key}")
    print(f"internalId:      {request.internal_id if request.internal_id is not None else '(none)'}")
    print(f"API-Version:     {api_version}")
    if mask:
        print(f"body ({len(signed)} bytes signed; contacts masked below, so these are not those bytes):")
    else:
        print(f"body ({len(signed)} bytes, signed and sent exactly as below):")
    print(wire.dumps(body))


def _takes_any_event(cfg: MappingConfig, source: str, event_type: str) -> bool:
    """Whether ``source`` reads ``event_type`` from an empty event too: its type is not the event's."""
    try:
        return cfg.event_type(source, {}, {}) == event_type
    except MappingError:
        return False


def _explained(args: argparse.Namespace, preview: Preview, code: int) -> int:
    """Print the explanation when --explain asks for it; ``code`` is the exit code either way."""
    if args.explain:
        lines = explain_lines(
            preview.cfg,
            preview.source,
            preview.event,
            mask=args.mask,
            headers=preview.headers,
            envelope=preview.envelope,
        )
        print("\n".join(lines))
    return code


def explain_lines(
    cfg: MappingConfig,
    source: str,
    event: Any,
    *,
    mask: bool,
    headers: dict[str, str] | None = None,
    envelope: dict[str, Any] | None = None,
) -> list[str]:
    """``preview --explain``: one line per rule (its `when` and whether it is chosen), one per expression."""
    try:
        explained = explain_event(cfg, source, event, headers, envelope)
    except MappingError as exc:
        return [f"explain: {exc.message}"]
    rules = explained.rules
    lines = [f"explain (event type {_shown(explained.event_type, mask)}, {len(rules)} rule(s)):"]
    if not rules:
        lines.append("  (the file has no rules for this event type)")
    width = max((len(rule.name) for rule in rules), default=0)
    for rule in rules:
        lines.append(f"  rule {rule.name:<{width}}  {_when(rule, mask)}  -> {_outcome(rule)}")
        fields = [(value.where.removeprefix(f"{rule.path}."), value) for value in rule.values]
        field_width = max((len(where) for where, _ in fields), default=0)
        for where, value in fields:
            lines.append(f"    {where:<{field_width}}  `{value.expression}` {_result(value, mask)}")
    return lines


def _when(rule: RuleExplanation, mask: bool) -> str:
    if rule.when is None:
        return "(no when)"
    truth = "" if rule.when.error is not None else f" ({'true' if rule.holds else 'false'})"
    return f"when `{rule.when.expression}` {_result(rule.when, mask, truth)}"


def _outcome(rule: RuleExplanation) -> str:
    if rule.chosen:
        return "chosen"
    if rule.when is not None and rule.when.error is not None:
        return "failed: no rule is chosen"
    return "skipped" if not rule.holds else "not reached (an earlier rule was chosen or failed)"


def _result(value: Evaluation, mask: bool, truth: str = "") -> str:
    if value.error is not None:
        return f"failed: {value.error}"
    notes = [f"`{part}` found nothing" for part in value.missing]
    if value.value is None:
        notes = notes or ["the expression gave null"]
        notes += [value.if_null] if value.if_null else []
    shown = f"= {_shown(value.value, mask)}{truth}"
    return f"{shown}: {'; '.join(notes)}" if notes else shown


def _shown(value: Any, mask: bool) -> str:
    """A value as JSON; with --mask, every e-mail address and phone-like number in it masked."""
    try:
        text = wire.dumps(value)
    except SerialisationError:  # what JSON.stringify cannot write exactly (an integer beyond 2**53)
        text = json.dumps(value, separators=(",", ":"))
    return mask_text(text) if mask else text


def _kept(given: dict[str, str], kept: tuple[str, ...]) -> dict[str, str]:
    """The ``--header`` options as the ingest route keeps them for a source: its headers, lower-case names."""
    return {name.lower(): value for name, value in given.items() if name.lower() in kept}


def _fail(message: str) -> int:
    print(f"humanos-bridge: {message}", file=sys.stderr)
    return 1


#: Body fields that hold contacts, and inside list items which keys do.
def _masked(body: dict[str, Any]) -> dict[str, Any]:
    out = dict(body)
    for field, keys in CONTACT_FIELDS.items():
        items = out.get(field)
        if not isinstance(items, list):
            continue
        if not keys:  # a list of contacts itself
            out[field] = [mask_contact(c) if isinstance(c, str) else c for c in items]
        else:
            out[field] = [_mask_keys(item, keys) for item in items]
    return out


def _mask_keys(item: Any, keys: tuple[str, ...]) -> Any:
    if not isinstance(item, dict):
        return item
    return {k: mask_contact(v) if k in keys and isinstance(v, str) else v for k, v in item.items()}
