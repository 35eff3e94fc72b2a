"""Least privilege in template.yaml: each function reaches only its own resources, and wildcards are explained."""

from __future__ import annotations

from typing import Any

import pytest
from cfn_template import Template, as_list, policy_statements, policy_templates, references, wildcard_lines

FUNCTIONS = ("IngestFunction", "DispatcherFunction")
IDEMPOTENCY_ACTIONS = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}

#: Everything a function's policies may name. Anything else is a grant the code does not need.
ALLOWED_TARGETS = {
    "IngestFunction": {
        "RequestQueue",
        "DeadLetterQueue",
        "SenderSecret",
        "ExistingSenderSecretArn",
        "HumanosSecret",
        "ExistingHumanosSecretArn",
        "IdempotencyTable",
        "SecretsKmsKeyArn",
        "TableKmsKeyArn",
    },
    "DispatcherFunction": {
        "RequestQueue",
        "DeadLetterQueue",
        "HumanosSecret",
        "ExistingHumanosSecretArn",
        "IdempotencyTable",
        "SecretsKmsKeyArn",
        "TableKmsKeyArn",
    },
}


def _policies(template: Template, function: str) -> list[Any]:
    return list(template.function(function).get("Policies", []))


def _statements(template: Template, function: str) -> list[dict[str, Any]]:
    return list(policy_statements(_policies(template, function)))


def _grants(template: Template, function: str) -> set[tuple[str, str]]:
    """(action or policy template, target resource/parameter) pairs a function's policies grant."""
    grants = set()
    for statement in _statements(template, function):
        for action in as_list(statement["Action"]):
            for target in references(statement["Resource"]) - {"AWS::Region", "AWS::AccountId", "AWS::Partition"}:
                grants.add((action, target))
    for name, arguments in policy_templates(_policies(template, function)):
        for target in references(arguments):
            grants.add((name, target))
    return grants


@pytest.mark.parametrize("function", FUNCTIONS)
def test_policies_name_only_the_functions_own_resources(template: Template, function: str) -> None:
    """Each grant targets a resource the function uses; the ingest function cannot touch the DLQ, for one."""
    targets = {target for _, target in _grants(template, function)}
    extra = targets - ALLOWED_TARGETS[function]
    assert not extra, f"{function}: policies grant access to {sorted(extra)}, which the function does not use"


@pytest.mark.parametrize(
    ("function", "grant"),
    [
        ("IngestFunction", ("SQSSendMessagePolicy", "RequestQueue")),
        ("IngestFunction", ("SQSSendMessagePolicy", "DeadLetterQueue")),
        ("IngestFunction", ("AWSSecretsManagerGetSecretValuePolicy", "SenderSecret")),
        ("IngestFunction", ("AWSSecretsManagerGetSecretValuePolicy", "ExistingSenderSecretArn")),
        ("IngestFunction", ("AWSSecretsManagerGetSecretValuePolicy", "HumanosSecret")),
        ("IngestFunction", ("AWSSecretsManagerGetSecretValuePolicy", "ExistingHumanosSecretArn")),
        ("DispatcherFunction", ("sqs:ChangeMessageVisibility", "RequestQueue")),
        ("DispatcherFunction", ("SQSSendMessagePolicy", "DeadLetterQueue")),
        ("DispatcherFunction", ("AWSSecretsManagerGetSecretValuePolicy", "HumanosSecret")),
        ("DispatcherFunction", ("AWSSecretsManagerGetSecretValuePolicy", "ExistingHumanosSecretArn")),
    ],
)
def test_function_is_granted_what_its_code_calls(template: Template, function: str, grant: tuple[str, str]) -> None:
    """Without these the function fails in AWS with AccessDenied although every local test passes."""
    assert grant in _grants(template, function), f"{function}: grant {grant[0]} on {grant[1]}"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_idempotency_table_access_is_exactly_what_powertools_uses(template: Template, function: str) -> None:
    """GetItem, PutItem, UpdateItem, DeleteItem on the table only: none of DynamoDBCrudPolicy's Scan, Query, Batch*."""
    table_actions = {action for action, target in _grants(template, function) if target == "IdempotencyTable"}
    assert table_actions == IDEMPOTENCY_ACTIONS, (
        f"{function}: grant exactly {sorted(IDEMPOTENCY_ACTIONS)} on IdempotencyTable, not {sorted(table_actions)}"
    )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_inline_actions_name_single_operations(template: Template, function: str) -> None:
    """Actions such as sqs:* or dynamodb:*Item would grant far more than the code calls."""
    for statement in _statements(template, function):
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{function}: replace action {action} by the operations the code calls"


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize(
    ("condition", "key", "service"),
    [("HasSecretsKmsKey", "SecretsKmsKeyArn", "secretsmanager"), ("HasTableKmsKey", "TableKmsKeyArn", "dynamodb")],
)
def test_kms_grant_exists_only_for_a_customer_managed_key_and_only_via_its_service(
    template: Template, function: str, condition: str, key: str, service: str
) -> None:
    """AWS-managed keys need no grant; a customer key is usable only through the service that holds the data."""
    conditional = [
        item["Fn::If"]
        for item in _policies(template, function)
        if isinstance(item, dict) and "Fn::If" in item and item["Fn::If"][0] == condition
    ]
    assert len(conditional) == 1, f"{function}: expected one policy under {condition} (the grant on {key})"
    _, granted, otherwise = conditional[0]
    assert otherwise == {"Ref": "AWS::NoValue"}, f"{function}: no grant at all without {key}"
    (statement,) = granted["Statement"]
    assert statement["Resource"] == {"Ref": key}
    via = statement["Condition"]["StringEquals"]["kms:ViaService"]
    assert via == {"Fn::Sub": f"{service}.${{AWS::Region}}.amazonaws.com"}, "limit the key with kms:ViaService"
    if service == "secretsmanager":
        assert statement["Action"] == "kms:Decrypt", "reading a secret needs kms:Decrypt only"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_kms_statement_is_one_of_the_conditional_key_grants(template: Template, function: str) -> None:
    """No KMS permission outside the two optional keys' grants."""
    for statement in _statements(template, function):
        if "kms:" in str(statement["Action"]):
            assert statement["Resource"] in ({"Ref": "SecretsKmsKeyArn"}, {"Ref": "TableKmsKeyArn"}), statement


def test_every_wildcard_resource_line_is_explained(template: Template) -> None:
    """A Resource: "*" is allowed only where AWS offers nothing narrower, said in '# wildcard: <why>' right above."""
    unexplained = [line for line in wildcard_lines(template.text) if not line.explained]
    assert not unexplained, "add '# wildcard: <why AWS allows nothing narrower>' right above: " + ", ".join(
        f"line {line.line_number} ({line.text})" for line in unexplained
    )


def test_every_wildcard_statement_is_written_where_its_comment_can_be_checked(template: Template) -> None:
    """Flow styles such as Resource: ["*"] hide a wildcard from the comment check; write it on its own line."""
    statements: list[dict[str, Any]] = []
    for function in FUNCTIONS:
        statements += _statements(template, function)
    for policy in template.of_type("AWS::IAM::Policy").values():
        statements += list(policy_statements(policy["Properties"]["PolicyDocument"]))
    for role in template.of_type("AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            statements += list(policy_statements(policy["PolicyDocument"]))
    wildcards = sum(as_list(statement["Resource"]).count("*") for statement in statements)
    assert wildcards == len(wildcard_lines(template.text)), (
        'write each wildcard resource as its own line (Resource: "*" or - "*") under a "# wildcard:" comment'
    )


@pytest.mark.parametrize(
    ("snippet", "explained"),
    [
        ('      # wildcard: xray:PutTraceSegments has no resource-level permissions\n      Resource: "*"\n', [True]),
        ("      # wildcard: cloudwatch:PutMetricData supports none\n      Resource: '*'\n", [True]),
        ('      Resource:\n        # wildcard: no ARN exists for this action\n        - "*"\n', [True]),
        ('      Action: xray:PutTraceSegments\n      Resource: "*"\n', [False]),
        ('      # grants tracing\n      Resource: "*"\n', [False]),
        ('      # wildcard:\n      Resource: "*"\n', [False]),
        ("      Resource: !GetAtt RequestQueue.Arn\n", []),
        ('      Resource: "arn:aws:sqs:*:123456789012:queue"\n', []),
    ],
)
def test_wildcard_check_flags_unexplained_lines(snippet: str, explained: list[bool]) -> None:
    """The comment check itself: an explained wildcard passes, a bare or reasonless one is flagged, ARNs are ignored."""
    assert [line.explained for line in wildcard_lines(snippet)] == explained
