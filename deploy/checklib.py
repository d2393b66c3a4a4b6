"""The file formats the deploy checks read, without the checks themselves: `.env` files and
Compose interpolation, the parts of an interpolated compose file the cross-checks look at
(mounts, environments), Dockerfile instructions and `.dockerignore` patterns.

Imported by check_compose.py and check_dockerfile.py from their own directory (deploy/ is not a
package: the scripts run standalone on an operator's machine).
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

SCHEMA = Path(__file__).resolve().parent / "schemas" / "compose-spec.json"


# --- .env files, Compose interpolation and the Compose schema -------------------------------
class InterpolationError(ValueError):
    """A `${...}` the Compose file cannot be interpolated with, or a malformed .env line."""


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as `docker compose` reads them: comments, blank lines, optional
    `export `, and single or double quotes around the value."""
    out: dict[str, str] = {}
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ")
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise InterpolationError(f"{path.name}:{n}: not KEY=VALUE: {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out[key.strip()] = value
    return out


@dataclass
class Interpolator:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR:?error}`, `$$`, ... over `env`, recording
    every variable it meets in `used`."""

    env: dict[str, str]
    used: set[str] = field(default_factory=set)

    def string(self, s: str) -> str:
        """`s` with every variable replaced."""
        out, i = [], 0
        while i < len(s):
            c = s[i]
            if c != "$":
                out.append(c)
                i += 1
                continue
            nxt = s[i + 1] if i + 1 < len(s) else ""
            if nxt == "$":
                out.append("$")
                i += 2
            elif nxt == "{":
                end = self._closing(s, i + 2)
                out.append(self._braced(s[i + 2:end]))
                i = end + 1
            elif re.match(r"[A-Za-z_]", nxt):
                m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", s[i + 1:])
                assert m is not None
                self.used.add(m.group())
                out.append(self.env.get(m.group(), ""))
                i += 1 + m.end()
            else:
                raise InterpolationError(f"a lone $ in {s!r}: write $$ for a literal $")
        return "".join(out)

    @staticmethod
    def _closing(s: str, start: int) -> int:
        depth = 1
        for j in range(start, len(s)):
            if s[j] == "{" and s[j - 1] == "$":
                depth += 1
            elif s[j] == "}":
                depth -= 1
                if depth == 0:
                    return j
        raise InterpolationError(f"unclosed ${{ in {s!r}")

    def _braced(self, expr: str) -> str:
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?", expr, re.S)
        if not m:
            raise InterpolationError(f"cannot read ${{{expr}}}")
        name, op, arg = m.group(1), m.group(2), m.group(3)
        self.used.add(name)
        value = self.env.get(name)
        unset_or_empty = not value if op and op.startswith(":") else value is None
        if op is None:
            return value or ""
        if op.endswith("-"):
            return self.string(arg) if unset_or_empty else value or ""
        if op.endswith("?"):
            if unset_or_empty:
                raise InterpolationError(f"{name} is required: {self.string(arg)}")
            return value or ""
        return "" if unset_or_empty else self.string(arg)  # :+ and +

    def walk(self, node: Any) -> Any:
        """A YAML document with every string in it interpolated."""
        if isinstance(node, str):
            return self.string(node)
        if isinstance(node, list):
            return [self.walk(v) for v in node]
        if isinstance(node, dict):
            return {k: self.walk(v) for k, v in node.items()}
        return node


def load(compose: Path, env: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
    """The compose file as written, interpolated, and the variables it uses."""
    raw = yaml.safe_load(compose.read_text())
    interp = Interpolator(env)
    return raw, interp.walk(raw), interp.used


def schema_errors(doc: dict[str, Any], schema_path: Path = SCHEMA) -> list[str]:
    """The interpolated document's departures from the Compose Specification's JSON schema."""
    import jsonschema

    schema = json.loads(schema_path.read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)
    return [f"schema: {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))]


# --- the interpolated compose document ------------------------------------------------------
@dataclass(frozen=True)
class Mount:
    """One entry of a service's `volumes:`."""

    service: str
    source: str
    target: str
    read_only: bool
    raw_source: str  # before interpolation

    @property
    def bind(self) -> bool:
        """A host path, not a named volume."""
        return self.source.startswith((".", "/", "~"))


def mounts(raw: dict[str, Any], doc: dict[str, Any], service: str) -> list[Mount]:
    """The service's mounts, each with its source as written and as interpolated."""
    out = []
    raw_vols = raw["services"][service].get("volumes")
    if raw_vols is None:  # came through a YAML merge key from an anchor; same order
        raw_vols = doc["services"][service].get("volumes", [])
    for raw_v, v in zip(raw_vols, doc["services"][service].get("volumes", []), strict=True):
        if isinstance(v, dict):
            out.append(Mount(service, str(v.get("source", "")), v["target"],
                             bool(v.get("read_only")), str(raw_v.get("source", ""))))
            continue
        parts = v.split(":")
        raw_parts = raw_v.split(":") if isinstance(raw_v, str) else parts
        mode = parts[2] if len(parts) > 2 else "rw"
        out.append(Mount(service, parts[0], parts[1], "ro" in mode.split(","), raw_parts[0]))
    return out


def environment(doc: dict[str, Any], service: str) -> dict[str, str]:
    """The service's `environment:`, as a mapping whichever form it is written in."""
    env = doc["services"][service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def under(path: str, directory: str) -> bool:
    """Whether the container path `path` lies in `directory`."""
    return PurePosixPath(path).is_relative_to(PurePosixPath(directory))


def mounted_source(ms: list[Mount], container_path: str) -> tuple[Mount, str] | None:
    """The mount that holds `container_path` (the deepest), and the path below it."""
    best = None
    for m in ms:
        if under(container_path, m.target) and (best is None or len(m.target) > len(best.target)):
            best = m
    if best is None:
        return None
    return best, str(PurePosixPath(container_path).relative_to(best.target))


def script_variables(text: str) -> set[str]:
    """The upper-case `$VAR` and `${VAR}` names a script or config file reads."""
    return set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", text))


def url_port(test: list[str]) -> int | None:
    """The loopback port a healthcheck's command probes over HTTP."""
    m = re.search(r"https?://127\.0\.0\.1:(\d+)/", " ".join(test))
    return int(m.group(1)) if m else None


def url_path(test: list[str]) -> str | None:
    """The path (without a query) a healthcheck's command asks for on its loopback port."""
    m = re.search(r"https?://127\.0\.0\.1:\d+(/[^\s'\"?]*)", " ".join(test))
    return m.group(1) if m else None


# --- Dockerfiles and the build context ------------------------------------------------------
class CheckError(Exception):
    """A build step failed, or the Dockerfile uses something this check cannot reproduce."""


@dataclass
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    line: int
    keyword: str
    args: str

    def __str__(self) -> str:
        text = f"{self.keyword} {self.args}"
        return text if len(text) <= 100 else text[:97] + "..."


def parse(text: str) -> list[Instruction]:
    """Instructions with their line numbers; continuation lines are joined, comments dropped."""
    out: list[Instruction] = []
    buf = ""
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        keyword, _, args = buf.partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
        buf = ""
    if buf:
        raise CheckError(f"line {start}: the file ends inside a continued instruction")
    return out


def ignore_patterns(path: Path) -> list[str]:
    """The patterns of a .dockerignore file (none when there is no file)."""
    if not path.is_file():
        return []
    return [ln.strip() for ln in path.read_text().splitlines()
            if ln.strip() and not ln.strip().startswith("#")]


def ignored(rel: str, patterns: list[str]) -> bool:
    """Whether the context path `rel` is excluded (the .dockerignore subset used here: plain
    names and globs, `**/` prefixes, `!` exceptions)."""
    verdict = False
    parts = PurePosixPath(rel).parts
    for pat in patterns:
        negate = pat.startswith("!")
        p = pat[1:] if negate else pat
        p = p.strip("/")
        anywhere = p.startswith("**/")
        p = p.removeprefix("**/")
        prefixes = ["/".join(parts[i:j]) for i in range(len(parts) if anywhere else 1)
                    for j in range(i + 1, len(parts) + 1)]
        if any(fnmatch.fnmatchcase(pre, p) for pre in prefixes):
            verdict = not negate
    return verdict


def expand(value: str, env: dict[str, str]) -> str:
    """`value` with the Dockerfile's `$VAR` and `${VAR}` replaced from `env`."""
    def sub(m: re.Match[str]) -> str:
        return env.get(m.group(1) or m.group(2), "")
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, value)


def parse_env(args: str, env: dict[str, str]) -> dict[str, str]:
    """The variables an ENV instruction sets, expanded over `env`."""
    tokens = shlex.split(args)
    if len(tokens) == 2 and "=" not in tokens[0]:
        return {tokens[0]: expand(tokens[1], env)}  # legacy `ENV KEY value`
    out = {}
    for tok in tokens:
        key, sep, value = tok.partition("=")
        if not sep:
            raise CheckError(f"ENV {args!r}: expected KEY=value")
        out[key] = expand(value, {**env, **out})
    return out


@dataclass
class UserAdd:
    """What a `useradd` command line asks for."""

    name: str
    uid: int
    home: str | None
    create_home: bool


def parse_useradd(line: int, args: list[str]) -> UserAdd:
    """The arguments of `useradd` on Dockerfile line `line`; a user needs a name and a uid."""
    uid, home, create_home, name = None, None, False, None
    it = iter(args)
    for a in it:
        if a in ("--uid", "-u"):
            uid = int(next(it))
        elif a in ("--home-dir", "-d"):
            home = next(it)
        elif a in ("--create-home", "-m"):
            create_home = True
        elif a in ("--shell", "-s", "--gid", "-g", "--comment", "-c"):
            next(it)
        elif a in ("--system", "-r", "--user-group", "-U", "--no-log-init", "-l"):
            pass
        elif a.startswith("-"):
            raise CheckError(f"line {line}: useradd {a} is not known to this check")
        else:
            name = a
    if name is None or uid is None:
        raise CheckError(f"line {line}: useradd needs a name and a fixed --uid")
    return UserAdd(name, uid, home, create_home)
