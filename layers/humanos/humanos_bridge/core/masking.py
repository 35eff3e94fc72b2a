"""What may be shown: masked contacts and secrets, and the safe form of every identifier.

Contacts are phone numbers and e-mail addresses. They travel in events and bodies, but never
reach a log line, a metric, an error body or a dead-letter attribute unmasked.

Identifiers are sender-controlled text (event ids, event types, sources, object keys quoted in
errors): whatever the sender put there leaves the process only in its safe form (``safe_id``), in log
fields, queue attributes, error bodies and the local stack's output alike. The exact value stays
inside, where it is a key (idempotency keys and internalIds are derived from it, never from this form).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from typing import overload

# The look-behind starts a match only where a run of address characters starts, and the possessive
# run never backtracks: without both, a long run with no "@" (a 40,000-character id) costs quadratic time.
# Anything shaped like an address, valid or not: `ana@example` (no TLD) is still someone's address.
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]++@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*")
# A phone-like run: optional +, then 7+ digits possibly split by spaces, dots, dashes or brackets.
_PHONE = re.compile(r"\+?\d[\d\s().\-]{5,}\d")

#: Longest safe form of an identifier, marker included: enough to recognise an id, never a 400 KB log line.
MAX_ID_CHARS = 128
#: Longest safe form of free text (a failure's reason, a line of output), marker included.
MAX_TEXT_CHARS = 1000
#: ``safe_text`` looks this far past twice its limit, no further: more than an e-mail address holds (254).
_CONTACT_MARGIN = 256

# A piece of a safe form: what is shown, and how many characters of the original it stands for.
_Piece = tuple[str, int]


def mask_contact(contact: str) -> str:
    """Return a contact with all but a hint hidden: ``j***@e***.com``, ``+35*******89``."""
    value = contact.strip()
    if "@" in value:
        local, _, domain = value.partition("@")
        name, dot, tld = domain.rpartition(".")
        masked_domain = f"{name[:1]}***{dot}{tld}" if dot else f"{domain[:1]}***"
        return f"{local[:1]}***@{masked_domain}"
    digits = re.sub(r"\D", "", value)
    if len(digits) <= 4:
        return "***"
    prefix = "+" if value.startswith("+") else ""
    return f"{prefix}{digits[:2]}{'*' * (len(digits) - 4)}{digits[-2:]}"


def mask_text(text: str) -> str:
    """Mask every e-mail address and phone-like number inside free text (e.g. Humanos messages)."""
    text = _EMAIL.sub(lambda m: mask_contact(m.group(0)), text)
    return _PHONE.sub(lambda m: mask_contact(m.group(0)), text)


def mask_secret(secret: str | None) -> str:
    """Say whether a secret is set and how long it is, never any of its characters."""
    if not secret:
        return "<unset>"
    return f"<{len(secret)} chars>"


@overload
def safe_id(value: str, *, mask: bool = True) -> str: ...
@overload
def safe_id(value: str | None, *, mask: bool = True) -> str | None: ...
def safe_id(value: str | None, *, mask: bool = True) -> str | None:
    """The one form in which an identifier leaves the process (None stays None).

    Contacts masked, every character ``repr`` would escape escaped the same way (``\\x1b``, ``\\n``,
    ``\\ud800``), at most ``MAX_ID_CHARS`` characters, a longer one cut and marked ``…(+N chars)``.
    It is for reading, not a key: two ids may share it, and applied again it changes nothing.
    ``mask=False`` only for values we minted (a Humanos request id, our own timestamps): their digit
    runs are no phone numbers.

    >>> safe_id("evt_\\ud800\\x1b[2K ana@example.com")
    'evt_\\\\ud800\\\\x1b[2K a***@e***.com'
    """
    return None if value is None else safe_text(value, limit=MAX_ID_CHARS, mask=mask)


def safe_text(text: str, *, limit: int = MAX_TEXT_CHARS, mask: bool = True) -> str:
    """``text`` made safe to show as ``safe_id`` makes an identifier, within ``limit`` characters.

    Escaped first, then masked, so that nothing masking leaves behind is escaped afterwards and a second
    application changes nothing; then cut where it splits neither an escape nor a masked contact.
    """
    if len(text) <= _RECENT_CHARS:
        return _recent_safe_text(text, limit, mask)
    return _safe_text(text, limit, mask)


#: Short values made safe lately are remembered, and this is how long "short" is. A request shows its event id
#: four times (answer, log correlation, queue attribute, log line) and its source and type each once, as every
#: request does: 1.4 µs each, 0.15 from here. 256 entries: at most ~0.4 MB, whatever the ids.
_RECENT_CHARS = 256


@functools.lru_cache(maxsize=256)
def _recent_safe_text(text: str, limit: int, mask: bool) -> str:
    return _safe_text(text, limit, mask)


def _safe_text(text: str, limit: int, mask: bool) -> str:
    if len(text) <= limit and text.isprintable():
        shown = mask_text(text) if mask else text
        if len(shown) <= limit:
            return shown  # the common case
    # Only a window is looked at (a 200,000-character id costs what a 600-character one does), wide enough
    # for a contact across the cut to be masked whole.
    window = text[: 2 * limit + _CONTACT_MARGIN]
    pieces = _pieces(window, mask=mask)
    if len(window) == len(text) and sum(len(shown) for shown, _ in pieces) <= limit:
        return "".join(shown for shown, _ in pieces)
    # Room for the marker, sized for the most characters it could have to count.
    budget = max(limit - len(_cut_marker(len(text))), 0)
    kept: list[str] = []
    size = used = 0
    for shown, raw in pieces:
        if size + len(shown) > budget:
            break
        kept.append(shown)
        size += len(shown)
        used += raw
    return "".join(kept) + _cut_marker(len(text) - used)


def _pieces(text: str, *, mask: bool) -> list[_Piece]:
    # Not printable: controls (a terminal obeys them), format characters (bidi overrides reorder a line),
    # lone surrogates (no encoding can write them), separators other than the space, unassigned code points.
    pieces = [(char if char.isprintable() else char.encode("unicode_escape").decode("ascii"), 1) for char in text]
    if mask:
        for pattern in (_EMAIL, _PHONE):  # in mask_text's order
            pieces = _masked(pieces, pattern)
    return pieces


def _masked(pieces: list[_Piece], pattern: re.Pattern[str]) -> list[_Piece]:
    """Each match of ``pattern`` masked, as one piece with every piece it touches."""
    shown = "".join(piece for piece, _ in pieces)
    starts = list(itertools.accumulate((len(piece) for piece, _ in pieces), initial=0))
    result: list[_Piece] = []
    done = 0  # pieces already in result
    for match in pattern.finditer(shown):
        first = bisect.bisect_right(starts, match.start()) - 1
        last = bisect.bisect_left(starts, match.end()) - 1
        result.extend(pieces[done:first])
        masked = (
            shown[starts[first] : match.start()] + mask_contact(match.group(0)) + shown[match.end() : starts[last + 1]]
        )
        result.append((masked, sum(raw for _, raw in pieces[first : last + 1])))
        done = last + 1
    result.extend(pieces[done:])
    return result


def _cut_marker(left: int) -> str:
    # Thousands separated: a 7-digit count must not read as a phone number to the next masking.
    return f"…(+{left:,} chars)"
