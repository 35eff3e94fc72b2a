"""Settings: environment > defaults, parsed once, bad values named with how to fix them."""

from __future__ import annotations

import pytest

from humanos_bridge.core.errors import ConfigError
from humanos_bridge.settings import ENV_NAMES, Settings


def test_defaults_are_safe_for_production() -> None:
    settings = Settings.from_env({})
    assert settings.humanos_base_url == "https://api.humanos.id"
    assert settings.secret_ttl_seconds == 300
    assert settings.rate_limit_per_minute == 60


def test_environment_overrides_defaults_and_arguments_override_environment() -> None:
    env = {"RATE_LIMIT_PER_MINUTE": "30", "HUMANOS_READ_TIMEOUT": "2.5", "MAPPING_FILE": "/opt/bridge.json"}
    settings = Settings.from_env(env, rate_limit_per_minute=12)
    assert (settings.rate_limit_per_minute, settings.read_timeout, settings.mapping_file) == (
        12,
        2.5,
        "/opt/bridge.json",
    )


def test_per_container_rate_shares_the_org_limit() -> None:
    """60 a minute, 15 of them for the synchronous route: each of 3 dispatcher containers may create 15."""
    environ = {"RATE_LIMIT_PER_MINUTE": "60", "SYNC_RATE_LIMIT_PER_MINUTE": "15", "DISPATCHER_MAX_CONCURRENCY": "3"}
    assert Settings.from_env(environ).per_container_rate_per_minute == 15


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RATE_LIMIT_PER_MINUTE": "many"}, "RATE_LIMIT_PER_MINUTE must be an integer (got 'many')"),
        ({"HUMANOS_READ_TIMEOUT": "fast"}, "HUMANOS_READ_TIMEOUT must be a number (got 'fast')"),
        ({"DISPATCHER_MAX_CONCURRENCY": "0"}, "DISPATCHER_MAX_CONCURRENCY must be greater than 0 (got 0)"),
        ({"HUMANOS_BASE_URL": "api.humanos.id"}, "HUMANOS_BASE_URL must be an http(s) URL"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert str(caught.value).startswith(message)


def test_every_setting_has_an_environment_name() -> None:
    """The template and the local stack set variables by these names; none may be missing."""
    import dataclasses

    assert {f.name for f in dataclasses.fields(Settings)} == set(ENV_NAMES)
