"""Sender secrets: one Secrets Manager secret, ``{"<secretKey>": ["secret-a", "secret-b"], ...}``.

Several secrets per key may be active at once, so a sender can rotate without downtime: put the
new secret first, let the sender switch, then remove the old one. Read through Powertools
Parameters and cached per container for ``ttl_seconds``; parsed once per distinct value. No
message, repr or log line here shows a secret's characters.
"""

from __future__ import annotations

import json
from typing import Any

from humanos_bridge.core.errors import CredentialsError
from humanos_bridge.core.secret_store import CachedSecret

#: How the secret must look; repeated in every "malformed" message so the fix is in the message.
SECRET_SHAPE = 'store JSON {"<secretKey>": ["<secret>", ...]}'


class SenderSecrets(CachedSecret[dict[str, tuple[str, ...]]]):
    """The active secrets per key, read from Secrets Manager and cached ``ttl_seconds``.

    Parameters
    ----------
    secret_id
        ARN or name of the secret (``SENDER_SECRET_ID``).
    ttl_seconds
        How long a read value is trusted before Secrets Manager is asked again.
    boto3_client
        A ``secretsmanager`` client; built lazily from the default session when None.
    """

    def __init__(self, secret_id: str, *, ttl_seconds: int = 300, boto3_client: Any | None = None) -> None:
        super().__init__(
            secret_id,
            what="sender secret",
            env="SENDER_SECRET_ID",
            shape=SECRET_SHAPE,
            parse=parse_sender_secret,
            ttl_seconds=ttl_seconds,
            boto3_client=boto3_client,
        )

    def secrets_for(self, key: str) -> tuple[str, ...]:
        """The active secrets stored under ``key``; empty when the secret has no such entry."""
        return self.all().get(key, ())

    def all(self) -> dict[str, tuple[str, ...]]:
        """Every entry of the secret, validated. CredentialsError when it cannot be read or is malformed."""
        return super().get()

    def __repr__(self) -> str:
        return f"SenderSecrets({self.secret_id!r}, ttl_seconds={self.ttl_seconds})"


def parse_sender_secret(secret_id: str, text: str) -> dict[str, tuple[str, ...]]:
    """Validate the secret's JSON; CredentialsError names the bad entry, never a value."""
    where = f"sender secret {secret_id}"
    try:
        data = json.loads(text)
    except ValueError:
        raise CredentialsError(f"{where} is not JSON; {SECRET_SHAPE}") from None  # the error text may quote it
    if not isinstance(data, dict):
        raise CredentialsError(f"{where} is JSON but not an object; {SECRET_SHAPE}")
    parsed: dict[str, tuple[str, ...]] = {}
    for key, value in data.items():
        if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
            raise CredentialsError(f"{where}: entry {key!r} must be a list of non-empty strings; {SECRET_SHAPE}")
        parsed[key] = tuple(value)
    return parsed
