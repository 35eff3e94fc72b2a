"""Parameters, conditions and samconfig.toml: every knob is used, documented and spelled the same everywhere."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
from cfn_template import Template, conditions_used, evaluate_rules, references

#: The knobs a user tunes, with the defaults README.md documents.
DOCUMENTED_DEFAULTS = {
    "HumanosBaseUrl": "https://api.humanos.id",
    "HumanosApiVersion": "",
    "RateLimitPerMinute": 60,
    "SecretTtlSeconds": 300,
    "LogLevel": "INFO",
    "MappingFile": "bridge.json",
    "AlarmEmail": "",
    "BatchSize": 10,
    "BatchingWindowSeconds": 0,
    "MaxConcurrency": 2,
    "MaxReceiveCount": 200,
    "CreateSecrets": "true",
    "ExistingHumanosSecretArn": "",
    "ExistingSenderSecretArn": "",
    "ThrottlingBurstLimit": 50,
    "ThrottlingRateLimit": 20,
    "ServiceName": "humanos-bridge",
    "MetricsNamespace": "HumanosBridge",
    "QueueAgeAlarmSeconds": 900,
    "QueueRetentionAlarmPercent": 50,
    "SecretsKmsKeyArn": "",
    "LogsKmsKeyArn": "",
    "TableKmsKeyArn": "",
    "AlarmTopicKmsKeyArn": "",
}


def _uses(template: Template) -> set[str]:
    """Names referenced anywhere a parameter can take effect (Rules only check, so they do not count)."""
    document = template.document
    return references([document.get("Globals", {}), template.resources, template.outputs, template.conditions])


def test_every_parameter_is_used(template: Template) -> None:
    """A parameter nothing reads misleads whoever sets it."""
    unused = set(template.parameters) - _uses(template)
    assert not unused, f"parameters {sorted(unused)} are not referenced by any resource, output or condition"


def test_every_condition_is_used(template: Template) -> None:
    """A condition nothing reads is dead configuration."""
    used = conditions_used([template.document.get("Globals", {}), template.resources, template.outputs])
    unused = set(template.conditions) - used
    assert not unused, f"conditions {sorted(unused)} are used by no resource, property or output"


@pytest.mark.parametrize(("parameter", "default"), sorted(DOCUMENTED_DEFAULTS.items()))
def test_parameter_exists_with_its_documented_default(template: Template, parameter: str, default: Any) -> None:
    """The defaults the deployment guide promises are the template's."""
    assert parameter in template.parameters, f"Parameters: add {parameter}"
    assert template.parameters[parameter].get("Default") == default, (
        f"{parameter}: Default should be {default!r} (or update README.md and this table together)"
    )


def test_every_parameter_says_what_it_does(template: Template) -> None:
    """sam deploy --guided shows the Description; an empty one leaves the user guessing."""
    silent = [name for name, body in template.parameters.items() if not body.get("Description", "").strip()]
    assert not silent, f"parameters {silent} need a Description"


def test_every_parameter_is_in_the_configuration_reference(template: Template) -> None:
    """README.md's configuration reference lists every parameter by name."""
    guide = (template.path.parent / "README.md").read_text(encoding="utf-8")
    missing = [name for name in template.parameters if f"`{name}`" not in guide]
    assert not missing, f"README.md: add {missing} to the configuration reference"


def test_existing_secret_arns_are_required_when_the_stack_creates_none(template: Template) -> None:
    """CreateSecrets=false with an empty ARN would deploy functions that can read no secret; a Rule refuses it."""
    rule = template.document["Rules"]["ExistingSecretsNamed"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "CreateSecrets"}, "false"]}
    asserted = {sorted(references(item["Assert"]))[0] for item in rule["Assertions"]}
    assert asserted == {"ExistingHumanosSecretArn", "ExistingSenderSecretArn"}


@pytest.mark.parametrize("environment", ["default", "prod"])
def test_samconfig_environment_deploys_with_iam_capability(samconfig: dict[str, Any], environment: str) -> None:
    """Each environment deploys without questions: stack name, region, bucket, capability, change-set review."""
    assert environment in samconfig, f"samconfig.toml: add the [{environment}.*] sections"
    global_parameters = samconfig[environment]["global"]["parameters"]
    deploy = samconfig[environment]["deploy"]["parameters"]
    assert global_parameters["stack_name"].startswith("humanos-bridge"), f"[{environment}] name the stack"
    assert "region" in global_parameters, f"[{environment}.global.parameters] set a region"
    assert deploy["capabilities"] == "CAPABILITY_IAM", f"[{environment}.deploy] capabilities = CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True, f"[{environment}.deploy] resolve_s3 = true"
    assert deploy["confirm_changeset"] is True, f"[{environment}.deploy] confirm_changeset = true"


@pytest.mark.parametrize("environment", ["default", "prod"])
def test_samconfig_overrides_name_real_parameters(
    template: Template, samconfig: dict[str, Any], environment: str
) -> None:
    """A misspelled override is an error at deploy time; catch it here."""
    overrides = shlex.split(samconfig[environment]["deploy"]["parameters"]["parameter_overrides"])
    for override in overrides:
        name, _, value = override.partition("=")
        assert name in template.parameters, f"samconfig [{environment}] overrides unknown parameter {name}"
        allowed = template.parameters[name].get("AllowedValues")
        assert allowed is None or value in [str(item) for item in allowed], f"{name}={value} not in {allowed}"


@pytest.mark.parametrize(("environment", "refused"), [("default", []), ("prod", ["AlarmEmail"])])
def test_samconfig_environments_pass_the_templates_rules_except_prods_alarm_email(
    template: Template, samconfig: dict[str, Any], environment: str, refused: list[str]
) -> None:
    """The development stack deploys as configured; prod stops until someone sets who receives its alarms
    (an empty AlarmEmail used to mean nobody), and for no other reason."""
    overrides = dict(
        item.partition("=")[::2]
        for item in shlex.split(samconfig[environment]["deploy"]["parameters"]["parameter_overrides"])
    )
    failed = evaluate_rules(template.document, overrides)
    assert [name for name in ("AlarmEmail", "BatchSize", "CreateSecrets") if any(name in f for f in failed)] == refused
    assert len(failed) == len(refused), failed
