"""The one-way layers of pyproject.toml's [tool.importlinter] contracts hold (also run by `make lint`)."""

import os

from importlinter.cli import lint_imports

from devstack.stack import BASE_DIR


def test_every_import_contract_is_kept(capsys):
    cwd = os.getcwd()
    os.chdir(BASE_DIR)
    try:
        exit_code = lint_imports(no_cache=True)
    finally:
        os.chdir(cwd)

    assert exit_code == 0, capsys.readouterr().out
