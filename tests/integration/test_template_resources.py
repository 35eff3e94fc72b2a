"""The local stack builds its AWS resources and the dispatcher's trigger from template.yaml itself.

Against the moto server: the queues, table and secrets are created from the template's properties (the
14-day retention, the optional KMS keys left out when their parameters are empty), and the dispatcher's
event source comes from the template's ``AWS::Lambda::EventSourceMapping``, as Lambda would read it.
"""

from __future__ import annotations

from pathlib import Path

from humanos_bridge_local.resources import TemplateResources
from tests.conftest import Moto

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def _resources(moto: Moto, **overrides: str) -> TemplateResources:
    return TemplateResources(TEMPLATE, moto.session, moto.endpoint_url, parameter_overrides=overrides)


def test_dispatcher_trigger_is_the_templates_event_source_mapping_on_the_request_queue(moto: Moto) -> None:
    """One mapping for the dispatcher, none for ingest; its queue ARN is the moto queue's, its batch the template's."""
    resources = _resources(moto, BatchSize="7", BatchingWindowSeconds="2")
    resources.create_all()

    (mapping,) = resources.event_source_mappings("DispatcherFunction")

    assert mapping["EventSourceArn"] == resources.created["RequestQueue"].attributes["Arn"]
    assert (mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"]) == ("7", "2")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert resources.event_source_mappings("IngestFunction") == []


def test_queues_keep_messages_fourteen_days_and_resources_need_no_key_by_default(moto: Moto) -> None:
    """The template's retention reaches the queues; empty KMS key parameters add no key to any resource."""
    resources = _resources(moto)
    created = resources.create_all()
    sqs = moto.client("sqs")

    for queue in ("RequestQueue", "DeadLetterQueue"):
        attributes = sqs.get_queue_attributes(QueueUrl=created[queue].ref, AttributeNames=["All"])["Attributes"]
        assert attributes["MessageRetentionPeriod"] == "1209600", queue
        assert "KmsMasterKeyId" not in attributes, queue
    secret = moto.client("secretsmanager").describe_secret(SecretId=created["HumanosSecret"].ref)
    assert "KmsKeyId" not in secret
