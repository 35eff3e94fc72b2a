"""The container's boto3 session: botocore's loader, told our service names, answers as botocore's own does."""

from __future__ import annotations

import json
from pathlib import Path

import botocore.exceptions
import pytest
from botocore.loaders import Loader

from humanos_bridge import aws_session
from humanos_bridge.aws_session import (
    SERVICES,
    SLICED_SERVICES,
    NamedServicesLoader,
    endpoints_slice,
    lambda_session,
    without_documentation,
)
from humanos_bridge_local.packaging import RUNTIME_PACKAGES


def test_the_named_services_are_the_ones_botocores_full_scan_finds() -> None:
    full_scan = Loader().list_available_services("service-2")
    named = NamedServicesLoader(SERVICES).list_available_services("service-2")
    assert named == [name for name in SERVICES if name in full_scan]
    assert named == list(SERVICES)


def test_a_session_builds_every_client_the_functions_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    session = lambda_session()
    for name in SERVICES:
        assert session.client(name).meta.service_model.service_name == name


def test_a_client_of_an_unnamed_service_fails_at_once_naming_the_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with pytest.raises(botocore.exceptions.UnknownServiceError) as raised:
        lambda_session().client("s3")
    assert "Valid service names are: dynamodb, secretsmanager, sqs" in str(raised.value)


def test_aws_data_path_is_searched_first_as_botocore_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A model of our own under AWS_DATA_PATH wins over botocore's, as with boto3.session.Session().
    original = Loader().load_service_model("sqs", "service-2")
    shadow = {**original, "metadata": {**original["metadata"], "serviceFullName": "Shadowed SQS"}}
    folder = tmp_path / "sqs" / original["metadata"]["apiVersion"]
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(shadow), encoding="utf-8")
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    client = lambda_session().client("sqs")
    assert client.meta.service_model.metadata["serviceFullName"] == "Shadowed SQS"


def test_the_slice_stands_in_for_botocores_builtin_file_only_for_the_version_it_was_cut_from() -> None:
    cut_from = endpoints_slice(SERVICES, "0")  # no botocore is version 0
    assert cut_from is None
    version = endpoints_slice_version()
    sliced = endpoints_slice(SERVICES, version)
    assert sliced is not None and sliced["services"] == sorted(SLICED_SERVICES)
    assert endpoints_slice(SLICED_SERVICES, version) is sliced
    assert "s3" not in sliced["partitions"][0]["services"]
    # A service the slice was not cut for: botocore's whole file.
    assert endpoints_slice((*SERVICES, "s3"), version) is None


def test_the_slice_is_cut_from_the_botocore_the_lambda_runtime_pins() -> None:
    version = endpoints_slice_version()
    assert f"botocore=={version}" in RUNTIME_PACKAGES, "re-cut it: see scripts/cut_botocore_slice.py"


def endpoints_slice_version() -> str:
    path = Path(aws_session.__file__).with_name(aws_session.ENDPOINTS_SLICE)
    return str(json.loads(path.read_text(encoding="utf-8"))["botocoreVersion"])


def test_an_endpoints_file_on_aws_data_path_wins_over_the_slice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = Loader().load_data("endpoints")
    own["partitions"][0]["services"]["sqs"]["endpoints"]["eu-west-1"] = {"hostname": "sqs.example.internal"}
    (tmp_path / "endpoints.json").write_text(json.dumps(own), encoding="utf-8")
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert lambda_session().client("sqs").meta.endpoint_url == "https://sqs.example.internal"


def test_the_models_slice_names_one_model_per_sliced_service_and_ships_it_without_documentation() -> None:
    models = json.loads(Path(aws_session.__file__).with_name(aws_session.ENDPOINTS_SLICE).read_text())["models"]
    folder = Path(aws_session.__file__).with_name(aws_session.MODELS_SLICE)
    assert sorted(models) == sorted(SLICED_SERVICES) == sorted(path.stem for path in folder.glob("*.json"))
    for service in SLICED_SERVICES:
        model = json.loads((folder / f"{service}.json").read_text(encoding="utf-8"))
        assert model["metadata"]["apiVersion"] == models[service]
        assert '"documentation"' not in json.dumps(model)


def test_leaving_documentation_out_keeps_a_member_that_is_called_documentation() -> None:
    model = {
        "documentation": "<p>The service.</p>",
        "shapes": {
            "Page": {
                "type": "structure",
                "documentation": "<p>A page.</p>",
                "members": {"documentation": {"shape": "Text", "documentation": "<p>Its text.</p>"}},
            },
            "Pages": {"type": "list", "member": {"shape": "Page", "documentation": "<p>One.</p>"}},
        },
    }

    assert without_documentation(model) == {
        "shapes": {
            "Page": {"type": "structure", "members": {"documentation": {"shape": "Text"}}},
            "Pages": {"type": "list", "member": {"shape": "Page"}},
        }
    }


def test_under_another_botocore_every_client_reads_botocores_own_model(monkeypatch: pytest.MonkeyPatch) -> None:
    # The dev venv's botocore is not the pinned one; make sure of it, then the documentation is botocore's.
    monkeypatch.setattr(aws_session.botocore, "__version__", "0")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    model = lambda_session()._session.get_component("data_loader").load_service_model("sqs", "service-2")
    assert "documentation" in model["operations"]["SendMessage"]
