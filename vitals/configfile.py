"""The project's YAML files (patients, rules, on-call, scenarios): read, validate against a
pydantic model, and on any problem stop with one line that names the setting, the file and the
field (CONTRACT section 5)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from vitals.settings import ConfigError

M = TypeVar("M", bound=BaseModel)


def embedded(name: str) -> Path:
    """A default file shipped in vitals/defaults/."""
    return Path(str(resources.files("vitals") / "defaults" / name))


def load_model(model: type[M], path: Path, setting: str) -> M:
    """`path` parsed as YAML and validated as `model`; `ConfigError` in one line otherwise."""
    data = read_yaml(path, setting)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{setting} ({path}): {first_error(exc)}") from None


def read_yaml(path: Path, setting: str) -> object:
    """`path` parsed as YAML; `ConfigError` naming the setting and the file otherwise."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{setting} ({path}): cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{setting} ({path}): cannot read: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ConfigError(f"{setting} ({path}): not valid YAML{line}") from None
    except ValueError as exc:  # a scalar YAML reads but cannot build, such as 2026-13-01
        raise ConfigError(f"{setting} ({path}): not valid YAML: {exc}") from None


def first_error(exc: ValidationError) -> str:
    """The validation errors as one line: `patients[2].infusion: Input should be a valid date`."""
    parts = []
    for err in exc.errors():
        loc = ""
        for p in err["loc"]:
            loc += f"[{p}]" if isinstance(p, int) else (f".{p}" if loc else str(p))
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)
