"""What the Humanos client costs: signing per call, and a create_request against a bare urllib3 POST.

Both HTTP variants talk to the same in-process sandbox in the same run, alternating in blocks, so the
ratio ``client_vs_bare_urllib3_ratio`` is what the client adds (serialising, signing, headers, status
classification, JSON parsing, the retry loop) on top of the transport itself.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import urllib3

from humanos_bridge import USER_AGENT
from humanos_bridge.core import signing, wire
from humanos_bridge.core.client import HumanosClient
from humanos_bridge.core.credentials import StaticCredentials
from humanos_bridge_local.sandbox import Sandbox

API_VERSION = "2026-05-17"
SIGNING_ITERATIONS = 20_000
HTTP_BLOCKS = 20
HTTP_BLOCK_SIZE = 50
WARMUP = 10
#: The HTTP part stops after the block pair that crosses this many seconds (keeps `python -m bench` short
#: even when each answer is slow, e.g. when a server's Nagle algorithm meets the client's delayed ACK).
HTTP_BUDGET_SECONDS = 12.0


def typical_body(n: int = 0) -> dict[str, Any]:
    """A realistic ~600-byte POST /request body (two contacts, an inline credential)."""
    return {
        "contacts": ["joana.silva@example.com", "+351912345678"],
        "securityLevel": "CONTACT",
        "groupIds": ["grp-consent-marketing-v3"],
        "credentials": [
            {
                "type": "CONSENT",
                "name": "Consentimento de tratamento de dados",
                "description": "Autorizo o tratamento dos meus dados pessoais para efeitos de gestão contratual.",
                "validFrom": "2026-01-01T00:00:00.000Z",
                "validUntil": "2027-01-01T00:00:00.000Z",
                "internalId": f"consent-{n:08d}",
                "data": {"channel": "web", "campaign": "spring-2026", "version": 3, "score": 0.75},
            }
        ],
        "name": "Contrato de prestação de serviços",
        "language": "ENG",
        "redirectUrl": "https://example.com/after-signing",
        "internalId": f"order-{n:08d}",
    }


def _signing_cost_us() -> tuple[float, int]:
    body = typical_body()
    size = len(wire.dump_bytes(body))
    started = time.perf_counter()
    for _ in range(SIGNING_ITERATIONS):
        signing.signed_headers("bench-api-key", "bench-signature-secret", wire.dump_bytes(body))
    return (time.perf_counter() - started) / SIGNING_ITERATIONS * 1e6, size


def _client_call_us(client: HumanosClient, n: int) -> float:
    body = typical_body(n)
    started = time.perf_counter()
    response = client.create_request(body, f"bench-client-{n}")
    elapsed = time.perf_counter() - started
    if response.status != 201:
        raise RuntimeError(f"client create_request answered {response.status}")
    return elapsed * 1e6


def _bare_call_us(pool: urllib3.PoolManager, url: str, sandbox: Sandbox, n: int) -> float:
    payload = wire.dump_bytes(typical_body(n))
    # Headers are computed just before sending (the sandbox checks timestamps) but outside the timed part.
    headers = {
        "API-Version": API_VERSION,
        "User-Agent": USER_AGENT,
        "Idempotency-Key": f"bench-bare-{n}",
        **signing.signed_headers(sandbox.api_key, sandbox.signature_secret, payload),
    }
    started = time.perf_counter()
    response = pool.request("POST", url, body=payload, headers=headers)
    elapsed = time.perf_counter() - started
    if response.status != 201:
        raise RuntimeError(f"bare urllib3 POST answered {response.status}")
    return elapsed * 1e6


def run() -> dict[str, Any]:
    signing_us, body_bytes = _signing_cost_us()
    with Sandbox(tolerance_seconds=3600) as sandbox:
        client_pool, bare_pool = urllib3.PoolManager(), urllib3.PoolManager()
        client = HumanosClient(
            sandbox.base_url,
            API_VERSION,
            StaticCredentials(sandbox.api_key, sandbox.signature_secret),
            pool=client_pool,
        )
        url = f"{sandbox.base_url}/request"
        counter = 0
        for _ in range(WARMUP):
            counter += 1
            _client_call_us(client, counter)
            _bare_call_us(bare_pool, url, sandbox, counter)
        client_times: list[float] = []
        bare_times: list[float] = []
        # Alternate blocks so drift (the sandbox's growing store, CPU frequency) hits both variants alike.
        budget_ends = time.perf_counter() + HTTP_BUDGET_SECONDS
        for _ in range(HTTP_BLOCKS):
            if time.perf_counter() > budget_ends:
                break
            for _ in range(HTTP_BLOCK_SIZE):
                counter += 1
                client_times.append(_client_call_us(client, counter))
            for _ in range(HTTP_BLOCK_SIZE):
                counter += 1
                bare_times.append(_bare_call_us(bare_pool, url, sandbox, counter))
        client_pool.clear()
        bare_pool.clear()
    client_us = statistics.median(client_times)
    bare_us = statistics.median(bare_times)
    return {
        "body_bytes": body_bytes,
        "signing_us_per_call": round(signing_us, 2),
        "create_request_client_us_median": round(client_us, 1),
        "create_request_bare_urllib3_us_median": round(bare_us, 1),
        "client_overhead_us_median": round(client_us - bare_us, 1),
        "client_vs_bare_urllib3_ratio": round(client_us / bare_us, 3),
        "http_calls_per_variant": len(client_times),
    }
