"""Masking of contacts and secrets: the one place that decides what may be shown.

Contacts are phone numbers and e-mail addresses. They travel in events and bodies, but never
reach a log line, a metric, an error body or a dead-letter attribute unmasked.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# A phone-like run: optional +, then 7+ digits possibly split by spaces, dots, dashes or brackets.
_PHONE = re.compile(r"\+?\d[\d\s().\-]{5,}\d")


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
