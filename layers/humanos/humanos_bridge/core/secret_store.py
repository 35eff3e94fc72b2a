"""One Secrets Manager secret, read through Powertools Parameters, cached, parsed once per value.

The Humanos credentials, the sender secrets and the webhook secrets are each one (a subclass naming its
secret's variable, shape and parser): built lazily (no boto3 client at import), one reader at a time, a
count of the reads that reached Secrets Manager, and AWS failures turned into CredentialsError that say
how to fix them and never show a value.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import botocore.exceptions
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from humanos_bridge.core.errors import ConfigError, CredentialsError

T = TypeVar("T")

# Secrets Manager error codes that a retry will not fix, and what to do about each.
_PERMANENT_AWS_ERRORS: dict[str, str] = {
    "ResourceNotFoundException": "does not exist; create it ({shape}) or fix {env}",
    "AccessDeniedException": (
        "cannot be read by this role; grant secretsmanager:GetSecretValue on it (and kms:Decrypt on its key)"
    ),
    "DecryptionFailure": "cannot be decrypted; grant kms:Decrypt on the secret's KMS key",
    "InvalidRequestException": "cannot be read now (deleted or scheduled for deletion?); restore it",
    "InvalidParameterException": "is not a valid secret id; set {env} to the secret's ARN or name",
    "UnrecognizedClientException": "cannot be read: the AWS credentials are not valid",
}


class _CountingSecretsProvider(SecretsProvider):
    """Powertools' SecretsProvider, counting the reads that reach Secrets Manager (cache misses)."""

    def __init__(self, boto3_client: Any | None) -> None:
        super().__init__(boto3_client=boto3_client)
        self.fetch_count = 0

    def _get(self, name: str, **sdk_options: Any) -> str | bytes:
        self.fetch_count += 1
        return super()._get(name, **sdk_options)


class CachedSecret(Generic[T]):
    """A secret's parsed value, cached ``ttl_seconds``.

    Parameters
    ----------
    secret_id
        ARN or name of the secret.
    what, env, shape
        For messages: what the secret is ("Humanos secret"), the variable that names it, and how its
        JSON must look.
    parse
        ``parse(secret_id, text) -> T``; raises CredentialsError naming what is wrong, never a value.
    """

    def __init__(
        self,
        secret_id: str,
        *,
        what: str,
        env: str,
        shape: str,
        parse: Callable[[str, str], T],
        ttl_seconds: int = 300,
        boto3_client: Any | None = None,
    ) -> None:
        if not secret_id:
            raise ConfigError(f"{env} is empty; set it to the ARN of the {what}")
        if ttl_seconds < 0:
            raise ConfigError(f"the {what}'s cache TTL must not be negative (got {ttl_seconds})")
        self.secret_id = secret_id
        self.ttl_seconds = ttl_seconds
        self._what, self._env, self._shape, self._parse = what, env, shape, parse
        self._boto3_client = boto3_client
        self._provider: _CountingSecretsProvider | None = None
        # One reader at a time: after a rotation many workers ask together, and one fetch serves them.
        self._lock = threading.Lock()
        self._parsed: tuple[str, T] | None = None

    @property
    def fetch_count(self) -> int:
        """Reads that reached Secrets Manager (cache misses), for tests and benchmarks."""
        return self._provider.fetch_count if self._provider is not None else 0

    def get(self, *, force_refresh: bool = False, stale: T | None = None) -> T:
        """The parsed value; ``force_refresh`` reads again unless another caller already replaced ``stale``."""
        with self._lock:
            if force_refresh and stale is not None and self._parsed is not None and self._parsed[1] != stale:
                return self._parsed[1]
            if self._provider is None:
                self._provider = _CountingSecretsProvider(self._boto3_client)
            try:
                # No Powertools transform: its JSON error text is not ours, and could quote the value.
                raw = self._provider.get(self.secret_id, max_age=self.ttl_seconds, force_fetch=force_refresh)
            except GetParameterError as exc:
                raise self._read_error(exc) from exc
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            if self._parsed is None or self._parsed[0] != text:
                self._parsed = (text, self._parse(self.secret_id, text))
            return self._parsed[1]

    def _read_error(self, exc: GetParameterError) -> CredentialsError:
        # Powertools wraps every failure in GetParameterError without `from`; the boto error is its context.
        cause = exc.__cause__ or exc.__context__
        where = f"{self._what} {self.secret_id}"
        if isinstance(cause, botocore.exceptions.ClientError):
            code = str(cause.response.get("Error", {}).get("Code", "Unknown"))
            status = int(cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            hint = _PERMANENT_AWS_ERRORS.get(code)
            if hint is not None:
                return CredentialsError(f"{where} {hint.format(shape=self._shape, env=self._env)} ({code})")
            if status >= 500 or "Throttl" in code or code in ("RequestLimitExceeded", "InternalServiceError"):
                return CredentialsError(f"{where} could not be read now ({code}); retry later", retryable=True)
            return CredentialsError(f"{where} could not be read ({code}); check the secret and the role's permissions")
        if isinstance(cause, botocore.exceptions.NoCredentialsError | botocore.exceptions.NoRegionError):
            return CredentialsError(
                f"{where} could not be read: {type(cause).__name__}; configure AWS credentials/region"
            )
        # Connection errors, timeouts and anything unforeseen: Secrets Manager may answer on the next try.
        kind = type(cause).__name__ if cause is not None else "unknown error"
        return CredentialsError(f"{where} could not be read now ({kind}); retry later", retryable=True)
