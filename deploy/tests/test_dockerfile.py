"""deploy/Dockerfile, read as docker reads it, and its collectstatic step run for real.

The image cannot be built here (no Docker engine, no registry: deploy/README.md "Testing"). What can
break a build of our own making is the one step that loads the application: collectstatic under
production settings. So that step runs here, from the Dockerfile's own text: its ENV instructions
and the RUN step's inline variables, nothing else from this machine's environment.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comments dropped, `\\` continuations joined, as docker does."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):  # docker skips these inside a continuation too
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, f"the Dockerfile ends inside a continuation: {pending!r}"
    return instructions


INSTRUCTIONS = parse(DOCKERFILE)
KEYWORDS = [keyword for keyword, _ in INSTRUCTIONS]


def arguments_of(keyword: str) -> list[str]:
    return [arguments for kw, arguments in INSTRUCTIONS if kw == keyword]


def assignment(word: str) -> tuple[str, str]:
    name, _, value = word.partition("=")
    assert NAME.fullmatch(name), f"not a variable assignment: {word!r}"
    # Docker substitutes $VAR in ENV values; nothing here does, so a value must not need it.
    assert "$" not in value, f"{word!r}: variable substitution is not modelled by this test"
    return name, value


def image_env() -> dict[str, str]:
    """Every ENV instruction's variables (KEY=value pairs, or the legacy `ENV KEY value`)."""
    env: dict[str, str] = {}
    for arguments in arguments_of("ENV"):
        words = shlex.split(arguments)
        if "=" in words[0]:
            env.update(assignment(word) for word in words)
        else:
            name, value = assignment(f"{words[0]}={' '.join(words[1:])}")
            env[name] = value
    return env


def collectstatic_step() -> tuple[dict[str, str], list[str]]:
    """The RUN step that collects the static files: its inline variables and its first command."""
    (run,) = [arguments for arguments in arguments_of("RUN") if "collectstatic" in arguments]
    assert not run.startswith("["), "the exec form takes no inline variables"
    words = shlex.split(run.split("&&")[0])
    env: dict[str, str] = {}
    while words and "=" in words[0] and NAME.fullmatch(words[0].partition("=")[0]):
        name, value = assignment(words.pop(0))
        env[name] = value
    return env, words


def build_context(destination: Path) -> Path:
    """Copy the repository as `docker build .` sends it: without what .dockerignore leaves out.

    Docker's matching, enough for our file: patterns are anchored at the root, `*` and `?` stay
    inside one path segment, `**` crosses them, a matched directory takes its contents along, a
    `!pattern` takes a path back, and the last matching line wins.
    """
    lines = (line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines())
    rules = [
        (line.startswith("!"), pattern_regex(line.lstrip("!")))
        for line in lines
        if line and not line.startswith("#")
    ]

    def ignored(directory: str, names: list[str]) -> set[str]:
        relative = Path(directory).relative_to(ROOT).as_posix()
        left_out = set()
        for name in names:
            path = name if relative == "." else f"{relative}/{name}"
            excluded = False
            for negated, regex in rules:
                if regex.fullmatch(path):
                    excluded = not negated
            if excluded:
                left_out.add(name)
        return left_out

    shutil.copytree(ROOT, destination, symlinks=True, ignore=ignored)
    return destination


def pattern_regex(pattern: str) -> re.Pattern[str]:
    pattern, regex, i = pattern.strip("/"), "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            regex, i = regex + ".*", i + 2
        else:
            regex += {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i]))
            i += 1
    return re.compile(regex + "(?:/.*)?")


def test_the_dockerignore_matching_follows_docker():
    assert pattern_regex("**/*.pyc").fullmatch("a.pyc") and pattern_regex("**/*.pyc").fullmatch("x/y/a.pyc")
    assert pattern_regex("*.sqlite3").fullmatch("db.sqlite3")
    assert not pattern_regex("*.sqlite3").fullmatch("x/db.sqlite3")  # anchored at the root
    assert pattern_regex("deploy/tests").fullmatch("deploy/tests/test_stack.py")
    assert not pattern_regex("docs").fullmatch("docsite/x")


def test_the_instructions_are_parsed_with_their_continuations():
    env = image_env()
    assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    assert env["WEB_BIND"] == "0.0.0.0:8000"  # the last line of a five-line ENV
    assert parse("RUN a \\\n  # note\n  b\nUSER x") == [("RUN", "a b"), ("USER", "x")]


def test_a_digest_pinned_slim_python_base_and_a_non_root_user():
    assert KEYWORDS[0] == "FROM" and KEYWORDS.count("FROM") == 1
    (base,) = arguments_of("FROM")
    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", base), base
    # The digest's refresh is written beside it.
    assert "docker buildx imagetools inspect python:3.11-slim" in DOCKERFILE
    assert arguments_of("USER") == ["app"]
    last_run = len(KEYWORDS) - 1 - KEYWORDS[::-1].index("RUN")
    assert KEYWORDS.index("USER") > last_run  # nothing runs as root after


def test_the_locked_requirements_install_before_the_code_is_copied():
    copies = arguments_of("COPY")
    install = "pip install --no-deps --require-hashes -r deploy/requirements.lock"
    (install_step,) = [i for i, (kw, args) in enumerate(INSTRUCTIONS) if kw == "RUN" and install in args]
    lock_copy = INSTRUCTIONS.index(("COPY", "deploy/requirements.lock deploy/requirements.lock"))
    code_copy = INSTRUCTIONS.index(("COPY", ". ."))
    assert lock_copy < install_step < code_copy
    assert copies[0] == "deploy/requirements.lock deploy/requirements.lock"  # a code change keeps the layer
    assert "deploy/requirements.lock" not in (ROOT / ".dockerignore").read_text()


def test_the_default_command_is_the_web_process_of_config_processes():
    assert arguments_of("CMD") == ['["python", "-m", "config.processes", "web"]']
    assert image_env()["DJANGO_SETTINGS_MODULE"] == "config.settings.production"


def test_no_real_secret_is_baked_into_the_image():
    baked = " ".join([f"{name}={value}" for name, value in image_env().items()] + arguments_of("ARG"))
    for word in ("SECRET", "API_KEY", "DATABASE_URL", "REDIS_URL", "PASSWORD"):
        assert word not in baked


def test_the_build_only_values_reach_no_real_service():
    step_env, _ = collectstatic_step()
    for name, value in step_env.items():
        host = urlsplit(value).hostname if "://" in value else None
        assert host is None or host.endswith(".invalid"), f"{name}={value}"
    assert step_env["DJANGO_ALLOWED_HOSTS"].endswith(".invalid")
    assert step_env["DATABASE_URL"] == "sqlite://:memory:"


@pytest.mark.integration  # a subprocess: Django under production settings, 20–60 s
@pytest.mark.timeout(300)
def test_the_collectstatic_step_runs_with_exactly_the_dockerfiles_variables(tmp_path: Path):
    step_env, command = collectstatic_step()
    assert command == ["python", "manage.py", "collectstatic", "--noinput"]
    workdir = arguments_of("WORKDIR")[-1]
    # STATIC_ROOT is BASE_DIR / "staticfiles" (config/settings/base.py), not a variable: the step
    # runs in a copy of the build context, which also leaves out what .dockerignore does (.env).
    context = build_context(tmp_path / workdir.strip("/"))
    # This interpreter stands for the image's `python`; PATH is the one variable added.
    env = {
        **image_env(),
        **step_env,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }

    result = subprocess.run(command, cwd=context, env=env, capture_output=True, text=True, timeout=280)

    assert result.returncode == 0, result.stderr[-3000:]
    static_root = context / "staticfiles"
    assert f"copied to '{static_root}'" in result.stdout
    # whitenoise.storage.CompressedStaticFilesStorage (base.py's STORAGES) wrote each file and its
    # gzip copy (brotli too where it is installed: not in the image); the admin, the storefront and
    # the offline API docs are all there.
    for collected in ("admin/css/base.css", "shop/checkout.js", "drf_spectacular_sidecar/swagger-ui-dist"):
        assert (static_root / collected).exists(), collected
    assert (static_root / "admin/css/base.css.gz").stat().st_size > 0


def test_the_lambda_runtime_client_and_health_check_module_ship_in_the_image():
    requirements = (ROOT / "requirements.txt").read_text()
    assert "awslambdaric==" in requirements and "aws-lambda-powertools==" in requirements
    assert (ROOT / "observability" / "heartbeat.py").exists()
    assert (ROOT / "orders" / "lambda_handler.py").exists()
    assert not {"config", "observability"} & set((ROOT / ".dockerignore").read_text().split())
