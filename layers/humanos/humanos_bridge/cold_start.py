"""A function's init phase: its imports run with Python's cyclic garbage collector paused.

Importing boto3, Powertools and the bridge leaves some 72,000 objects for the collector to track (modules,
classes, functions, botocore's tables), of which about 270 are garbage; yet the collector walks them over and
over as they pile up: about 30 collections, 16 ms of every cold start measured here (``make bench``, footprint,
the ``collector_running`` figures). Each handler module imports inside ``collector_paused()``; on leaving it,
what the imports left is frozen (``gc.freeze``: it lives as long as the container, so later collections, on
every invocation, skip it) and the collector runs again as before. Collecting before freezing would free those
270 objects (a few kilobytes) for about 18 ms, more than the pause saves."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside; the objects alive on leaving are frozen out of later collections."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
