"""The architecture's rules hold, and breaking one fails `make lint` (import-linter's contracts)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "violation", "reported"),
    [
        # a lower layer importing a higher one
        (
            "formats/columns.py",
            "import impex.pipelines.importer",
            "impex.formats is not allowed to import impex.pipelines",
        ),
        # the production path importing the local stack
        ("api/service.py", "import impex.local.runtime", "impex.api.service -> impex.local.runtime"),
        # a pipeline matching botocore's errors itself instead of its adapter
        (
            "pipelines/sweeper.py",
            "from botocore.exceptions import ClientError",
            "impex.pipelines.sweeper -> botocore",
        ),
    ],
)
def test_a_deliberate_violation_breaks_a_contract(tmp_path, module, violation, reported):
    # Given a copy of the package with one forbidden import added
    shutil.copytree(
        ROOT / "shared" / "impex", tmp_path / "impex", ignore=shutil.ignore_patterns("__pycache__")
    )
    path = tmp_path / "impex" / module
    path.write_text(path.read_text() + f"\n{violation}  # a deliberate violation\n")
    # When the contracts are checked
    result = lint_imports(tmp_path)
    # Then the check fails and names the import
    assert result.returncode != 0
    assert reported in result.stdout


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
