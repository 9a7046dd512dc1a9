"""The image installs exactly pyproject.toml's runtime group: requirements.txt is its export."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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


def test_the_image_installs_requirements_txt():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()

    assert "COPY requirements.txt requirements.txt" in dockerfile
    assert "RUN pip install -r requirements.txt" in dockerfile
