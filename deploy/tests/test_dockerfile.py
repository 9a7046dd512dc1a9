"""The image cannot be built here (no Docker engine): lint deploy/Dockerfile for what the stack relies on."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()
INSTRUCTIONS = [
    line.split()[0] for line in DOCKERFILE.splitlines() if line and not line.startswith(("#", " "))
]


def test_a_pinned_slim_python_base_and_a_non_root_user():
    assert INSTRUCTIONS[0] == "FROM" and "FROM python:3.11-slim" in DOCKERFILE
    assert "USER app" in DOCKERFILE
    assert INSTRUCTIONS.index("USER") > INSTRUCTIONS.index("RUN")  # nothing runs as root after


def test_requirements_install_before_the_code_is_copied():
    assert DOCKERFILE.index("RUN pip install -r requirements.txt") < DOCKERFILE.index("COPY . .")


def test_the_default_command_is_the_web_process_of_config_processes():
    assert 'CMD ["python", "-m", "config.processes", "web"]' in DOCKERFILE
    assert "DJANGO_SETTINGS_MODULE=config.settings.production" in DOCKERFILE


def test_no_real_secret_is_baked_into_the_image():
    env_block = DOCKERFILE[DOCKERFILE.index("ENV ") : DOCKERFILE.index("WORKDIR")]
    assert "SECRET" not in env_block and "API_KEY" not in env_block and "DATABASE_URL" not in env_block


def test_the_lambda_runtime_client_and_health_check_module_ship_in_the_image():
    requirements = (ROOT / "requirements.txt").read_text()
    assert "awslambdaric==" in requirements and "aws-lambda-powertools==" in requirements
    assert (ROOT / "config" / "heartbeat.py").exists() and (ROOT / "config" / "lambda_handler.py").exists()
    assert "config" not in (ROOT / ".dockerignore").read_text().split()
