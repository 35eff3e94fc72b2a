"""Humanos credentials (API key and signature secret): where they come from and how they are cached.

In AWS they live in one Secrets Manager secret, JSON ``{"apiKey": ..., "signatureSecret": ...}``,
read through Powertools Parameters (cached per container for a TTL). The client asks again with
``force_refresh=True`` when Humanos answers 401, because rotating in the Humanos dashboard changes
the signature secret. No message, repr or log line here ever shows a credential's characters.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import botocore.exceptions
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from humanos_bridge.errors import ConfigError, CredentialsError
from humanos_bridge.masking import mask_secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

#: How the secret must look; repeated in every "malformed" message so the fix is in the message.
SECRET_SHAPE = 'store JSON {"apiKey": "...", "signatureSecret": "..."}'
_FIELDS = ("apiKey", "signatureSecret")

# Secrets Manager error codes that a retry will not fix, and what to do about each.
_PERMANENT_AWS_ERRORS: dict[str, str] = {
    "ResourceNotFoundException": "does not exist; create it ({shape}) or fix HUMANOS_SECRET_ID",
    "AccessDeniedException": (
        "cannot be read by this role; grant secretsmanager:GetSecretValue on it (and kms:Decrypt on its key)"
    ),
    "DecryptionFailure": "cannot be decrypted; grant kms:Decrypt on the secret's KMS key",
    "InvalidRequestException": "cannot be read now (deleted or scheduled for deletion?); restore it",
    "InvalidParameterException": "is not a valid secret id; set HUMANOS_SECRET_ID to the secret's ARN or name",
    "UnrecognizedClientException": "cannot be read: the AWS credentials are not valid",
}


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


class _CountingSecretsProvider(SecretsProvider):
    """Powertools' SecretsProvider, counting the reads that reach Secrets Manager (cache misses)."""

    def __init__(self, boto3_client: SecretsManagerClient | None) -> None:
        super().__init__(boto3_client=boto3_client)
        self.fetch_count = 0

    def _get(self, name: str, **sdk_options: Any) -> str | bytes:
        self.fetch_count += 1
        return super()._get(name, **sdk_options)


class SecretsManagerCredentials:
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
        if not secret_id:
            raise ConfigError("HUMANOS_SECRET_ID is empty; set it to the ARN of the Humanos secret")
        if ttl_seconds < 0:
            raise ConfigError(f"HUMANOS_SECRET_TTL_SECONDS must not be negative (got {ttl_seconds})")
        self.secret_id = secret_id
        self.ttl_seconds = ttl_seconds
        self._boto3_client = boto3_client
        self._provider: _CountingSecretsProvider | None = None
        # One reader at a time: after a rotation many workers see 401 together, and one fetch serves them.
        self._lock = threading.Lock()
        self._parsed: tuple[str, Credentials] | None = None

    @property
    def fetch_count(self) -> int:
        """How many reads reached Secrets Manager (for benchmarks and tests of the cache)."""
        return self._provider.fetch_count if self._provider is not None else 0

    def get(self, *, force_refresh: bool = False, stale: Credentials | None = None) -> Credentials:
        with self._lock:
            if force_refresh and stale is not None and self._parsed is not None and self._parsed[1] != stale:
                # Another worker met the same 401 and fetched the rotated secret already: one fetch serves all.
                return self._parsed[1]
            if self._provider is None:
                # Built on first use: constructing it makes a boto3 client, which must not happen at import.
                self._provider = _CountingSecretsProvider(self._boto3_client)
            try:
                # No Powertools transform: its JSON error text is not ours, and we name what is missing.
                raw = self._provider.get(self.secret_id, max_age=self.ttl_seconds, force_fetch=force_refresh)
            except GetParameterError as exc:
                raise _aws_error(self.secret_id, exc) from exc
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            if self._parsed is None or self._parsed[0] != text:
                self._parsed = (text, parse_secret(self.secret_id, text))
            return self._parsed[1]

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


def _aws_error(secret_id: str, exc: GetParameterError) -> CredentialsError:
    # Powertools wraps every failure in GetParameterError without `from`; the boto error is its context.
    cause = exc.__cause__ or exc.__context__
    where = f"Humanos secret {secret_id}"
    if isinstance(cause, botocore.exceptions.ClientError):
        error = cause.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        status = int(cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        hint = _PERMANENT_AWS_ERRORS.get(code)
        if hint is not None:
            return CredentialsError(f"{where} {hint.format(shape=SECRET_SHAPE)} ({code})")
        if status >= 500 or "Throttl" in code or code in ("RequestLimitExceeded", "InternalServiceError"):
            return CredentialsError(f"{where} could not be read now ({code}); retry later", retryable=True)
        return CredentialsError(f"{where} could not be read ({code}); check the secret and the role's permissions")
    if isinstance(cause, botocore.exceptions.NoCredentialsError | botocore.exceptions.NoRegionError):
        return CredentialsError(f"{where} could not be read: {type(cause).__name__}; configure AWS credentials/region")
    # Connection errors, timeouts and anything unforeseen: Secrets Manager may answer on the next try.
    kind = type(cause).__name__ if cause is not None else "unknown error"
    return CredentialsError(f"{where} could not be read now ({kind}); retry later", retryable=True)
