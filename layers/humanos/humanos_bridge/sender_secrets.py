"""Sender secrets: one Secrets Manager secret, ``{"<secretKey>": ["secret-a", "secret-b"], ...}``.

Several secrets per key may be active at once, so a sender can rotate without downtime: put the
new secret first, let the sender switch, then remove the old one. Read through Powertools
Parameters and cached per container for ``ttl_seconds``; parsed once per distinct value. No
message, repr or log line here shows a secret's characters.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import botocore.exceptions
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from humanos_bridge.errors import ConfigError, CredentialsError

#: How the secret must look; repeated in every "malformed" message so the fix is in the message.
SECRET_SHAPE = 'store JSON {"<secretKey>": ["<secret>", ...]}'
#: Secrets Manager error codes that a retry will not fix: the deployment must change.
_PERMANENT_AWS_ERRORS = frozenset(
    {
        "ResourceNotFoundException",
        "AccessDeniedException",
        "DecryptionFailure",
        "InvalidRequestException",
        "InvalidParameterException",
        "UnrecognizedClientException",
    }
)


class _CountingSecretsProvider(SecretsProvider):
    """Powertools' SecretsProvider, counting the reads that reach Secrets Manager (cache misses)."""

    def __init__(self, boto3_client: Any | None) -> None:
        super().__init__(boto3_client=boto3_client)
        self.fetch_count = 0

    def _get(self, name: str, **sdk_options: Any) -> str | bytes:
        self.fetch_count += 1
        return super()._get(name, **sdk_options)


class SenderSecrets:
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
        if not secret_id:
            raise ConfigError("SENDER_SECRET_ID is empty; set it to the ARN of the sender secret")
        self.secret_id = secret_id
        self.ttl_seconds = ttl_seconds
        self._boto3_client = boto3_client
        self._provider: _CountingSecretsProvider | None = None
        self._lock = threading.Lock()
        self._parsed: tuple[str, dict[str, tuple[str, ...]]] | None = None

    @property
    def fetch_count(self) -> int:
        """Reads that reached Secrets Manager (cache misses), for tests and benchmarks."""
        return self._provider.fetch_count if self._provider is not None else 0

    def secrets_for(self, key: str) -> tuple[str, ...]:
        """The active secrets stored under ``key``; empty when the secret has no such entry."""
        return self.all().get(key, ())

    def all(self) -> dict[str, tuple[str, ...]]:
        """Every entry of the secret, validated. CredentialsError when it cannot be read or is malformed."""
        with self._lock:
            if self._provider is None:
                # Built on first use: constructing it makes a boto3 client, which must not happen at import.
                self._provider = _CountingSecretsProvider(self._boto3_client)
            try:
                raw = self._provider.get(self.secret_id, max_age=self.ttl_seconds)
            except GetParameterError as exc:
                raise _read_error(self.secret_id, exc) from exc
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            if self._parsed is None or self._parsed[0] != text:
                self._parsed = (text, parse_sender_secret(self.secret_id, text))
            return self._parsed[1]

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


def _read_error(secret_id: str, exc: GetParameterError) -> CredentialsError:
    # Powertools wraps every failure in GetParameterError without `from`; the boto error is its context.
    cause = exc.__cause__ or exc.__context__
    where = f"sender secret {secret_id}"
    if isinstance(cause, botocore.exceptions.ClientError):
        code = str(cause.response.get("Error", {}).get("Code", "Unknown"))
        if code in _PERMANENT_AWS_ERRORS:
            return CredentialsError(
                f"{where} cannot be read ({code}); check SENDER_SECRET_ID and the role's secretsmanager:GetSecretValue"
            )
        return CredentialsError(f"{where} could not be read now ({code}); retry later", retryable=True)
    kind = type(cause).__name__ if cause is not None else "unknown error"
    return CredentialsError(f"{where} could not be read now ({kind}); retry later", retryable=True)
