"""The deploy/ check scripts, imported by path (deploy/ is not a package: the scripts run
standalone on an operator's machine)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
REPO = DEPLOY.parent
# modules the scripts import from their own directory (on sys.path when run as scripts)
SIBLINGS = ("checklib", "compose_model", "check_brokers", "check_instances", "check_app")


def load_module(name: str) -> ModuleType:
    """deploy/<name>.py as module `name`, after the sibling modules it imports."""
    for sibling in SIBLINGS:
        if sibling not in sys.modules:
            _load(sibling)
    return sys.modules[name] if name in SIBLINGS else _load(name)


def _load(name: str) -> ModuleType:
    """deploy/<name>.py, executed and registered in sys.modules under `name`."""
    spec = importlib.util.spec_from_file_location(name, DEPLOY / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
