"""The container's boto3 session: botocore's data loader told which services the bridge calls.

botocore checks every service name it loads against a scan of every service it ships (about 430
folders, listed and stat-ed once for the API model and once for the endpoint rules) only to raise
``UnknownServiceError`` for a name it does not have. The bridge names its services, so the scan is
cold-start time spent for nothing: 12 ms of the first invocation here (``make bench``, footprint).

The first client also parses botocore's ``endpoints.json`` (1.2 MB, every service of every partition: 17 ms
here) to resolve three services. The layer ships that file cut down to those services
(``aws_endpoints.json``, written by ``scripts/cut_endpoints_slice.py``) and the loader hands it out in the
file's place, when the runtime's botocore is the version the slice was cut from (the one
``humanos_bridge_local.packaging`` pins for python3.13; another version gets its own full file). Only the
builtin file is replaced: an ``endpoints.json`` on ``AWS_DATA_PATH`` still wins. ``tests/infrastructure``
checks, under that botocore, that both resolve every region of every partition alike.

Everything else (models, ``AWS_DATA_PATH``, credentials, region) is botocore's own.
"""

from __future__ import annotations

import functools
import json
import os
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
#: The slice of botocore's ``endpoints.json`` for ``SLICED_SERVICES``, next to this module.
ENDPOINTS_SLICE = "aws_endpoints.json"


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
        if name == "endpoints":
            found = next((path for path in self._potential_locations(name) if self.file_loader.exists(path)), None)
            sliced = endpoints_slice(self._services, botocore.__version__)
            if found is not None and sliced is not None and self.is_builtin_path(found):
                # botocore's own data, cut to our services: still "builtin" for its endpoint rulesets.
                return sliced, found
        data, path = super().load_data_with_path(name)
        return data, str(path)


def endpoints_slice(services: tuple[str, ...], botocore_version: str) -> dict[str, Any] | None:
    """The shipped slice if it was cut from this botocore version for (at least) these services, else None.

    Another version may list other regions or variants: then the full file it ships is the only truth.
    """
    sliced = _endpoints_slice()
    if sliced["botocoreVersion"] != botocore_version or not set(services) <= set(sliced["services"]):
        return None
    return sliced


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
