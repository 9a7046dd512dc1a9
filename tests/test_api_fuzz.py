"""Property-based fuzzing of the whole API (schemathesis) against the real stack.

gunicorn (two processes, config.processes' command) on the test database, the SQS server and the
payment sandbox: every operation in docs/openapi.yaml, with valid and invalid inputs (positive and
negative modes), checked for server errors, status codes the schema does not declare, and responses
(bodies, headers, content types) that do not match it; invalid inputs must be refused with a 4xx.

Bounded and repeatable: a fixed seed and FUZZ_MAX_EXAMPLES per operation and phase (default 200:
about a minute on two cores). `make fuzz` runs it alone and prints the figures.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from devstack.stack import Stack
from tests.fixtures import database_url

pytestmark = pytest.mark.integration

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
]
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", 200))
SEED = 20261128
CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture
def live_web(stack: Stack, transactional_db, payment_queue):
    call_command("seed_catalogue")  # the skus of the schema's examples
    web = stack.start_web(name="web-fuzz", workers=2, threads=8, DATABASE_URL=database_url())
    try:
        yield stack.env["WEB_URL"]
    finally:
        web.stop()
        stack.processes.remove(web)


def test_schemathesis_finds_no_failure_in_any_operation(live_web, tmp_path: Path):
    schemathesis = Path(sys.executable).parent / "st"
    result = subprocess.run(
        [
            str(schemathesis), "--config-file", str(CONFIG), "run", f"{live_web}/api/schema/",
            "--checks", ",".join(CHECKS), "--mode", "all", "--phases", "examples,coverage,fuzzing",
            "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--generation-database", "none",
            "--workers", "1", "--request-timeout", "30", "--no-color", "--warnings", "off",
            "--report", "junit", "--report-dir", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    # Failures and the summary, each line cut short (a fuzzed body can be kilobytes long).
    report = result.stdout[result.stdout.find("FAILURES") if "FAILURES" in result.stdout else 0 :]
    summary = "\n".join(line[:300] for line in report.splitlines())[-8000:]
    print(summary)  # the figures: operations and test cases (shown with -s, or in the report on failure)

    assert result.returncode == 0, summary
    assert re.search(r"Tested: 4\b", result.stdout), summary  # every operation in the schema
    generated, passed = map(int, re.search(r"(\d+) generated, (\d+) passed", result.stdout).groups())
    assert generated == passed > 0, summary
