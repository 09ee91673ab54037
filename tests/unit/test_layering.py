"""The architecture's rules hold, and breaking one fails `make lint` (import-linter's contracts)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
HANDLER_IMPORTS = {"impex.wiring", "impex.observability"}


def lint_imports(package_root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter with the project's contracts over the impex package found in ``package_root``."""
    environment = {**os.environ, "PYTHONPATH": str(package_root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
        cwd=package_root,
    )


def test_the_package_keeps_its_layering_contracts():
    result = lint_imports(ROOT / "shared")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_a_lower_layer_importing_a_higher_one_breaks_the_contract(tmp_path):
    # Given a copy of the package in which formats imports the import pipeline
    shutil.copytree(
        ROOT / "shared" / "impex", tmp_path / "impex", ignore=shutil.ignore_patterns("__pycache__")
    )
    columns = tmp_path / "impex" / "formats" / "columns.py"
    columns.write_text(columns.read_text() + "\nimport impex.pipelines.importer  # a deliberate violation\n")
    # When the contracts are checked
    result = lint_imports(tmp_path)
    # Then the check fails and names the import
    assert result.returncode != 0
    assert "impex.formats is not allowed to import impex.pipelines" in result.stdout


def test_the_production_path_importing_the_local_stack_breaks_the_contract(tmp_path):
    shutil.copytree(
        ROOT / "shared" / "impex", tmp_path / "impex", ignore=shutil.ignore_patterns("__pycache__")
    )
    service = tmp_path / "impex" / "api" / "service.py"
    service.write_text(service.read_text() + "\nimport impex.local.runtime  # a deliberate violation\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "impex.api.service -> impex.local.runtime" in result.stdout


def test_handlers_import_only_the_composition_root():
    for handler in sorted((ROOT / "functions").glob("*/app.py")):
        tree = ast.parse(handler.read_text())
        imported = {
            node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
        }
        imported |= {
            f"impex.{alias.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "impex"
            for alias in node.names
        }
        ours = {name for name in imported if name.startswith("impex.")}
        assert ours <= HANDLER_IMPORTS, (handler, ours - HANDLER_IMPORTS)
        assert "impex.wiring" in ours, handler
