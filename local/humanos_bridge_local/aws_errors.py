"""AWS failures turned into messages that say what to fix: the credentials, the region, or the permission.

The operator commands run with whatever credentials the shell has, so the likely failures are a missing or
expired login, the wrong region, and a role without one of the permissions the command needs. Each AWS call
runs inside ``explained(permission, region)``, which is the one place such a failure becomes a ``ConfigError``
naming the IAM permission to add, instead of a botocore traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    SSOError,
    TokenRetrievalError,
)

from humanos_bridge.core.errors import ConfigError
from humanos_bridge.core.masking import safe_text

#: Codes AWS gives credentials it does not accept: expired, unknown, or signed with the wrong key.
CREDENTIAL_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "RequestExpired",
    }
)
#: Codes AWS gives an identity it knows but does not allow to make the call.
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"})
NO_CREDENTIALS = (
    "no AWS credentials found: pass --profile NAME, set AWS_PROFILE, or run `aws configure` (or `aws sso login`)"
)


@contextmanager
def explained(permission: str, region: str | None) -> Iterator[None]:
    """Run one AWS call; a failure leaves as a ConfigError that names ``permission`` when it is missing.

    ``permission`` is the IAM action the call needs (``"cloudwatch:GetMetricData"``). A ConfigError raised
    inside (a more specific message, such as a stack that does not exist) passes through unchanged.
    """
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise ConfigError(NO_CREDENTIALS) from exc
    except (SSOError, TokenRetrievalError) as exc:
        raise ConfigError(f"the AWS login has expired or is incomplete ({exc}): run `aws sso login`") from exc
    except NoRegionError as exc:
        raise ConfigError("no AWS region: pass --region or set AWS_REGION") from exc
    except EndpointConnectionError as exc:
        raise ConfigError(f"cannot reach AWS in {region}: {exc}; check --region and the network") from exc
    except ClientError as exc:
        raise _client_error(exc, permission, region) from exc
    except BotoCoreError as exc:
        raise ConfigError(f"{permission} in {region} failed: {exc}") from exc


def _client_error(exc: ClientError, permission: str, region: str | None) -> ConfigError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    if code in CREDENTIAL_CODES:
        return ConfigError(
            f"AWS refused the credentials ({code}): refresh them (`aws sso login`) or pick others with --profile"
        )
    # Some services answer a denial with a bare 403 whose body botocore cannot parse into a code.
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in DENIED_CODES or status == 403:
        return ConfigError(
            f"not allowed to call {permission} in {region}: add {permission} to the role or user you run this as"
        )
    # The message may quote what was passed (a stack name): shown in its safe form.
    message = safe_text(str(error.get("Message", "")) or str(exc), limit=300)
    return ConfigError(f"{permission} in {region} failed: {code} {message}".rstrip())
