"""deploy/Dockerfile, built here without Docker by deploy/check_dockerfile.py: the real build
(a fresh venv from requirements.lock, the project without dependencies, the ENTRYPOINT and
every service's start-up imports; ~45 s with pip's cache warm, longer on a cold one), and the
check itself, on small Dockerfiles that must fail."""

from __future__ import annotations

import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.deploy.support import DEPLOY, REPO, load_module

cd = load_module("check_dockerfile")


@pytest.mark.slow
def test_the_dockerfile_builds_and_its_entrypoint_runs() -> None:
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(DEPLOY / "check_dockerfile.py")],
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "check_dockerfile: ok" in result.stdout
    for command in ("ingest", "rules", "store", "alerting", "canary", "credentials"):
        assert command in result.stdout.rsplit("lists", 1)[1]
    assert "smoke: 20 embedded patients" in result.stdout
    print(f"Dockerfile check: {time.monotonic() - started:.0f} s")


def instructions() -> list[object]:
    return cd.parse((DEPLOY / "Dockerfile").read_text())


def test_the_image_runs_vitals_as_a_fixed_unprivileged_user() -> None:
    final = []
    for ins in instructions():
        final = [] if ins.keyword == "FROM" else [*final, ins]
    user = [i.args for i in final if i.keyword == "USER"]
    assert user == ["10001:10001"]  # numeric: Kubernetes can check runAsNonRoot by itself
    useradd = next(i.args for i in final if i.keyword == "RUN" and "useradd" in i.args)
    assert "--uid 10001 --gid 10001" in useradd  # the manifests' runAsUser and runAsGroup
    assert [i.args for i in final if i.keyword == "ENTRYPOINT"] == ['["vitals"]']
    env = " ".join(i.args for i in final if i.keyword == "ENV")
    assert "VITALS_STATE_DIR=/var/lib/vitals" in env


def test_the_image_exposes_the_port_of_each_service_that_serves_http() -> None:
    from vitals.settings import Settings

    exposed = {port for i in instructions() if i.keyword == "EXPOSE"
               for port in i.args.split()}
    # the default of each address setting: ingest, rules, store (/metrics and /healthz),
    # alerting (its API, /metrics and /healthz) and the patients' page
    defaults = {Settings.model_fields[name].default.rpartition(":")[2]
                for name in ("ingest_metrics_addr", "rules_metrics_addr", "store_metrics_addr",
                             "alerting_addr", "app_addr")}
    assert exposed == defaults == {"9470", "9471", "9472", "8470", "8480"}


def test_every_package_of_pyproject_is_copied_and_the_lock_is_installed_first() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in patterns}
    copies = [i.args.split()[0] for i in instructions() if i.keyword == "COPY"
              and not i.args.startswith("--from")]
    assert packages <= set(copies), packages - set(copies)
    assert copies[0] == "requirements.lock"  # its own layer, before the code that changes often
    runs = [i.args for i in instructions() if i.keyword == "RUN"]
    assert any("-r requirements.lock" in r for r in runs)
    assert any("--no-deps ." in r for r in runs)


def test_the_dockerignore_keeps_the_venv_and_git_out_but_not_what_is_copied() -> None:
    patterns = cd.ignore_patterns(DEPLOY / "Dockerfile.dockerignore")
    for path in (".venv", ".git", ".venv/lib/x.py", "vitals/__pycache__/cli.cpython-311.pyc",
                 "tests/deploy/test_dockerfile.py", ".env", "deploy/.env"):
        assert cd.ignored(path, patterns), path
    for path in ("cli/app.py", "requirements.lock", "pyproject.toml", "README.md",
                 "simulators/README.md", "vitals/defaults/rules.yaml"):
        assert not cd.ignored(path, patterns), path


def test_parse_joins_continuations_and_skips_comments() -> None:
    parsed = cd.parse("# c\nFROM python:3.11-slim AS b\nRUN a \\\n  # inside\n  && b\n"
                      "ENV A=1 \\\n    B=2\n")
    assert [(i.line, i.keyword) for i in parsed] == [(2, "FROM"), (3, "RUN"), (6, "ENV")]
    assert parsed[1].args.split() == ["a", "&&", "b"]
    assert cd.parse_env(parsed[2].args, {}) == {"A": "1", "B": "2"}
    assert cd.parse_env("PATH=/opt/x/bin:$PATH", {"PATH": "/usr/bin"}) == {
        "PATH": "/opt/x/bin:/usr/bin"}


PY = f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"


def check_fails(tmp_path: Path, dockerfile: str, files: dict[str, str] | None = None) -> str:
    context = tmp_path / "context"
    context.mkdir()
    for name, text in (files or {}).items():
        (context / name).write_text(text)
    (context / "Dockerfile").write_text(dockerfile)
    (context / "Dockerfile.dockerignore").write_text(".venv\nsecret.txt\n")
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(cd.CheckError) as err:
        cd.check(work, sys.executable, context / "Dockerfile", context, log=False)
    return str(err.value)


@pytest.mark.parametrize(("dockerfile", "expected"), [
    (f"FROM {PY}\nCOPY missing.txt ./\n", "no such file in the build context"),
    (f"FROM {PY}\nCOPY secret.txt ./\n", "excluded from the build context"),
    (f"FROM {PY}\nRUN apt-get update\n", "does not know how to reproduce it"),
    (f"FROM {PY}\nENTRYPOINT vitals\n", "exec form"),
    (f"FROM {PY}\nENTRYPOINT [\"vitals\"]\n", "runs as root"),
    (f"FROM {PY}\nUSER nobody-made\n", "was not created in this stage"),
    (f"FROM {PY}\nRUN useradd --system --uid 10001 app\nUSER app\nENTRYPOINT [\"vitals\"]\n",
     "is not installed in the image"),
    (f"FROM {PY} AS build\nFROM {PY}\nCOPY --from=build /opt/v /opt/v\n", "does not exist"),
    ("FROM python:2.7-slim\n", "give --python with the same version"),
    ("FROM debian:bookworm\n", "only python:X.Y images"),
    (f"FROM {PY}\nHEALTHCHECK CMD true\n", "not supported by this check"),
])
def test_the_check_fails_where_docker_build_would(tmp_path: Path, dockerfile: str,
                                                  expected: str) -> None:
    assert expected in check_fails(tmp_path, dockerfile, {"secret.txt": "x"})


def test_a_failing_pip_install_fails_the_check(tmp_path: Path) -> None:
    message = check_fails(tmp_path, f"FROM {PY}\nRUN python -m venv /opt/v\n"
                                    "RUN /opt/v/bin/pip install --no-index no-such-package-xyz\n")
    assert "failed with exit" in message and "no-such-package-xyz" in message
