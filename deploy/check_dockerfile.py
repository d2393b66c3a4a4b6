"""Run deploy/Dockerfile's build steps here, without Docker, and fail if one fails.

    python deploy/check_dockerfile.py [--keep DIR]

Docker is not needed: each stage gets a fresh directory standing in for the image's root file
system, and the instructions are carried out in it, in order:

- `COPY` copies what it names from the build context (the repository root) into the stage's
  root; a source that is missing, or that Dockerfile.dockerignore keeps out of the context,
  fails the check, as it would fail `docker build`. `COPY --from=STAGE` copies from that
  stage's root, at the same absolute path (so a virtual environment keeps working).
- `RUN` steps are split on `&&`, and each command must be one this script knows:
  `python -m venv DIR` and `DIR/bin/pip install ...` run for real (into the stage's root; the
  only changes: `--no-cache-dir` is dropped, so that pip may reuse its cache, and
  `--no-compile` added, since .pyc files change nothing about what installs), and
  `groupadd` and `useradd` are checked and recorded (they change the host, so they are not
  run). Any other command
  fails the check, so a new RUN step cannot go unchecked by accident.
- `ENV`, `WORKDIR` and `USER` are tracked. At the end the ENTRYPOINT runs with `--help`, from
  the final stage only (the build stage's /src is gone, as in the image), with the PATH the
  image has; then every service subcommand's `--help`, and the imports and packaged defaults
  each service needs at start.

The Python that creates the virtual environment must have the FROM image's version.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from checklib import (
    CheckError,
    Instruction,
    expand,
    ignore_patterns,
    ignored,
    parse,
    parse_env,
    parse_useradd,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DOCKERFILE = HERE / "Dockerfile"
# PATH in the python:X.Y images
BASE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"

# What each service needs at start beyond `--help`: its modules (the CLI imports them lazily,
# so `--help` alone would not notice a missing dependency) and the embedded default files.
SERVICE_COMMANDS = ("ingest", "rules", "store", "alerting", "canary", "app", "app-links",
                    "credentials")
SMOKE = """
import ingest.service, storage.writer, stream_rules.worker, alerting.service, canary.publisher
import patient_app.service, patient_app.links
from vitals.patients import load_patients
from stream_rules.config import load_rules
from alerting.oncall import load_oncall
patients = load_patients(None)
load_rules(None)
load_oncall(None, {p.team for p in patients})
print(f"smoke: {len(patients)} embedded patients, rules and on-call defaults load")
"""


@dataclass
class Stage:
    name: str
    image: str
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = "root"
    users: dict[str, int] = field(default_factory=dict)
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None


class Builder:
    def __init__(self, work: Path, python: str, context: Path, dockerignore: Path,
                 log: bool = True) -> None:
        self.work = work
        self.python = python
        self.context = context
        self.ignore_file = dockerignore
        self.ignore = ignore_patterns(dockerignore)
        self.log = log
        self.stages: dict[str, Stage] = {}
        self.stage: Stage | None = None

    def say(self, text: str) -> None:
        if self.log:
            print(text, flush=True)

    # --- paths --------------------------------------------------------------------------
    def host(self, container_path: str, stage: Stage | None = None) -> Path:
        """Where an absolute (or WORKDIR-relative) path of the stage's file system is here."""
        st = stage or self.current
        p = PurePosixPath(container_path)
        if not p.is_absolute():
            p = PurePosixPath(st.workdir) / p
        return st.root / str(p).lstrip("/")

    @property
    def current(self) -> Stage:
        if self.stage is None:
            raise CheckError("an instruction before the first FROM")
        return self.stage

    def path_env(self, st: Stage) -> str:
        """The image's PATH, with the directories this check built mapped to their place here
        and the rest taken from the base image, i.e. this machine (where the Python is)."""
        parts = []
        for d in st.env.get("PATH", BASE_PATH).split(":"):
            mapped = self.host(d, st)
            parts.append(str(mapped) if mapped.exists() else d)
        parts.append(str(Path(self.python).parent))  # the base image's Python, last
        return ":".join(p for p in parts if p)

    def run(self, argv: list[str], cwd: Path, st: Stage) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items()
               if k in ("HOME", "LANG", "TMPDIR", "PIP_CACHE_DIR", "PIP_INDEX_URL",
                        "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CERT", "SSL_CERT_FILE")}
        env.update({k: v for k, v in st.env.items() if k != "PATH"})
        env["PATH"] = self.path_env(st)
        started = time.monotonic()
        proc = subprocess.run(argv, cwd=cwd, env=env, text=True, capture_output=True)
        shown = shlex.join(a if len(a) < 80 else a[:40].split("\n")[0] + "..." for a in argv)
        self.say(f"    $ {shown}  ({time.monotonic() - started:.1f} s, exit {proc.returncode})")
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise CheckError(f"`{shown}` failed with exit {proc.returncode}:\n{tail}")
        return proc

    # --- instructions -------------------------------------------------------------------
    def do(self, ins: Instruction) -> None:
        handler = getattr(self, f"i_{ins.keyword.lower()}", None)
        if handler is None:
            raise CheckError(f"line {ins.line}: {ins.keyword} is not supported by this check")
        handler(ins)

    def i_from(self, ins: Instruction) -> None:
        m = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", ins.args, re.I)
        if not m:
            raise CheckError(f"line {ins.line}: cannot read FROM {ins.args}")
        image, name = m.group(1), m.group(2) or f"stage{len(self.stages)}"
        tag = re.fullmatch(r"python:(\d+)\.(\d+)[\w.-]*", image)
        if not tag:
            raise CheckError(f"line {ins.line}: FROM {image}: only python:X.Y images are checked")
        want = (int(tag.group(1)), int(tag.group(2)))
        have = subprocess.run([self.python, "-c", "import sys; print(*sys.version_info[:2])"],
                              capture_output=True, text=True, check=True).stdout.split()
        if tuple(map(int, have)) != want:
            raise CheckError(f"FROM {image} is Python {want[0]}.{want[1]}, but {self.python} is "
                             f"{'.'.join(have)}: give --python with the same version")
        if self.stage is not None:  # the previous stage's files move aside, as in Docker
            aside = self.work / f"stage-{self.stage.name}"
            self.stage.root.rename(aside)
            self.stage.root = aside
        root = self.work / "root"
        root.mkdir()
        self.stage = Stage(name, image, root, env={"PATH": BASE_PATH})
        self.stages[name] = self.stage

    def i_env(self, ins: Instruction) -> None:
        self.current.env.update(parse_env(ins.args, self.current.env))

    def i_workdir(self, ins: Instruction) -> None:
        st = self.current
        st.workdir = str(PurePosixPath(st.workdir) / expand(ins.args, st.env))
        self.host(st.workdir).mkdir(parents=True, exist_ok=True)

    def i_copy(self, ins: Instruction) -> None:
        st = self.current
        tokens = shlex.split(ins.args)
        flags = {}
        while tokens and tokens[0].startswith("--"):
            key, _, value = tokens.pop(0)[2:].partition("=")
            flags[key] = value
        if set(flags) - {"from", "chown", "chmod"}:
            raise CheckError(f"line {ins.line}: COPY flags {sorted(flags)} are not supported")
        if len(tokens) < 2:
            raise CheckError(f"line {ins.line}: COPY needs a source and a destination")
        *sources, dest = tokens
        if "from" in flags:
            src_stage = self.stages.get(flags["from"])
            if src_stage is None or src_stage is st:
                raise CheckError(f"line {ins.line}: no earlier stage {flags['from']!r}")
            for s in sources:
                if s != dest:
                    raise CheckError(f"line {ins.line}: COPY --from copies to another path "
                                     f"({s} -> {dest}); a venv would break, and so would this "
                                     "check")
                src = self.host(s, src_stage)
                if not src.exists():
                    raise CheckError(f"line {ins.line}: {s} does not exist in stage "
                                     f"{src_stage.name}")
                # hard links: the earlier stage's files are not used again
                self.copy(src, self.host(dest), link=True)
            return
        target = self.host(dest)
        many = len(sources) > 1 or dest.endswith("/")
        for s in sources:
            src = self.context / s
            if not src.exists():
                raise CheckError(f"line {ins.line}: COPY {s}: no such file in the build context")
            if ignored(s, self.ignore):
                raise CheckError(f"line {ins.line}: COPY {s}: excluded from the build context "
                                 f"by {self.ignore_file.name}")
            self.copy(src, target / src.name if many and src.is_file() else target)

    def copy(self, src: Path, dest: Path, link: bool = False) -> None:
        """Copy from the build context (what the ignore file leaves out stays out), or hard-link
        from an earlier stage (`link`)."""
        if src.is_dir():
            how: dict[str, Any] = ({"copy_function": os.link} if link
                                   else {"ignore": self.ignored_in})
            shutil.copytree(src, dest, symlinks=True, dirs_exist_ok=True, **how)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            (os.link if link else shutil.copy2)(src, dest)

    def ignored_in(self, directory: str, names: list[str]) -> list[str]:
        """shutil.copytree's `ignore`: what the context leaves out of a copied directory."""
        d = Path(directory)
        if not d.is_relative_to(self.context):
            return []  # copying between stages: everything
        return [n for n in names if ignored(str((d / n).relative_to(self.context)), self.ignore)]

    def i_run(self, ins: Instruction) -> None:
        st = self.current
        if ins.args.startswith("["):
            raise CheckError(f"line {ins.line}: exec-form RUN is not supported by this check")
        for part in re.split(r"\s*&&\s*", ins.args):
            argv = [expand(a, st.env) for a in shlex.split(part)]
            if not argv:
                continue
            self.command(ins, argv)

    def command(self, ins: Instruction, argv: list[str]) -> None:
        st = self.current
        cwd = self.host(st.workdir)
        cwd.mkdir(parents=True, exist_ok=True)
        prog = argv[0]
        if prog in ("python", "python3") and argv[1:3] == ["-m", "venv"] and len(argv) == 4:
            self.run([self.python, "-m", "venv", str(self.host(argv[3]))], cwd, st)
        elif prog.endswith("/bin/pip") and argv[1:2] == ["install"]:
            pip = self.host(prog)
            if not pip.exists():
                raise CheckError(f"line {ins.line}: {prog} does not exist (no venv there)")
            args = [a for a in argv[2:] if a != "--no-cache-dir"]
            # --no-compile: the .pyc files change nothing about what installs, and take time
            self.run([str(pip), "install", "-q", "--no-compile", *args], cwd, st)
        elif prog == "useradd":
            self.useradd(ins, argv[1:])
        elif prog == "groupadd":
            if not re.fullmatch(r"groupadd( --system)? --gid \d+ [a-z_][a-z0-9_-]*",
                                " ".join(argv)):
                raise CheckError(f"line {ins.line}: `{shlex.join(argv)}`: expected "
                                 "groupadd [--system] --gid N NAME")
            self.say(f"    {shlex.join(argv)}: recorded, not run")
        else:
            raise CheckError(f"line {ins.line}: RUN `{shlex.join(argv)}`: this check does not "
                             "know how to reproduce it; teach deploy/check_dockerfile.py")

    def useradd(self, ins: Instruction, args: list[str]) -> None:
        """Record the user `useradd` creates (and its home); the host is left alone."""
        user = parse_useradd(ins.line, args)
        self.current.users[user.name] = user.uid
        if user.home and user.create_home:
            self.host(user.home).mkdir(parents=True, exist_ok=True)
        self.say(f"    useradd {user.name} (uid {user.uid}) recorded, not run")

    def i_user(self, ins: Instruction) -> None:
        st = self.current
        user = ins.args.split(":")[0]
        if user.isdigit() and int(user) not in st.users.values() and user != "0":
            raise CheckError(f"line {ins.line}: USER {user}: no user with that uid was created")
        if user not in st.users and not user.isdigit() and user != "root":
            raise CheckError(f"line {ins.line}: USER {user} was not created in this stage")
        st.user = user

    def i_entrypoint(self, ins: Instruction) -> None:
        self.current.entrypoint = self.exec_form(ins)

    def i_cmd(self, ins: Instruction) -> None:
        self.current.cmd = self.exec_form(ins)

    @staticmethod
    def exec_form(ins: Instruction) -> list[str]:
        try:
            value = json.loads(ins.args)
        except json.JSONDecodeError:
            value = None
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise CheckError(f"line {ins.line}: {ins.keyword} must be in exec form "
                             '(["prog", "arg"]), so that signals reach the program')
        return value

    def i_label(self, ins: Instruction) -> None:
        pass

    def i_expose(self, ins: Instruction) -> None:
        for port in ins.args.split():
            if not port.split("/")[0].isdigit():
                raise CheckError(f"line {ins.line}: EXPOSE {port} is not a port")

    # --- the image -----------------------------------------------------------------------
    def check_image(self) -> list[str]:
        """Run the final stage's ENTRYPOINT as the image would; return the subcommands that
        `--help` lists."""
        st = self.current
        if st.entrypoint is None:
            raise CheckError("the final stage has no ENTRYPOINT")
        if st.user in ("root", "0") or st.users.get(st.user) == 0:
            raise CheckError("the final stage runs as root: add a USER")
        program = shutil.which(st.entrypoint[0], path=self.path_env(st))
        if program is None or not Path(program).is_relative_to(st.root):
            raise CheckError(f"ENTRYPOINT {st.entrypoint[0]} is not installed in the image "
                             f"(found {program})")
        cwd = self.host(st.workdir)
        cwd.mkdir(parents=True, exist_ok=True)
        help_text = self.run([program, *st.entrypoint[1:], "--help"], cwd, st).stdout
        commands = re.findall(r"^│ ([a-z][\w-]*)\s{2,}", help_text, re.M)
        if not commands:
            commands = re.findall(r"^\s{2}([a-z][\w-]*)\s{2,}", help_text, re.M)
        missing = [c for c in SERVICE_COMMANDS if c not in commands]
        if missing:
            raise CheckError(f"`vitals --help` does not list {missing}: {help_text[:400]}")
        for sub in SERVICE_COMMANDS:
            self.run([program, *st.entrypoint[1:], sub, "--help"], cwd, st)
        python = shutil.which("python", path=self.path_env(st))
        if python is None or not Path(python).is_relative_to(st.root):
            raise CheckError(f"python on the image's PATH is not the image's venv ({python})")
        self.say("    " + self.run([python, "-c", SMOKE], cwd, st).stdout.strip())
        if st.cmd is not None:
            self.run([program, *st.entrypoint[1:], *st.cmd], cwd, st)
        return commands


def check(work: Path, python: str = sys.executable, dockerfile: Path = DOCKERFILE,
          context: Path = REPO, log: bool = True) -> list[str]:
    """Carry out `dockerfile` in `work`; return the subcommands the image's `vitals` lists.
    Raises CheckError when a step fails."""
    ignore_file = dockerfile.with_name(dockerfile.name + ".dockerignore")
    builder = Builder(work, python, context, ignore_file, log)
    instructions = parse(dockerfile.read_text())
    for n, ins in enumerate(instructions, 1):
        builder.say(f"step {n}/{len(instructions)} (line {ins.line}): {ins}")
        started = time.monotonic()
        try:
            builder.do(ins)
        except CheckError as exc:
            raise CheckError(f"step {n} (line {ins.line}) {ins.keyword}: {exc}") from None
        elapsed = time.monotonic() - started
        if elapsed > 1:
            builder.say(f"    done in {elapsed:.1f} s")
    builder.say("the image: ENTRYPOINT --help, each service's --help, imports and defaults")
    return builder.check_image()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", type=Path, help="build here and keep it (default: a temp dir)")
    ap.add_argument("--dockerfile", type=Path, default=DOCKERFILE)
    ap.add_argument("--context", type=Path, default=REPO)
    ap.add_argument("--python", default=sys.executable,
                    help="the Python for the venv (the FROM image's version)")
    args = ap.parse_args(argv)
    started = time.monotonic()
    try:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=False)
            commands = check(args.keep, args.python, args.dockerfile, args.context)
        else:
            with tempfile.TemporaryDirectory(prefix="vitals-image-") as tmp:
                commands = check(Path(tmp), args.python, args.dockerfile, args.context)
    except CheckError as exc:
        print(f"check_dockerfile: FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"check_dockerfile: ok in {time.monotonic() - started:.0f} s; the image's vitals "
          f"lists {', '.join(commands)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
