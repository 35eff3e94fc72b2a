"""A function's init phase: its imports run with Python's cyclic garbage collector paused.

Importing boto3, Powertools and the bridge builds some 400,000 objects (modules, classes, functions, botocore's
tables) and next to no garbage, yet the collector walks them over and over as they pile up: about 40
collections, 16 ms of every cold start measured here (``make bench``, footprint). Each handler module imports
inside ``collector_paused()``; on leaving it, what the imports built is frozen (``gc.freeze``: it lives as long
as the container, so later collections, on every invocation, skip it) and the collector runs again as before.
"""

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
