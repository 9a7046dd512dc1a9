"""The one-way layers of pyproject.toml's [tool.importlinter] contracts hold (also run by `make lint`).

The layers contract names every top-level package, config (the wiring, on top) and core (the
floor) included, so no package cycle can come back: a package that imports one above it, or a new
package left out of the contract, fails here.

Two rules no import shows are checked here too: no code outside config/ and the migrations asks
which database it is on (PostgreSQL only, docs/writes.md), and every OrderEvent is written by
orders/transitions.py (or the PostgreSQL functions of the migrations).
"""

import os
import re
import tomllib
from pathlib import Path

import grimp
import pytest
from importlinter.cli import lint_imports
from importlinter.contracts.layers import LayersContract

from devstack.stack import BASE_DIR

IMPORTLINTER = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["tool"]["importlinter"]
LAYERS = next(c for c in IMPORTLINTER["contracts"] if c["type"] == "layers")


def test_every_import_contract_is_kept(capsys):
    cwd = os.getcwd()
    os.chdir(BASE_DIR)
    try:
        exit_code = lint_imports(no_cache=True)
    finally:
        os.chdir(cwd)

    assert exit_code == 0, capsys.readouterr().out


def top_level_packages() -> set[str]:
    return {
        path.parent.name
        for path in BASE_DIR.glob("*/__init__.py")
        if not path.parent.name.startswith(".") and path.parent.name != "node_modules"
    }


def test_the_layers_contract_names_every_top_level_package():
    named = [name.strip() for layer in LAYERS["layers"] for name in layer.split("|")]

    assert sorted(named) == sorted(top_level_packages())
    assert sorted(IMPORTLINTER["root_packages"]) == sorted(top_level_packages())
    assert (named[0], named[-2], named[-1]) == ("tests", "observability", "core")
    assert named.index("config") < min(named.index(app) for app in ("console", "orders", "shop"))


def project_graph() -> grimp.ImportGraph:
    """The project's import graph as lint-imports builds it (a new one each time: a check edits it)."""
    cwd = os.getcwd()
    os.chdir(BASE_DIR)
    try:
        return grimp.build_graph(
            *IMPORTLINTER["root_packages"], include_external_packages=True, cache_dir=None
        )
    finally:
        os.chdir(cwd)


def layers_kept(graph) -> bool:
    contract = LayersContract(
        name=LAYERS["name"],
        session_options={"root_packages": IMPORTLINTER["root_packages"]},
        contract_options={key: value for key, value in LAYERS.items() if key not in ("name", "type")},
    )
    return contract.check(graph, verbose=False).kept


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("core.timeouts", "config.settings.base"),  # the floor reaching for the wiring
        ("orders.checks", "config.processes"),  # config ⇄ orders, the cycle issue 22 removed
        ("shop.api.views", "orders.api.errors"),  # the catalogue reaching up into the orders
        ("observability.readiness", "queues.sqs"),  # readiness wired by settings, never imported
        ("payments.gateway", "shop.models"),  # independent siblings stay independent
    ],
)
def test_the_layers_contract_fails_on_a_planted_upward_import(importer, imported):
    assert layers_kept(project_graph())  # as the code is
    graph = project_graph()

    graph.add_import(importer=importer, imported=imported, line_number=1, line_contents=f"import {imported}")

    assert not layers_kept(graph)


# One path per write (docs/writes.md): the shop runs on PostgreSQL only, so no code outside the
# settings (config/) and the historic migrations asks which database it is on. Built so that this
# file does not match itself.
READS_VENDOR = re.compile(r"[.]" + "vendor" + r"\b|attr\([^)]*['\"]" + "vendor" + r"['\"]")


def first_party_sources() -> list[Path]:
    """Every Python file of the project's own, outside config/ and the migrations."""
    roots = [BASE_DIR / name for name in sorted(top_level_packages()) if name != "config"]
    files = [path for root in roots for path in root.rglob("*.py")] + list(BASE_DIR.glob("*.py"))
    return [path for path in files if "migrations" not in path.relative_to(BASE_DIR).parts]


def vendor_reads(paths: list[Path]) -> list[str]:
    return [
        f"{path.relative_to(BASE_DIR)}:{number}: {line.strip()}"
        for path in paths
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if READS_VENDOR.search(line)
    ]


def test_no_code_outside_config_and_the_migrations_reads_the_database_vendor():
    sources = first_party_sources()

    assert BASE_DIR / "orders" / "checkout.py" in sources and BASE_DIR / "conftest.py" in sources
    assert vendor_reads(sources) == []


def test_the_vendor_check_finds_each_way_of_asking(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.BASE_DIR", tmp_path)
    planted = tmp_path / "planted.py"
    planted.write_text(
        (
            'if connection.VENDOR == "postgresql":\n'
            "    pass\n"
            'monkeypatch.setattr(connection, "VENDOR", "orm-path")\n'
            "deploy(VENDOR_name='AWS')\n"  # a keyword of another meaning: not a read
        ).replace("VENDOR", "vendor")  # spelt so that this file does not match itself
    )

    assert [hit.split(":")[1] for hit in vendor_reads([planted])] == ["1", "3"]


# History has one writer (orders/transitions.py's docstring): an OrderEvent is built or written
# there, or by the PostgreSQL functions of the migrations.
WRITES_EVENT = re.compile(
    r"(?<!class )\bOrderEvent\(|OrderEvent\.objects\.(?:bulk_)?create|table\(OrderEvent\)"
)


def test_every_order_event_is_written_by_the_state_machine():
    sources = [*first_party_sources(), *(BASE_DIR / "config").rglob("*.py")]
    writers = {
        str(path.relative_to(BASE_DIR))
        for path in sources
        if WRITES_EVENT.search(path.read_text()) and path != Path(__file__)
    }

    assert writers == {"orders/transitions.py"}
