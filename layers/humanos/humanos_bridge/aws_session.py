"""The container's boto3 session: botocore's data loader told which services the bridge calls.

botocore checks every service name it loads against a scan of every service it ships (about 430
folders, listed and stat-ed once for the API model and once for the endpoint rules) only to raise
``UnknownServiceError`` for a name it does not have. The bridge names its services, so the scan is
cold-start time spent for nothing: 12 ms of the first invocation here (``make bench``, footprint).
Everything else (models, endpoints, ``AWS_DATA_PATH``, credentials, region) is botocore's own.
"""

from __future__ import annotations

import os

import boto3
import botocore.session
from botocore.loaders import Loader

#: Every AWS service the functions call. A client of another one fails at once with
#: ``UnknownServiceError: Unknown service: 'x'. Valid service names are: ...``: add its name here.
SERVICES = ("dynamodb", "secretsmanager", "sqs")


class NamedServicesLoader(Loader):  # type: ignore[misc]  # botocore ships no type hints
    """A botocore ``Loader`` whose known services are the ones named, where they exist on its search path."""

    def __init__(self, services: tuple[str, ...], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._services = services

    def list_available_services(self, type_name: str) -> list[str]:
        # Same answer as botocore's for these names (a folder on the search path), without the full scan.
        paths = self.search_paths
        return [name for name in self._services if any(os.path.isdir(os.path.join(path, name)) for path in paths)]


def lambda_session(services: tuple[str, ...] = SERVICES) -> boto3.session.Session:
    """A boto3 session as ``boto3.session.Session()`` builds it, with the named-services loader."""
    core = botocore.session.get_session()
    data_path = core.get_config_variable("data_path") or ""  # AWS_DATA_PATH, read as botocore's own loader does
    extra_paths = [os.path.expanduser(os.path.expandvars(path)) for path in data_path.split(os.pathsep) if path]
    core.register_component("data_loader", NamedServicesLoader(services, extra_search_paths=extra_paths))
    return boto3.session.Session(botocore_session=core)
