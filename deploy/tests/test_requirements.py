"""The image's requirements are a subset of the project's, pinned the same."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pins(path: Path) -> dict[str, str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return dict(line.split("==", 1) for line in lines if line and not line.startswith("-"))


def test_the_image_pins_exactly_what_the_project_pins():
    image, project = pins(ROOT / "deploy" / "requirements.txt"), pins(ROOT / "requirements.txt")

    assert image, "deploy/requirements.txt is empty"
    assert {name: version for name, version in image.items() if project.get(name) != version} == {}


def test_the_image_leaves_out_the_test_and_load_tools():
    image = {name.split("[")[0].lower() for name in pins(ROOT / "deploy" / "requirements.txt")}

    assert image.isdisjoint({"moto", "locust", "pytest", "pytest-django", "selenium", "matplotlib", "honcho"})
