"""A source's ``auth`` block in the mapping file: presets, the generic hmac scheme, static credentials.

Each example below is an auth block as a user writes it; the errors are what ``mappings check`` prints,
every problem of the block at once, each with where it is and how to fix it.
"""

from __future__ import annotations

from typing import Any

import pytest

from humanos_bridge.core.errors import ConfigError
from humanos_bridge.core.sender_auth import PRESETS, ApiKeyScheme, HmacScheme
from humanos_bridge.mapping import AuthConfig, parse_mapping
from tests.support.mappings import one_source

RULES = [{"name": "consent", "request": {"contacts": "=as_list(phone)", "groupIds": ["grp_1"]}}]
AUTH = "m.json: sources.crm.auth"


def auth_of(block: dict[str, Any]) -> AuthConfig:
    auth = parse_mapping(one_source(RULES, auth=block), file="m.json").source("crm").auth
    assert auth is not None
    return auth


def errors_of(block: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_mapping(one_source(RULES, auth=block), file="m.json")
    return list(caught.value.details["errors"])


@pytest.mark.parametrize("scheme", sorted(PRESETS))
def test_a_preset_is_one_line_and_carries_the_providers_settings(scheme: str) -> None:
    """{"scheme": "stripe"} is all it takes; the source's AuthConfig shows how the provider signs."""
    assert auth_of({"scheme": scheme}) == AuthConfig(scheme, "crm", settings=PRESETS[scheme])


def test_a_preset_may_set_its_tolerance_and_secret_key() -> None:
    """Only the window and the secret's entry: how the provider signs is fixed."""
    auth = auth_of({"scheme": "hubspot-v3", "secretKey": "hubspot-app", "tolerance": 120})
    assert (auth.secret_key, auth.tolerance) == ("hubspot-app", 120.0)


def test_the_generic_scheme_reads_every_field() -> None:
    """An auth block for a provider without a preset: the fields map one to one onto HmacScheme."""
    auth = auth_of(
        {
            "scheme": "hmac",
            "secretKey": "acme",
            "algorithm": "SHA-512",
            "encoding": "base64",
            "signatureHeader": "X-Acme-Signature",
            "signaturePrefix": "v1=",
            "signatureSeparator": " ",
            "signed": "{timestamp}.{method}.{url}.{header:X-Acme-Delivery}.{body}",
            "timestampHeader": "X-Acme-Timestamp",
            "timestampUnit": "milliseconds",
            "urlDecode": ":",
            "tolerance": 60,
        }
    )
    assert auth == AuthConfig(
        "hmac",
        "acme",
        settings=HmacScheme(
            "X-Acme-Signature",
            algorithm="sha512",  # as providers' docs write it, "SHA-512", read as the name it has here
            encoding="base64",
            signed="{timestamp}.{method}.{url}.{header:X-Acme-Delivery}.{body}",
            signature_prefix="v1=",
            signature_separator=" ",
            timestamp_header="X-Acme-Timestamp",
            timestamp_unit="milliseconds",
            url_decode=":",
        ),
        tolerance=60.0,
    )


def test_static_credentials_read_their_header() -> None:
    """api-key names the header (and an optional prefix); basic-auth needs nothing but its secret."""
    assert auth_of({"scheme": "api-key", "keyHeader": "Authorization", "keyPrefix": "Bearer "}).settings == (
        ApiKeyScheme("Authorization", "Bearer ")
    )
    assert auth_of({"scheme": "basic-auth"}) == AuthConfig("basic-auth", "crm")


def test_the_existing_schemes_load_as_before() -> None:
    """humanos-hmac and standard-webhooks carry no settings; the function's tolerance applies."""
    assert auth_of({"scheme": "humanos-hmac"}) == AuthConfig("humanos-hmac", "crm")
    assert auth_of({"scheme": "standard-webhooks", "secretKey": "shop"}) == AuthConfig("standard-webhooks", "shop")


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        pytest.param(
            {"scheme": "hmac"},
            [f'{AUTH}.signatureHeader: required: the header that carries the signature, e.g. "X-Signature"'],
            id="hmac-without-header",
        ),
        pytest.param(
            {"scheme": "hmac", "signatureHeader": "X-Sig", "algorithm": "sha265"},
            [f"{AUTH}.algorithm: unknown algorithm 'sha265'; use one of sha1, sha256, sha512; did you mean 'sha256'?"],
            id="unknown-algorithm",
        ),
        pytest.param(
            {"scheme": "hmac", "signatureHeader": "X-Sig", "encoding": "base32"},
            [f"{AUTH}.encoding: unknown encoding 'base32'; use one of hex, base64; did you mean 'base64'?"],
            id="unknown-encoding",
        ),
        pytest.param(
            {"scheme": "hmac", "signatureHeader": "X-Sig", "signed": "{tiemstamp}.{body}", "timestampHeader": "X-T"},
            [
                f"{AUTH}.signed: unknown part {{tiemstamp}}; did you mean {{timestamp}}? the parts are {{body}}, "
                "{timestamp}, {method}, {url} and {header:<name>}"
            ],
            id="template-unknown-part",
        ),
        pytest.param(
            {"scheme": "hmac", "signatureHeader": "X-Sig", "signed": "{timestamp}.{body}"},
            [f"{AUTH}.signed: names {{timestamp}} but no timestamp is read; add timestampHeader or timestampKey"],
            id="template-timestamp-without-source",
        ),
        pytest.param(
            {"scheme": "hmac", "signatureHeader": "X-Sig", "signed": "{method}{url}"},
            [f"{AUTH}.signed: must include {{body}}: a signature that leaves the body out does not protect it"],
            id="template-without-body",
        ),
        pytest.param(
            {"scheme": "hmac", "signatureHeader": "X-Sig", "timestampHeader": "X-Time"},
            [
                f"{AUTH}.timestampHeader: the timestamp must be signed, or anyone could refresh it: "
                "add {timestamp} to signed"
            ],
            id="timestamp-not-signed",
        ),
        pytest.param(
            {"scheme": "hmac", "signatureHeader": "X-Sig", "timestampKey": "t", "signed": "{timestamp}.{body}"},
            [f"{AUTH}.timestampKey: needs signatureKey: it names an entry of the signature header's list"],
            id="timestamp-key-without-list",
        ),
        pytest.param(
            {"scheme": "hmac", "signatureHeader": "X-Sig", "signatureSeparator": ";"},
            [f'{AUTH}.signatureSeparator: must be " " or ",", got \';\''],
            id="separator",
        ),
        pytest.param(
            {"scheme": "hmac", "signatureHeader": "X-Sig", "urlDecode": ":/"},
            [f"{AUTH}.urlDecode: applies only when signed includes {{url}}; remove it"],
            id="url-decode-without-url",
        ),
        pytest.param(
            {"scheme": "hmac", "signatureHeader": "X-Sig", "tolerance": 60},
            [f"{AUTH}.tolerance: applies only with timestampHeader or timestampKey; remove it"],
            id="hmac-tolerance-without-timestamp",
        ),
        pytest.param(
            {"scheme": "hmac", "signatureHeader": 7, "signatureHeadr": "X-Sig"},
            [
                f"{AUTH}.signatureHeadr: unknown key; did you mean 'signatureHeader'?",
                f"{AUTH}.signatureHeader: must be a string, got a number",
            ],
            id="typo-and-type",
        ),
        pytest.param(
            {"scheme": "stripe", "signatureHeader": "X-Stripe"},
            [
                f"{AUTH}.signatureHeader: the stripe preset fixes how requests are signed; remove signatureHeader, "
                'or describe the signature yourself with "scheme": "hmac"'
            ],
            id="preset-field",
        ),
        pytest.param(
            {"scheme": "github", "tolerance": 600},
            [f"{AUTH}.tolerance: github signs no timestamp, so there is no tolerance to set; remove it"],
            id="tolerance-on-untimed-preset",
        ),
        pytest.param(
            {"scheme": "stripe", "tolerance": 86400},
            [f"{AUTH}.tolerance: must be a number of seconds above 0 and at most 3600, got 86400"],
            id="tolerance-too-wide",
        ),
        pytest.param(
            {"scheme": "humanos-hmac", "tolerance": True},
            [f"{AUTH}.tolerance: must be a number of seconds above 0 and at most 3600, got a boolean"],
            id="tolerance-not-a-number",
        ),
        pytest.param(
            {"scheme": "api-key"},
            [f'{AUTH}.keyHeader: required: the header that carries the key, e.g. "X-Api-Key"'],
            id="api-key-without-header",
        ),
        pytest.param(
            {"scheme": "basic-auth", "keyHeader": "X-Api-Key"},
            [f'{AUTH}.keyHeader: keyHeader belongs to the "api-key" scheme, not basic-auth; remove it'],
            id="api-key-field-elsewhere",
        ),
        pytest.param(
            {"scheme": "api-key", "keyHeader": "X-Key", "signed": "{body}"},
            [f'{AUTH}.signed: signed belongs to the "hmac" scheme, not api-key; remove it'],
            id="hmac-field-elsewhere",
        ),
        pytest.param(
            {"scheme": "basic"},
            [
                f"{AUTH}.scheme: must be one of humanos-hmac, standard-webhooks, hmac, stripe, shopify, github, "
                "hubspot-v3, typeform, basic-auth, api-key, got 'basic'; did you mean 'basic-auth'?"
            ],
            id="unknown-scheme",
        ),
    ],
)
def test_auth_block_errors_say_what_where_and_how_to_fix(block: dict[str, Any], expected: list[str]) -> None:
    """The message names the key inside the auth block and the way out."""
    assert errors_of(block) == expected


def test_every_problem_of_an_auth_block_is_reported_at_once() -> None:
    """A block with several mistakes lists them all, so one `mappings check` run finds everything."""
    block = {"scheme": "hmac", "signatureHeader": "X-Sig", "algorithm": "md5", "encoding": "b64", "signed": "{url"}
    assert [line.split(": ", 2)[1] for line in errors_of(block)] == [
        "sources.crm.auth.algorithm",
        "sources.crm.auth.encoding",
        "sources.crm.auth.signed",
    ]
