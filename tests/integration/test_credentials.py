"""Humanos credentials from Secrets Manager (moto in server mode, real boto3 over HTTP), and rotation end to end."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import urllib3

from humanos_bridge.core.client import HumanosClient
from humanos_bridge.core.credentials import Credentials, SecretsManagerCredentials, StaticCredentials
from humanos_bridge.core.errors import ConfigError, CredentialsError
from humanos_bridge_local.sandbox import RecordedCall, Sandbox

SECRET_NAME = "humanos/credentials"
SHAPE = 'store JSON {"apiKey": "...", "signatureSecret": "..."}'


@pytest.fixture
def secrets(moto: Any) -> Any:
    """A real boto3 Secrets Manager client aimed at the moto server."""
    return moto.client("secretsmanager")


def create_secret(secrets: Any, value: str | dict[str, Any], name: str = SECRET_NAME) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return str(secrets.create_secret(Name=name, SecretString=text)["ARN"])


def test_valid_secret_gives_credentials(secrets: Any) -> None:
    """JSON {apiKey, signatureSecret} becomes Credentials; one read reaches Secrets Manager."""
    arn = create_secret(secrets, {"apiKey": "key-1", "signatureSecret": "secret-1"})
    source = SecretsManagerCredentials(arn, boto3_client=secrets)

    assert source.get() == Credentials("key-1", "secret-1")
    assert source.fetch_count == 1


def test_credentials_repr_shows_no_characters_of_either_value() -> None:
    """repr/str of Credentials say only the lengths."""
    credentials = Credentials("key-1234567", "secret-abcdefgh")
    assert repr(credentials) == "Credentials(api_key=<11 chars>, signature_secret=<15 chars>)"
    assert str(credentials) == repr(credentials)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"apiKey": "key-value-1"}, "'signatureSecret' is missing"),
        ({"signatureSecret": "sig-value-1"}, "'apiKey' is missing"),
        ({"api_key": "key-value-1", "signature_secret": "sig-value-1"}, "'apiKey' and 'signatureSecret' are missing"),
        ({"apiKey": "", "signatureSecret": "sig-value-1"}, "'apiKey' must be a non-empty string"),
        ({"apiKey": "key-value-1", "signatureSecret": 987654}, "'signatureSecret' must be a non-empty string"),
        ("not json: super-secret-value", "is not JSON"),
        ('["key-value-1", "sig-value-1"]', "is JSON but not an object"),
    ],
)
def test_malformed_secret_names_what_is_wrong_and_never_the_values(
    secrets: Any, value: str | dict[str, Any], problem: str
) -> None:
    """Each malformed shape raises a CredentialsError naming the field and the expected shape. Retryable: the
    operator fixes the secret, and events wait for it (alarming) instead of being parked."""
    arn = create_secret(secrets, value)
    source = SecretsManagerCredentials(arn, boto3_client=secrets)

    with pytest.raises(CredentialsError) as caught:
        source.get()

    separator = " " if problem.startswith("is ") else ": "
    assert str(caught.value) == f"Humanos secret {arn}{separator}{problem}; {SHAPE}"
    assert caught.value.retryable is True
    for secret_value in ("key-value-1", "sig-value-1", "super-secret-value", "987654"):
        assert secret_value not in str(caught.value)


def test_missing_secret_waits_for_the_operator_and_says_how_to_fix(secrets: Any) -> None:
    """ResourceNotFound: says to create it or fix HUMANOS_SECRET_ID; retryable, events wait for the fix."""
    source = SecretsManagerCredentials("humanos/absent", boto3_client=secrets)
    with pytest.raises(CredentialsError) as caught:
        source.get()
    assert str(caught.value) == (
        f"Humanos secret humanos/absent does not exist; create it ({SHAPE}) or fix HUMANOS_SECRET_ID "
        "(ResourceNotFoundException)"
    )
    assert caught.value.retryable is True


def test_unreachable_secrets_manager_is_retryable(moto: Any) -> None:
    """No Secrets Manager at the endpoint (connection refused): retryable, it may answer next time.

    (``moto`` only provides the fake AWS credentials; the client is aimed at a port where nothing listens.)
    """
    import boto3
    from botocore.config import Config

    unreachable = boto3.session.Session(region_name="eu-west-1").client(
        "secretsmanager",
        endpoint_url="http://127.0.0.1:9",  # discard port: nothing listens
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1),
    )
    source = SecretsManagerCredentials(SECRET_NAME, boto3_client=unreachable)
    with pytest.raises(CredentialsError) as caught:
        source.get()
    assert (
        str(caught.value)
        == f"Humanos secret {SECRET_NAME} could not be read now (EndpointConnectionError); retry later"
    )
    assert caught.value.retryable is True


def test_empty_secret_id_is_a_config_error() -> None:
    """An unset HUMANOS_SECRET_ID is caught at construction, not at the first event."""
    with pytest.raises(ConfigError, match=r"^HUMANOS_SECRET_ID is empty; set it to the ARN of the Humanos secret$"):
        SecretsManagerCredentials("")


def test_value_is_cached_for_the_ttl(secrets: Any) -> None:
    """Within the TTL, reads are served from the cache: a changed secret is not seen, and nothing is fetched."""
    arn = create_secret(secrets, {"apiKey": "key-1", "signatureSecret": "secret-1"})
    source = SecretsManagerCredentials(arn, ttl_seconds=300, boto3_client=secrets)
    source.get()
    secrets.put_secret_value(SecretId=arn, SecretString=json.dumps({"apiKey": "key-1", "signatureSecret": "secret-2"}))

    for _ in range(5):
        assert source.get() == Credentials("key-1", "secret-1")
    assert source.fetch_count == 1


def test_zero_ttl_reads_every_time(secrets: Any) -> None:
    """ttl_seconds=0 disables the cache: each get reaches Secrets Manager."""
    arn = create_secret(secrets, {"apiKey": "key-1", "signatureSecret": "secret-1"})
    source = SecretsManagerCredentials(arn, ttl_seconds=0, boto3_client=secrets)
    for _ in range(3):
        source.get()
    assert source.fetch_count == 3


def test_force_refresh_bypasses_the_cache_and_refills_it(secrets: Any) -> None:
    """force_refresh reads the new value at once; later plain reads get that new value from the cache."""
    arn = create_secret(secrets, {"apiKey": "key-1", "signatureSecret": "secret-1"})
    source = SecretsManagerCredentials(arn, boto3_client=secrets)
    source.get()
    secrets.put_secret_value(SecretId=arn, SecretString=json.dumps({"apiKey": "key-1", "signatureSecret": "secret-2"}))

    assert source.get(force_refresh=True) == Credentials("key-1", "secret-2")
    assert source.get() == Credentials("key-1", "secret-2")
    assert source.fetch_count == 2


def test_static_credentials_ignore_force_refresh() -> None:
    """StaticCredentials always hand out the same pair."""
    source = StaticCredentials("k", "s")
    assert source.get() == source.get(force_refresh=True) == Credentials("k", "s")


@pytest.fixture
def pool() -> Iterator[urllib3.PoolManager]:
    manager = urllib3.PoolManager()
    yield manager
    manager.clear()


def test_rotation_costs_exactly_one_refresh_and_one_extra_call(
    secrets: Any, sandbox: Sandbox, pool: urllib3.PoolManager
) -> None:
    """The secret rotates in Secrets Manager and on Humanos; the next create gets 401, refreshes once, then 201."""
    arn = create_secret(secrets, {"apiKey": sandbox.api_key, "signatureSecret": sandbox.signature_secret})
    source = SecretsManagerCredentials(arn, ttl_seconds=300, boto3_client=secrets)
    client = HumanosClient(sandbox.base_url, "2026-05-17", source, pool=pool, sleep=lambda s: None)
    body = {"contacts": ["joana.silva@example.com"], "groupIds": ["grp-1"], "internalId": "order-1"}
    assert client.create_request(body, "evt-before").status == 201
    assert source.fetch_count == 1

    new_secret = "rotated-" + "x" * 24
    secrets.put_secret_value(
        SecretId=arn, SecretString=json.dumps({"apiKey": sandbox.api_key, "signatureSecret": new_secret})
    )
    sandbox.rotate_secret(new_secret)
    response = client.create_request({**body, "internalId": "order-2"}, "evt-after")

    assert (response.status, response.attempts) == (201, 2)
    assert source.fetch_count == 2
    assert [call.status for call in sandbox.calls] == [201, 401, 201]
    assert len(sandbox.created) == 2

    # The refreshed value stays cached: the next call needs no fetch and no extra attempt.
    assert client.create_request({**body, "internalId": "order-3"}, "evt-later").attempts == 1
    assert source.fetch_count == 2


def test_a_refresh_of_credentials_already_replaced_fetches_nothing(secrets: Any) -> None:
    """A worker refreshing after a 401 names the credentials that were refused (``stale``); when another
    worker has already replaced them, it gets the new ones from the cache without a fetch."""
    arn = create_secret(secrets, {"apiKey": "k", "signatureSecret": "old"})
    source = SecretsManagerCredentials(arn, ttl_seconds=300, boto3_client=secrets)
    refused = source.get()
    secrets.put_secret_value(SecretId=arn, SecretString=json.dumps({"apiKey": "k", "signatureSecret": "new"}))

    fresh = [source.get(force_refresh=True, stale=refused) for _ in range(3)]

    assert fresh == [Credentials("k", "new")] * 3
    assert source.fetch_count == 2  # the first read, then one refresh


def test_concurrent_refreshes_after_one_rotation_fetch_once(secrets: Any) -> None:
    """Eight workers meet the same 401 and refresh at the same moment (released together by a barrier):
    one of them reads Secrets Manager, the others wait for it and get its value."""
    arn = create_secret(secrets, {"apiKey": "k", "signatureSecret": "old"})
    source = SecretsManagerCredentials(arn, ttl_seconds=300, boto3_client=secrets)
    refused = source.get()
    secrets.put_secret_value(SecretId=arn, SecretString=json.dumps({"apiKey": "k", "signatureSecret": "new"}))
    workers = 8
    barrier = threading.Barrier(workers)

    def refresh() -> Credentials:
        barrier.wait(timeout=10)
        return source.get(force_refresh=True, stale=refused)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        fresh = list(pool.map(lambda _: refresh(), range(workers)))

    assert fresh == [Credentials("k", "new")] * workers
    assert source.fetch_count == 2  # the first read, then one refresh for all eight


def test_workers_refused_together_after_a_rotation_read_the_secret_once(secrets: Any) -> None:
    """Eight workers share one client and create requests with the cached secret just after it rotated. The
    sandbox holds each 401 until all eight have arrived, so all are refused and refresh at the same moment:
    one Secrets Manager read serves the eight, and each creates its request with one extra attempt."""
    workers = 8
    refused_together = threading.Barrier(workers)

    def hold_each_401_until_all_arrive(call: RecordedCall) -> None:
        if call.status == 401:
            refused_together.wait(timeout=10)

    with (
        Sandbox(on_call=hold_each_401_until_all_arrive) as sandbox,
        urllib3.PoolManager(maxsize=workers) as pool,
    ):
        arn = create_secret(secrets, {"apiKey": sandbox.api_key, "signatureSecret": sandbox.signature_secret})
        source = SecretsManagerCredentials(arn, ttl_seconds=300, boto3_client=secrets)
        client = HumanosClient(sandbox.base_url, "2026-05-17", source, pool=pool, sleep=lambda s: None)
        source.get()  # cached before the rotation, as in a warm container
        rotated = json.dumps({"apiKey": sandbox.api_key, "signatureSecret": sandbox.rotate_secret()})
        secrets.put_secret_value(SecretId=arn, SecretString=rotated)

        def create(n: int) -> int:
            body = {"contacts": ["joana.silva@example.com"], "groupIds": ["grp-1"], "internalId": f"order-{n}"}
            return client.create_request(body, f"evt-{n}").attempts

        with ThreadPoolExecutor(max_workers=workers) as executor:
            attempts = list(executor.map(create, range(workers)))

    assert attempts == [2] * workers
    assert source.fetch_count == 2  # the first read, then one refresh for all eight
    assert sorted(call.status for call in sandbox.calls) == [201] * workers + [401] * workers
    assert len(sandbox.created) == workers
