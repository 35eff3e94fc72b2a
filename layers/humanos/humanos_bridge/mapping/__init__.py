"""Declarative mapping: business events become Humanos request bodies by editing one file.

Load once per container, map per event::

    cfg = load_mapping_cached(settings.mapping_file)
    request = cfg.map_event("crm", event)   # MappedRequest, or MappingError / EventIgnored

The file format is described in ``mappings/README.md``.
"""

from __future__ import annotations

from humanos_bridge.mapping.engine import MappingConfig, bound_key, content_hash
from humanos_bridge.mapping.expressions import FUNCTION_NAMES
from humanos_bridge.mapping.model import AuthConfig, MappedRequest, RuleConfig, SourceConfig
from humanos_bridge.mapping.schema import load_mapping, load_mapping_cached, parse_mapping

__all__ = [
    "FUNCTION_NAMES",
    "AuthConfig",
    "MappedRequest",
    "MappingConfig",
    "RuleConfig",
    "SourceConfig",
    "bound_key",
    "content_hash",
    "load_mapping",
    "load_mapping_cached",
    "parse_mapping",
]
