"""Humanos's answers as a developer reads them (``send``, ``sandbox requests``): contacts masked, identifiers kept.

Narrower than ``masking.mask_text``, which masks every run of seven digits or more: right for logs and error
bodies, where nobody needs the digits, but here a developer reads their own answer, and an invoice number
shown as ``INV-20****43`` reads as corrupted data.
"""

from __future__ import annotations

import re
from typing import Any

from humanos_bridge.core.masking import mask_contact, mask_text

#: Keys whose values are identifiers: ``id``, ``requestId``, ``groupIds``, ``event_id``, ``requestID``.
_ID_KEY = re.compile(r"(?:^|[_-])ids?$|Ids?$|IDs?$")
#: A value that is nothing but a phone number: digits, the usual separators, perhaps a leading +.
_PHONE_VALUE = re.compile(r"\+?[\d\s().-]+")
#: A run of digits a phone number could be, inside a word: digits joined by the separators numbers are written with.
_DIGIT_RUN = re.compile(r"\d[\d().-]*\d|\d")
#: Digits in one run from which it may be a phone number: a national number has 9 or more in most countries,
#: and 8 written without separators (``tel:12345678``) are taken as one too.
PHONE_DIGITS, PHONE_DIGITS_UNSEPARATED = 9, 8


def masked(value: Any, key: str = "") -> Any:
    """The answer with its contacts masked and its identifiers as they are.

    Narrower than ``masking.mask_text``, which masks every run of seven digits or more: right for logs and error
    bodies, where nobody needs the digits, but here a developer reads their own answer, and an invoice number
    shown as ``INV-20****43`` reads as corrupted data. So:

    - under an id key (``id``, ``requestId``, ``groupIds`` ...) a value is kept, unless it holds an e-mail
      address or is nothing but a phone number;
    - in other strings, a word with letters and digits and no phone shape (``INV-2026-0043``, ``ord_42``) is an
      identifier and kept; the rest is masked as ``mask_text`` does (e-mail addresses, phone numbers).

    A phone shape in a word is an ``@``, a ``+`` before a digit, or a digit run that may be a number (``PHONE_DIGITS``).
    """
    if isinstance(value, dict):
        return {k: masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(item, key) for item in value]
    if not isinstance(value, str):
        return value
    if _ID_KEY.search(key):
        if "@" in value:
            return mask_text(value)
        if _PHONE_VALUE.fullmatch(value) and sum(c.isdigit() for c in value) >= 7:
            return mask_contact(value)
        return value
    return _masked_text(value)


def _masked_text(text: str) -> str:
    """``mask_text`` over everything but the identifier words of ``text``."""
    pieces, last = [], 0
    for word in re.finditer(r"\S+", text):
        if _is_identifier(word.group()):
            pieces += [mask_text(text[last : word.start()]), word.group()]
            last = word.end()
    pieces.append(mask_text(text[last:]))
    return "".join(pieces)


def _is_identifier(word: str) -> bool:
    if "@" in word or re.search(r"\+\d", word):
        return False
    if not any(c.isalpha() for c in word) or not any(c.isdigit() for c in word):
        return False
    for run in _DIGIT_RUN.findall(word):
        if sum(c.isdigit() for c in run) >= PHONE_DIGITS or re.search(rf"\d{{{PHONE_DIGITS_UNSEPARATED}}}", run):
            return False
    return True
