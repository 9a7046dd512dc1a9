"""The image installs exactly pyproject.toml's runtime group: requirements.txt is its export, and
deploy/requirements.lock is requirements.txt with every transitive dependency pinned and hashed."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "deploy" / "requirements.lock"


def requirements_file() -> list[str]:
    lines = (line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines())
    return [line for line in lines if line]


def group(name: str) -> list:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"][name]


def test_requirements_txt_is_the_runtime_group():
    assert requirements_file() == group("runtime")


def test_the_runtime_group_leaves_out_the_local_test_and_lab_tools():
    runtime = {pin.split("==")[0].split("[")[0].lower() for pin in group("runtime")}

    assert runtime.isdisjoint({"moto", "aiohttp", "honcho", "locust", "pytest", "selenium", "matplotlib"})


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_entries() -> dict[str, list[str]]:
    """Each requirement line of the lock, its `\\` continuations joined, by canonical name: its words."""
    entries: dict[str, list[str]] = {}
    for line in re.sub(r"\\\n", " ", LOCK.read_text()).splitlines():
        words = line.split("#")[0].split()
        if words:
            name = re.split(r"[=<>!~\[; ]", words[0])[0]
            assert canonical(name) not in entries, f"{name} is locked twice"
            entries[canonical(name)] = words
    return entries


def test_the_image_installs_the_lock_alone():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()

    assert "COPY deploy/requirements.lock deploy/requirements.lock" in dockerfile
    assert "RUN pip install --no-deps --require-hashes -r deploy/requirements.lock" in dockerfile
    assert "pip install -r requirements.txt" not in dockerfile


def test_every_pin_of_requirements_txt_is_locked_at_its_version():
    locked = {name: words[0].split("==")[1] for name, words in lock_entries().items()}
    for pin in requirements_file():
        name, version = pin.split("==")
        assert locked.get(canonical(name.split("[")[0])) == version, pin


def test_every_locked_package_is_pinned_exactly_and_hashed():
    entries = lock_entries()
    assert len(entries) > len(requirements_file())  # the transitive dependencies are there too
    for name, words in entries.items():
        assert re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!_-]+", words[0]), words[0]
        hashes = words[1:]
        assert hashes and all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", word) for word in hashes), name


def test_the_lock_names_no_index_and_is_regenerated_by_make_lock():
    text = LOCK.read_text()
    # A local mirror's URL or a --find-links folder would not exist where the image is built.
    assert not re.search(r"^\s*-(-index-url|-extra-index-url|-find-links|-trusted-host|i|f)\b", text, re.M)
    assert "file:" not in text and "/opt/" not in text
    assert "#    make lock" in text
    makefile = (ROOT / "Makefile").read_text()
    assert "--generate-hashes" in makefile and "--output-file deploy/requirements.lock" in makefile
    assert any(pin.startswith("pip-tools==") for pin in group("deploy"))
