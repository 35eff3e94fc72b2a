"""A deployed stack as CloudFormation describes it: its parameters, outputs and resources' physical ids.

``read_stack`` makes two kinds of call, ``DescribeStacks`` (parameters and outputs) and ``ListStackResources``
(the physical id of each logical resource: a function's name, a queue's URL, an API's id). The paginated
list, rather than ``DescribeStackResources``, because that one stops at 100 resources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from humanos_bridge.core.errors import ConfigError
from humanos_bridge.core.masking import safe_id
from humanos_bridge_local.aws_errors import explained


@dataclass(frozen=True)
class Resource:
    """One resource of a stack: its CloudFormation type and the id AWS gave it."""

    type: str
    physical_id: str


@dataclass(frozen=True)
class DeployedStack:
    name: str
    region: str
    parameters: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    #: Logical id -> resource, for every resource the stack has created.
    resources: dict[str, Resource] = field(default_factory=dict)

    def output(self, key: str) -> str:
        """A required output; ConfigError when the stack lacks it."""
        if key not in self.outputs:
            raise ConfigError(
                f"stack {safe_id(self.name, mask=False)!r} has no {key} output; is it a humanos-bridge stack?"
            )
        return self.outputs[key]


def read_stack(session: Any, name: str, endpoint_url: str | None = None) -> DeployedStack:
    """The stack ``name`` in the session's region; ConfigError saying what to fix when it cannot be read."""
    region = str(session.region_name)
    with explained("cloudformation:DescribeStacks", region):
        client = session.client("cloudformation", endpoint_url=endpoint_url)  # no region: NoRegionError here
        try:
            [stack] = client.describe_stacks(StackName=name)["Stacks"]
        except ClientError as exc:
            if "does not exist" not in str(exc.response.get("Error", {}).get("Message", "")):
                raise
            raise ConfigError(
                f"stack {safe_id(name, mask=False)!r} not found in {region}: check --stack, --region, "
                "and that the credentials (--profile) are for the account it was deployed to"
            ) from exc
    with explained("cloudformation:ListStackResources", region):
        summaries = [
            summary
            for page in client.get_paginator("list_stack_resources").paginate(StackName=name)
            for summary in page["StackResourceSummaries"]
        ]
    return DeployedStack(
        name=name,
        region=region,
        parameters={
            item["ParameterKey"]: str(item.get("ResolvedValue", item.get("ParameterValue", "")))
            for item in stack.get("Parameters", [])
        },
        outputs={item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])},
        # A resource being created or deleted may have no physical id yet; it is not there to read.
        resources={
            item["LogicalResourceId"]: Resource(item["ResourceType"], item["PhysicalResourceId"])
            for item in summaries
            if item.get("LogicalResourceId") and item.get("PhysicalResourceId")
        },
    )
