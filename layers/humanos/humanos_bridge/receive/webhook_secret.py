"""The webhook secrets: one Secrets Manager secret, read through the same cached reader as the others.

JSON ``{"signatureSecret": ..., "encryptionSecret": ..., "encryptionSalt": ...}``, the three values the
Humanos dashboard shows (Admin/Settings -> Webhooks). ``signatureSecret`` is a string, or a list of
strings for rotation: every one listed verifies, so put the new secret first, rotate in the dashboard,
then remove the old one (no webhook is refused in between). ``encryptionSecret`` is base64 text (its
decoded bytes are PBKDF2's password); ``encryptionSalt`` is used as UTF-8 text. No message, repr or log
line here shows a value's characters.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from humanos_bridge.core.errors import CredentialsError
from humanos_bridge.core.masking import mask_secret
from humanos_bridge.core.secret_store import CachedSecret

#: How the secret must look; repeated in every "malformed" message so the fix is in the message.
SECRET_SHAPE = (
    'store JSON {"signatureSecret": "..." or ["<new>", "<old>"], "encryptionSecret": "<base64>", '
    '"encryptionSalt": "..."} as the Humanos dashboard shows them'
)
_FIELDS = ("signatureSecret", "encryptionSecret", "encryptionSalt")


@dataclass(frozen=True, repr=False)
class WebhookSecrets:
    """The active signature secrets (rotation: all of them verify), the encryption secret and the salt."""

    signature_secrets: tuple[str, ...]
    #: Base64 text, as the dashboard shows it.
    encryption_secret: str
    encryption_salt: str

    def __repr__(self) -> str:
        shown = ", ".join(mask_secret(secret) for secret in self.signature_secrets)
        return (
            f"WebhookSecrets(signature_secrets=[{shown}], encryption_secret={mask_secret(self.encryption_secret)}, "
            f"encryption_salt={mask_secret(self.encryption_salt)})"
        )

    __str__ = __repr__


class WebhookSecretStore(CachedSecret[WebhookSecrets]):
    """The webhook secrets from Secrets Manager (``WEBHOOK_SECRET_ID``), cached ``ttl_seconds``.

    Parameters
    ----------
    secret_id
        ARN or name of the secret.
    ttl_seconds
        How long a read value is trusted before Secrets Manager is asked again (a rotation is seen then).
    boto3_client
        A ``secretsmanager`` client; built lazily from the default session when None.
    """

    def __init__(self, secret_id: str, *, ttl_seconds: int = 300, boto3_client: Any | None = None) -> None:
        super().__init__(
            secret_id,
            what="webhook secret",
            env="WEBHOOK_SECRET_ID",
            shape=SECRET_SHAPE,
            parse=parse_webhook_secret,
            ttl_seconds=ttl_seconds,
            boto3_client=boto3_client,
        )

    def __repr__(self) -> str:
        return f"WebhookSecretStore({self.secret_id!r}, ttl_seconds={self.ttl_seconds})"


class StaticWebhookSecrets:
    """Fixed secrets (benchmarks, local runs): what ``WebhookSecretStore`` hands out, without Secrets Manager."""

    def __init__(self, secrets: WebhookSecrets) -> None:
        self._secrets = secrets

    def get(self) -> WebhookSecrets:
        return self._secrets


def parse_webhook_secret(secret_id: str, text: str) -> WebhookSecrets:
    """Validate the secret's JSON; CredentialsError names the bad field, never a value."""
    where = f"webhook secret {secret_id}"
    try:
        data = json.loads(text)
    except ValueError:
        raise CredentialsError(f"{where} is not JSON; {SECRET_SHAPE}") from None  # the error text may quote it
    if not isinstance(data, dict):
        raise CredentialsError(f"{where} is JSON but not an object; {SECRET_SHAPE}")
    missing = [name for name in _FIELDS if name not in data]
    if missing:
        names = " and ".join(repr(name) for name in missing)
        verb = "is" if len(missing) == 1 else "are"
        raise CredentialsError(f"{where}: {names} {verb} missing; {SECRET_SHAPE}")
    signature = data["signatureSecret"]
    listed = signature if isinstance(signature, list) else [signature]
    if not listed or not all(_text(item) for item in listed):
        raise CredentialsError(
            f"{where}: 'signatureSecret' must be a non-empty string or a non-empty list of them; {SECRET_SHAPE}"
        )
    for name in ("encryptionSecret", "encryptionSalt"):
        if not _text(data[name]):
            raise CredentialsError(f"{where}: {name!r} must be a non-empty string; {SECRET_SHAPE}")
    try:
        password = base64.b64decode(data["encryptionSecret"].strip(), validate=True)
    except (binascii.Error, ValueError):
        password = b""
    if not password:
        raise CredentialsError(
            f"{where}: 'encryptionSecret' must be base64 text, as the Humanos dashboard shows it; {SECRET_SHAPE}"
        )
    return WebhookSecrets(tuple(listed), data["encryptionSecret"].strip(), data["encryptionSalt"])


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())
