"""The container's boto3 session: botocore's data loader told which services the bridge calls.

botocore checks every service name it loads against a scan of every service it ships (about 430
folders, listed and stat-ed once for the API model and once for the endpoint rules) only to raise
``UnknownServiceError`` for a name it does not have. The bridge names its services, so the scan is
cold-start time spent for nothing: 12 ms of the first invocation here (``make bench``, footprint).

The first client also parses botocore's ``endpoints.json`` (1.2 MB, every service of every partition: 17 ms
here) to resolve three services, and each client its service's API model, two thirds of which is
documentation that botocore reads only to write docstrings (DynamoDB's: 3 ms of its client). The layer
ships both cut down (written by ``scripts/cut_botocore_slice.py``): ``aws_endpoints.json``, the endpoints of
the bridge's services only, and ``aws_models/<service>.json``, each API model without its documentation
strings. The loader hands them out in place of botocore's files when the runtime's botocore is the version
they were cut from (the one ``humanos_bridge_local.packaging`` pins for python3.13; another version gets its
own full files). Only builtin files are replaced: a file on ``AWS_DATA_PATH`` still wins.
``tests/infrastructure`` checks, under that botocore, that the endpoints resolve every region of every
partition alike and that each model is botocore's own, less its documentation strings.

Everything else (the other data files, ``AWS_DATA_PATH``, credentials, region) is botocore's own.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from typing import Any

import boto3
import botocore
import botocore.session
from botocore.loaders import Loader

#: Every AWS service the functions call. A client of another one fails at once with
#: ``UnknownServiceError: Unknown service: 'x'. Valid service names are: ...``: add its name here.
SERVICES = ("dynamodb", "secretsmanager", "sqs")
#: Every service some function calls (the receiver adds EventBridge): the slice is cut for these.
SLICED_SERVICES = ("dynamodb", "events", "secretsmanager", "sqs")
#: The slice of botocore's ``endpoints.json`` for ``SLICED_SERVICES``, next to this module. It also names the
#: botocore version both slices were cut from and, under ``models``, the API version of each model in the slice.
ENDPOINTS_SLICE = "aws_endpoints.json"
#: The folder, next to this module, of the API models (``service-2``) of ``SLICED_SERVICES`` without documentation.
MODELS_SLICE = "aws_models"
#: The key botocore keeps a shape's, an operation's or a model's documentation under (HTML, for docstrings only).
DOCUMENTATION = "documentation"


class NamedServicesLoader(Loader):  # type: ignore[misc]  # botocore ships no type hints
    """A botocore ``Loader`` whose known services are the ones named, where they exist on its search path."""

    def __init__(self, services: tuple[str, ...], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._services = services

    def list_available_services(self, type_name: str) -> list[str]:
        # Same answer as botocore's for these names (a folder on the search path), without the full scan.
        paths = self.search_paths
        return [name for name in self._services if any(os.path.isdir(os.path.join(path, name)) for path in paths)]

    def load_data_with_path(self, name: str) -> tuple[Any, str]:
        sliced = _sliced_file(name, self._services)
        if sliced is not None:
            found = next((path for path in self._potential_locations(name) if self.file_loader.exists(path)), None)
            if found is not None and self.is_builtin_path(found):
                # botocore's own data, cut to what the bridge reads: still "builtin" for its endpoint rulesets.
                return sliced(), found
        data, path = super().load_data_with_path(name)
        return data, str(path)


def _sliced_file(name: str, services: tuple[str, ...]) -> Callable[[], dict[str, Any]] | None:
    """How to read the slice that stands in for botocore's data file ``name``, if the layer ships one for it."""
    sliced = endpoints_slice(services, botocore.__version__)
    if sliced is None:
        return None
    if name == "endpoints":
        return lambda: sliced
    service, _, rest = name.partition("/")
    if service in services and rest == f"{sliced['models'].get(service)}/service-2":
        return functools.partial(_model_slice, service)
    return None


def endpoints_slice(services: tuple[str, ...], botocore_version: str) -> dict[str, Any] | None:
    """The shipped slice if it was cut from this botocore version for (at least) these services, else None.

    Another version may list other regions or variants: then the full file it ships is the only truth.
    """
    sliced = _endpoints_slice()
    if sliced["botocoreVersion"] != botocore_version or not set(services) <= set(sliced["services"]):
        return None
    return sliced


def without_documentation(model: Any) -> Any:
    """An API model as botocore reads it to build and call a client: every documentation string left out.

    Only string values go: a structure member could be called ``documentation``, and its definition is an object.
    """
    if isinstance(model, dict):
        return {
            key: without_documentation(value)
            for key, value in model.items()
            if not (key == DOCUMENTATION and isinstance(value, str))
        }
    if isinstance(model, list):
        return [without_documentation(value) for value in model]
    return model


def _model_slice(service: str) -> dict[str, Any]:
    # Read afresh each time: botocore adds its "extras" to the model it is given (botocore caches the result).
    path = os.path.join(os.path.dirname(__file__), MODELS_SLICE, f"{service}.json")
    with open(path, encoding="utf-8") as file:
        return dict(json.load(file))


def slice_endpoints(full: dict[str, Any], services: tuple[str, ...]) -> dict[str, Any]:
    """``endpoints.json`` with every partition's services narrowed to ``services``."""
    partitions = [
        {**partition, "services": {name: spec for name, spec in partition["services"].items() if name in services}}
        for partition in full["partitions"]
    ]
    return {**full, "partitions": partitions, "services": sorted(services)}


@functools.cache
def _endpoints_slice() -> dict[str, Any]:
    path = os.path.join(os.path.dirname(__file__), ENDPOINTS_SLICE)
    with open(path, encoding="utf-8") as file:
        return dict(json.load(file))


def lambda_session(services: tuple[str, ...] = SERVICES) -> boto3.session.Session:
    """A boto3 session as ``boto3.session.Session()`` builds it, with the named-services loader."""
    core = botocore.session.get_session()
    data_path = core.get_config_variable("data_path") or ""  # AWS_DATA_PATH, read as botocore's own loader does
    extra_paths = [os.path.expanduser(os.path.expandvars(path)) for path in data_path.split(os.pathsep) if path]
    core.register_component("data_loader", NamedServicesLoader(services, extra_search_paths=extra_paths))
    return boto3.session.Session(botocore_session=core)
