"""The AWS resources of template.yaml, created in moto from the template's own definitions.

The local stack must not drift from what ``sam deploy`` creates, so nothing here restates a queue
attribute, a key schema or a redrive policy: each emulated resource's ``Properties`` are read from
the template, their intrinsic functions evaluated (``!Ref`` of a parameter gives its default or the
override, ``!GetAtt DeadLetterQueue.Arn`` the moto queue's ARN), and passed to moto. A property the
local stack cannot reproduce fails loudly instead of being dropped.

The functions' environment comes from the template the same way: ``Globals.Function`` variables merged
with the function's own, ``!Ref`` of a resource giving its moto id. Files that a layer without a
build method puts under ``/opt/`` are found in that layer's ``ContentUri`` directory.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from humanos_bridge.core.errors import ConfigError
from humanos_bridge_local.cfn import Intrinsics, load_template

#: Resource types the local stack creates in moto; everything else (API, functions, alarms) is emulated
#: in-process or has no local meaning.
EMULATED_TYPES = (
    "AWS::SQS::Queue",
    "AWS::DynamoDB::Table",
    "AWS::SecretsManager::Secret",
    "AWS::Events::EventBus",
)
ACCOUNT_ID = "123456789012"
#: Resources emulated in-process rather than in moto: what ``!Ref`` gives for them (an event's ``ApiId``).
IN_PROCESS = {"AWS::Serverless::HttpApi": "local"}
#: SQS queue properties that are queue attributes as they are (values become strings).
_SQS_PLAIN = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)
#: SQS queue properties that are JSON documents as queue attributes.
_SQS_JSON = ("RedrivePolicy", "RedriveAllowPolicy")
_TABLE_PASSED = (
    "AttributeDefinitions",
    "KeySchema",
    "BillingMode",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "ProvisionedThroughput",
    "StreamSpecification",
)


@dataclass(frozen=True)
class Physical:
    """A created resource: what ``!Ref`` gives and its ``!GetAtt`` attributes."""

    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


class TemplateResources:
    """Creates the template's emulated resources in moto, on demand and in dependency order.

    Parameters
    ----------
    template_path
        ``template.yaml``.
    session
        A boto3 session; clients are made with ``endpoint_url``.
    endpoint_url
        The moto server.
    parameter_overrides
        Parameter values that replace the template's defaults (like ``sam deploy --parameter-overrides``).
    secret_strings
        ``SecretString`` for secrets by logical id: the template's placeholders are for AWS, the local
        stack stores generated credentials instead.
    stack_name
        ``AWS::StackName`` (secret names are derived from it).
    opt_dir
        The folder standing for ``/opt`` in the functions' environment values.
    """

    def __init__(
        self,
        template_path: Path,
        session: Any,
        endpoint_url: str,
        *,
        parameter_overrides: Mapping[str, Any] | None = None,
        secret_strings: Mapping[str, str] | None = None,
        stack_name: str = "humanos-bridge-local",
        opt_dir: Path | None = None,
    ) -> None:
        self.template_path = template_path.resolve()
        self.document = load_template(template_path)
        self.resources: dict[str, dict[str, Any]] = self.document.get("Resources", {})
        self.session = session
        self.endpoint_url = endpoint_url
        self.region = str(session.region_name)
        self.stack_name = stack_name
        #: Where the function's layers are, as Lambda's ``/opt``; None = the source folders of layers
        #: without a build step (enough to read a mapping file).
        self.opt_dir = opt_dir
        self.secret_strings = dict(secret_strings or {})
        self.parameters = self._parameters(parameter_overrides or {})
        self.intrinsics = Intrinsics(self.parameters, self.document.get("Conditions", {}), self._ref, self._get_att)
        self.created: dict[str, Physical] = {}
        self._creating: set[str] = set()

    # -- parameters -------------------------------------------------------------------------------

    def _parameters(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        declared: dict[str, dict[str, Any]] = self.document.get("Parameters", {})
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise ConfigError(f"template {self.template_path} declares no parameter(s) {', '.join(unknown)}")
        values: dict[str, Any] = {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{ACCOUNT_ID}:stack/{self.stack_name}/local",
        }
        for name, spec in declared.items():
            if name in overrides:
                values[name] = str(overrides[name])
            elif "Default" in spec:
                values[name] = str(spec["Default"])
            else:
                raise ConfigError(f"template parameter {name} has no default; pass a value for it")
        return values

    def parameter(self, name: str) -> str:
        return str(self.parameters[name])

    # -- resources --------------------------------------------------------------------------------

    def create_all(self) -> dict[str, Physical]:
        """Create every emulated resource whose condition holds; return them by logical id."""
        for logical_id, body in self.resources.items():
            if body.get("Type") in EMULATED_TYPES and self._wanted(logical_id):
                self._ensure(logical_id)
        return dict(self.created)

    def of_type(self, resource_type: str) -> list[str]:
        return [name for name, body in self.resources.items() if body.get("Type") == resource_type]

    def _wanted(self, logical_id: str) -> bool:
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.intrinsics.condition(str(condition))

    def _ensure(self, logical_id: str) -> Physical:
        if logical_id in self.created:
            return self.created[logical_id]
        body = self.resources.get(logical_id)
        if body is None:
            raise ConfigError(f"template refers to {logical_id!r}, which it does not declare under Resources")
        kind = body.get("Type")
        if kind in IN_PROCESS:
            return Physical(IN_PROCESS[kind])
        if kind not in EMULATED_TYPES:
            raise ConfigError(f"the local stack does not emulate {kind} ({logical_id}), yet something refers to it")
        if not self._wanted(logical_id):
            raise ConfigError(f"{logical_id} is referred to but its condition {body.get('Condition')} is false")
        if logical_id in self._creating:
            raise ConfigError(f"template resource {logical_id} refers to itself through its properties")
        self._creating.add(logical_id)
        properties = self.intrinsics.value(body.get("Properties", {}))
        creator = {
            "AWS::SQS::Queue": self._create_queue,
            "AWS::DynamoDB::Table": self._create_table,
            "AWS::SecretsManager::Secret": self._create_secret,
            "AWS::Events::EventBus": self._create_event_bus,
        }[kind]
        physical = creator(logical_id, properties)
        self.created[logical_id] = physical
        return physical

    def _ref(self, name: str) -> str:
        return self._ensure(name).ref

    def _get_att(self, name: str, attribute: str) -> str:
        physical = self._ensure(name)
        if attribute not in physical.attributes:
            known = ", ".join(sorted(physical.attributes))
            raise ConfigError(f"!GetAtt {name}.{attribute}: the local stack knows only {known}")
        return physical.attributes[attribute]

    def _client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)

    def _create_queue(self, logical_id: str, properties: dict[str, Any]) -> Physical:
        _refuse_unknown(logical_id, properties, {"QueueName", "Tags", *_SQS_PLAIN, *_SQS_JSON})
        attributes = {name: _attribute_text(properties[name]) for name in _SQS_PLAIN if name in properties}
        for name in _SQS_JSON:
            if name in properties:
                value = properties[name]
                attributes[name] = value if isinstance(value, str) else json.dumps(value)
        suffix = ".fifo" if attributes.get("FifoQueue") == "true" else ""
        name = properties.get("QueueName") or f"{self.stack_name}-{logical_id}{suffix}"
        sqs = self._client("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return Physical(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})

    def _create_table(self, logical_id: str, properties: dict[str, Any]) -> Physical:
        allowed = {
            "TableName",
            "Tags",
            "SSESpecification",
            "TimeToLiveSpecification",
            "PointInTimeRecoverySpecification",
            *_TABLE_PASSED,
        }
        _refuse_unknown(logical_id, properties, allowed)
        name = properties.get("TableName") or f"{self.stack_name}-{logical_id}"
        arguments = {key: properties[key] for key in _TABLE_PASSED if key in properties}
        sse = properties.get("SSESpecification")
        if sse:
            # CloudFormation spells it SSEEnabled, the API Enabled.
            arguments["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled", False))}
        dynamodb = self._client("dynamodb")
        table = dynamodb.create_table(TableName=name, **arguments)["TableDescription"]
        ttl = properties.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": bool(ttl["Enabled"])},
            )
        pitr = properties.get("PointInTimeRecoverySpecification")
        if pitr:
            enabled = bool(pitr.get("PointInTimeRecoveryEnabled", False))
            dynamodb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": enabled}
            )
        attributes = {"Arn": table["TableArn"]}
        if table.get("LatestStreamArn"):
            attributes["StreamArn"] = table["LatestStreamArn"]
        return Physical(name, attributes)

    def _create_secret(self, logical_id: str, properties: dict[str, Any]) -> Physical:
        _refuse_unknown(logical_id, properties, {"Name", "Description", "SecretString", "KmsKeyId", "Tags"})
        name = properties.get("Name") or f"{self.stack_name}-{logical_id}"
        value = self.secret_strings.get(logical_id, properties.get("SecretString", ""))
        arguments = {"Name": name, "SecretString": value}
        if properties.get("Description"):
            arguments["Description"] = properties["Description"]
        arn = self._client("secretsmanager").create_secret(**arguments)["ARN"]
        return Physical(arn, {"Id": arn})

    def _create_event_bus(self, logical_id: str, properties: dict[str, Any]) -> Physical:
        _refuse_unknown(logical_id, properties, {"Name", "Description", "Tags"})
        name = properties.get("Name") or f"{self.stack_name}-{logical_id}"
        arguments: dict[str, Any] = {"Name": name}
        if properties.get("Description"):
            arguments["Description"] = properties["Description"]
        if properties.get("Tags"):
            arguments["Tags"] = properties["Tags"]
        arn = self._client("events").create_event_bus(**arguments)["EventBusArn"]
        # CloudFormation's !Ref of a bus is its name.
        return Physical(name, {"Arn": arn, "Name": name})

    # -- the functions' environment ---------------------------------------------------------------

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """Environment variables of function ``logical_id`` as deployed (Globals merged, function wins)."""
        values = self.intrinsics.value(self._variables(logical_id))
        return {name: self._local_path(str(value)) for name, value in values.items()}

    def function_variable(self, logical_id: str, name: str) -> str:
        """One environment variable of a function (only what it refers to is created)."""
        variables = self._variables(logical_id)
        if name not in variables:
            raise ConfigError(f"template sets no {name} for {logical_id}")
        return self._local_path(str(self.intrinsics.value(variables[name])))

    def _variables(self, logical_id: str) -> dict[str, Any]:
        function = self.resources.get(logical_id)
        if function is None or function.get("Type") != "AWS::Serverless::Function":
            raise ConfigError(f"template declares no function {logical_id!r}")
        merged = dict(self.document.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
        merged.update(function.get("Properties", {}).get("Environment", {}).get("Variables", {}))
        return merged

    def function_property(self, logical_id: str, name: str) -> Any:
        """A function property (Globals merged), evaluated: ``Timeout``, ``Events`` ..."""
        own = self.resources[logical_id].get("Properties", {})
        value = own.get(name, self.document.get("Globals", {}).get("Function", {}).get(name))
        return self.intrinsics.value(value)

    def event_source_mappings(self, function: str) -> list[dict[str, Any]]:
        """Properties (evaluated) of each ``AWS::Lambda::EventSourceMapping`` that triggers ``function``.

        ``FunctionName`` is left out: it names the function, which the local stack runs itself.
        """
        found = []
        for logical_id, body in self.resources.items():
            if body.get("Type") != "AWS::Lambda::EventSourceMapping" or not self._wanted(logical_id):
                continue
            properties = dict(body.get("Properties", {}))
            target = properties.pop("FunctionName", None)
            if target in ({"Ref": function}, {"Fn::GetAtt": [function, "Arn"]}):
                found.append(self.intrinsics.value(properties))
        return found

    def _local_path(self, value: str) -> str:
        """``/opt/<file>`` becomes the file in the layer directory that ships it (layers without a build step)."""
        if not value.startswith("/opt/"):
            return value
        relative = value[len("/opt/") :]
        if self.opt_dir is not None:
            return str(self.opt_dir / relative)
        root = self.template_path.parent
        for body in self.resources.values():
            if body.get("Type") != "AWS::Serverless::LayerVersion" or body.get("Metadata", {}).get("BuildMethod"):
                continue
            candidate = root / str(body.get("Properties", {}).get("ContentUri", "")) / relative
            if candidate.exists():
                return str(candidate)
        return value


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _refuse_unknown(logical_id: str, properties: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(properties) - allowed)
    if unknown:
        raise ConfigError(
            f"template resource {logical_id} sets {', '.join(unknown)}, which the local stack does not reproduce; "
            "teach humanos_bridge_local/resources.py to create it so local and deployed stacks stay alike"
        )
