"""The ImpexLayer that `sam build` makes ships production code only, and that code stands alone."""

from __future__ import annotations

import os
import subprocess
import sys

from impex.local.template import load_template
from tests.conftest import ROOT


def build_layer(artifacts) -> None:
    """Run the layer's build exactly as sam build does (BuildMethod: makefile, ARTIFACTS_DIR)."""
    subprocess.run(
        ["make", "--no-print-directory", "-f", "Makefile", "build-ImpexLayer", f"ARTIFACTS_DIR={artifacts}"],
        cwd=ROOT / "shared",
        check=True,
        capture_output=True,
    )


def test_the_template_builds_the_layer_with_the_makefile():
    layer = load_template(ROOT / "template.yaml")["Resources"]["ImpexLayer"]
    assert layer["Properties"]["ContentUri"] == "shared/"
    assert layer["Metadata"]["BuildMethod"] == "makefile"


def test_the_built_layer_has_no_development_tools(tmp_path):
    # When the layer is built
    build_layer(tmp_path)
    package = tmp_path / "python" / "impex"
    # Then it holds the production packages, and neither the local stack nor the CLI
    assert (package / "wiring.py").is_file() and (package / "pipelines" / "importer.py").is_file()
    assert not (package / "local").exists() and not (package / "cli").exists()
    assert not list(package.rglob("__pycache__"))


def test_every_module_of_the_built_layer_imports_without_the_development_tools(tmp_path):
    build_layer(tmp_path)
    probe = (
        "import importlib, pkgutil, impex\n"
        f"assert impex.__path__[0].startswith({str(tmp_path)!r}), impex.__path__\n"
        "names = [m.name for m in pkgutil.walk_packages(impex.__path__, 'impex.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(len(names))\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(tmp_path / "python")}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, env=environment
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 40
