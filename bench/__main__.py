"""Run every benchmark module, print its figures and merge them into ``bench/results.json``.

Usage: ``python -m bench`` (all) or ``python -m bench signing client`` (only those).
Figures that compare two things are ratios measured in the same run, never absolute thresholds.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import platform
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("results.json")


def main(argv: list[str]) -> int:
    names = sorted(
        m.name[len("bench_") :]
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    chosen = [n for n in names if not argv or n in argv]
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in chosen:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        figures = importlib.import_module(f"bench.bench_{name}").run()
        for key, value in figures.items():
            print(f"  {key:<48} {value}")
        print(f"  ({time.perf_counter() - started:.1f} s)")
        results[name] = figures
    results["_machine"] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
