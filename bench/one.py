"""Run one benchmark's `run(**kwargs)` and write what it returns as JSON: `python -m bench`
runs each benchmark this way, in a process of its own, so that none inherits another's
threads, memory or child processes.

    python -m bench.one MODULE KWARGS_JSON OUT_JSON
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path


def main() -> None:
    module, kwargs, out = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
    result = importlib.import_module(f"bench.{module}").run(**kwargs)
    out.write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
