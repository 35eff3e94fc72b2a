"""What CloudFormation receives after the SAM transform: the roles SAM generates, with every policy attached.

template.yaml only says what we wrote; SAM adds policies of its own (a function's ``Events`` and
``Tracing`` attach AWS managed policies). These tests read the transformed template, so a grant that
SAM adds behind our back (as its SQS event did: AWSLambdaSQSQueueExecutionRole, receive and delete on
every queue of the account) fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfn_template import as_list, policy_statements, references

from humanos_bridge_local import packaging

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("IngestFunction", "DispatcherFunction")
#: The only AWS managed policies a function role may carry, and why: logs (every function) and X-Ray
#: (Tracing: Active; xray:PutTraceSegments has no resource-level permissions).
ALLOWED_MANAGED_POLICIES = {"service-role/AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"}
#: The SQS actions each function's role may hold, by queue.
SQS_GRANTS = {
    "IngestFunction": {("sqs:SendMessage*", "RequestQueue"), ("sqs:SendMessage*", "DeadLetterQueue")},
    "DispatcherFunction": {
        ("sqs:ReceiveMessage", "RequestQueue"),
        ("sqs:DeleteMessage", "RequestQueue"),
        ("sqs:GetQueueAttributes", "RequestQueue"),
        ("sqs:ChangeMessageVisibility", "RequestQueue"),
        ("sqs:SendMessage*", "DeadLetterQueue"),
    },
}


def _role(transformed: dict[str, Any], function: str) -> dict[str, Any]:
    resources = transformed["Resources"]
    role = resources[function]["Properties"]["Role"]
    assert role == {"Fn::GetAtt": [f"{function}Role", "Arn"]}, f"{function}: expected the role SAM generates"
    return dict(resources[f"{function}Role"]["Properties"])


def _statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in role.get("Policies", []):
        # A conditional policy is {"Fn::If": [condition, policy, AWS::NoValue]}: both branches count.
        for branch in policy["Fn::If"][1:] if "Fn::If" in policy else [policy]:
            if isinstance(branch, dict) and "PolicyDocument" in branch:
                yield from policy_statements(branch["PolicyDocument"])


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _managed_policy_names(role: dict[str, Any]) -> set[str]:
    names = set()
    for arn in role.get("ManagedPolicyArns", []):
        text = arn if isinstance(arn, str) else " ".join(_strings(arn))
        names.add(text.split(":policy/", 1)[-1])
    return names


@pytest.mark.parametrize("function", FUNCTIONS)
def test_role_carries_no_managed_policy_beyond_logs_and_tracing(transformed: dict[str, Any], function: str) -> None:
    """No AWSLambdaSQSQueueExecutionRole (sqs:ReceiveMessage/DeleteMessage/GetQueueAttributes on "*"), nor any
    other managed policy SAM might attach for an event source."""
    names = _managed_policy_names(_role(transformed, function))
    assert names <= ALLOWED_MANAGED_POLICIES, f"{function}: managed policies {sorted(names - ALLOWED_MANAGED_POLICIES)}"
    assert not any("SQS" in name for name in names), f"{function}: a managed SQS policy grants every queue"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_inline_statement_grants_a_wildcard_resource(transformed: dict[str, Any], function: str) -> None:
    """Every inline statement of the generated role names its resources; "*" (or an ARN with "*") is nowhere."""
    for statement in _statements(_role(transformed, function)):
        wildcards = [text for text in _strings(statement["Resource"]) if "*" in text]
        assert not wildcards, f"{function}: {statement.get('Sid', statement['Action'])} grants {wildcards}"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_sqs_actions_reach_only_the_functions_own_queues(transformed: dict[str, Any], function: str) -> None:
    """The dispatcher polls and backs off on RequestQueue and sends to DeadLetterQueue; ingest sends to
    RequestQueue and, parking a provider's event its mapping refuses, to DeadLetterQueue; nothing else, as
    README.md's permissions section says."""
    granted = set()
    for statement in _statements(_role(transformed, function)):
        for action in as_list(statement["Action"]):
            if action.startswith("sqs:"):
                targets = references(statement["Resource"]) - {"AWS::Partition", "AWS::Region", "AWS::AccountId"}
                granted |= {(action, target) for target in targets}
    assert granted == SQS_GRANTS[function], f"{function}: SQS grants {sorted(granted)}"


def test_the_dispatchers_only_trigger_is_the_request_queue(transformed: dict[str, Any]) -> None:
    """One event source mapping, RequestQueue -> DispatcherFunction (the one the poller permissions are for)."""
    mappings = [
        body["Properties"]
        for body in transformed["Resources"].values()
        if body["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    assert len(mappings) == 1, f"expected one event source mapping, found {len(mappings)}"
    assert mappings[0]["EventSourceArn"] == {"Fn::GetAtt": ["RequestQueue", "Arn"]}
    assert mappings[0]["FunctionName"] == {"Ref": "DispatcherFunction"}


def test_checkov_skips_reach_the_resources_checkov_scans(transformed: dict[str, Any]) -> None:
    """.ci/checkov scans the transformed template: a function's skips must survive the transform (passed
    through to the AWS::Lambda::Function it becomes), and every skip must give its reason."""
    skipped = {}
    for name, body in transformed["Resources"].items():
        for skip in body.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert str(skip.get("comment", "")).strip(), f"{name}: checkov skip {skip.get('id')} without a comment"
            skipped.setdefault(name, set()).add(skip["id"])
    for function in FUNCTIONS:
        assert transformed["Resources"][function]["Type"] == "AWS::Lambda::Function"
        assert skipped.get(function), f"{function}: its checkov skips were lost in the transform"


@pytest.mark.parametrize(
    ("function", "layers"),
    [
        ("IngestFunction", ["HumanosLayer", "MappingsLayer"]),
        ("DispatcherFunction", ["HumanosLayer", "MappingsLayer"]),
        ("ReceiverFunction", ["HumanosLayer", "MappingsLayer", "ReceiverLayer"]),
    ],
)
def test_sam_appends_a_functions_layers_to_the_globals_as_the_local_stack_does(
    transformed: dict[str, Any], function: str, layers: list[str]
) -> None:
    """After the transform (SAM names each layer version <logical id><hash>), in the order Lambda extracts them; the
    local stack assembles each function's /opt from the same list (``packaging.Build.layer_dirs``)."""
    refs = [layer["Ref"] for layer in transformed["Resources"][function]["Properties"]["Layers"]]
    assert [next(name for name in layers if ref.startswith(name)) for ref in refs] == layers
    build = packaging.Build(Path("/built"), "x86_64", ROOT / "template.yaml")
    built = {"HumanosLayer": Path("/built/HumanosLayer"), "ReceiverLayer": Path("/built/ReceiverLayer")}
    assert build.layer_dirs(function) == [built.get(name, ROOT / "mappings") for name in layers]
