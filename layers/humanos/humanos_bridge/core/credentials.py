"""Humanos credentials (API key and signature secret): where they come from and how they are cached.

In AWS they live in one Secrets Manager secret, JSON ``{"apiKey": ..., "signatureSecret": ...}``,
read through Powertools Parameters (cached per container for a TTL). The client asks again with
``force_refresh=True`` when Humanos answers 401, because rotating in the Humanos dashboard changes
the signature secret. No message, repr or log line here ever shows a credential's characters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from humanos_bridge.core.errors import ConfigError, CredentialsError
from humanos_bridge.core.masking import mask_secret
from humanos_bridge.core.secret_store import CachedSecret

#: How the secret must look; repeated in every "malformed" message so the fix is in the message.
SECRET_SHAPE = 'store JSON {"apiKey": "...", "signatureSecret": "..."}'
_FIELDS = ("apiKey", "signatureSecret")


@dataclass(frozen=True, repr=False)
class Credentials:
    """An API key and a signature secret. The repr shows only whether each is set and its length."""

    api_key: str
    signature_secret: str

    def __repr__(self) -> str:
        key, secret = mask_secret(self.api_key), mask_secret(self.signature_secret)
        return f"Credentials(api_key={key}, signature_secret={secret})"

    __str__ = __repr__


class CredentialsSource(Protocol):
    """Anything that hands out the current Humanos credentials."""

    def get(self, *, force_refresh: bool = False, stale: Credentials | None = None) -> Credentials:
        """The credentials; ``force_refresh`` bypasses any cache (after a 401).

        ``stale`` names the credentials that were refused: when another caller has already
        replaced them, the new ones are returned without another fetch.
        """
        ...


class StaticCredentials:
    """Fixed credentials (local runs, the sandbox, tests). ``force_refresh`` changes nothing."""

    def __init__(self, api_key: str, signature_secret: str) -> None:
        if not api_key or not signature_secret:
            raise ConfigError("StaticCredentials needs a non-empty api_key and signature_secret")
        self._credentials = Credentials(api_key, signature_secret)

    def get(self, *, force_refresh: bool = False, stale: Credentials | None = None) -> Credentials:
        return self._credentials

    def __repr__(self) -> str:
        return f"StaticCredentials({self._credentials!r})"


class SecretsManagerCredentials(CachedSecret[Credentials]):
    """Credentials read from Secrets Manager through Powertools Parameters, cached ``ttl_seconds``.

    Parameters
    ----------
    secret_id
        ARN or name of the secret (``HUMANOS_SECRET_ID``).
    ttl_seconds
        How long a read value is trusted before Secrets Manager is asked again.
    boto3_client
        A ``secretsmanager`` client; built lazily from the default session when None.
    """

    def __init__(self, secret_id: str, *, ttl_seconds: int = 300, boto3_client: Any | None = None) -> None:
        super().__init__(
            secret_id,
            what="Humanos secret",
            env="HUMANOS_SECRET_ID",
            shape=SECRET_SHAPE,
            parse=parse_secret,
            ttl_seconds=ttl_seconds,
            boto3_client=boto3_client,
        )

    def __repr__(self) -> str:
        return f"SecretsManagerCredentials({self.secret_id!r}, ttl_seconds={self.ttl_seconds})"


def parse_secret(secret_id: str, text: str) -> Credentials:
    """Validate the secret's JSON and return the credentials; CredentialsError names what is wrong, never a value."""
    where = f"Humanos secret {secret_id}"
    try:
        data = json.loads(text)
    except ValueError:
        raise CredentialsError(f"{where} is not JSON; {SECRET_SHAPE}") from None  # the error text may quote the value
    if not isinstance(data, dict):
        raise CredentialsError(f"{where} is JSON but not an object; {SECRET_SHAPE}")
    missing = [name for name in _FIELDS if name not in data]
    if missing:
        names = " and ".join(repr(name) for name in missing)
        verb = "is" if len(missing) == 1 else "are"
        raise CredentialsError(f"{where}: {names} {verb} missing; {SECRET_SHAPE}")
    for name in _FIELDS:
        value = data[name]
        if not isinstance(value, str) or not value.strip():
            raise CredentialsError(f"{where}: {name!r} must be a non-empty string; {SECRET_SHAPE}")
    return Credentials(api_key=data["apiKey"], signature_secret=data["signatureSecret"])
