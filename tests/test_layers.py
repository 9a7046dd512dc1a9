"""The one-way layers of pyproject.toml's [tool.importlinter] contracts hold (also run by `make lint`).

The layers contract names every top-level package, config (the wiring, on top) and core (the
floor) included, so no package cycle can come back: a package that imports one above it, or a new
package left out of the contract, fails here.
"""

import os
import tomllib

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
