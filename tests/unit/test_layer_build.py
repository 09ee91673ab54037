"""The ImpexLayer that `sam build` makes ships production code only, and that code stands alone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from impex.local.template import load_template
from tests.conftest import ROOT


def runtime_python() -> str:
    """The Lambda runtime's interpreter (python3.13), found as the Makefile finds it for sam build."""
    candidates = [
        *sorted(Path.home().glob(".pyenv/versions/3.13*/bin/python3.13")),
        shutil.which("python3.13"),
    ]
    for candidate in filter(None, candidates):
        if subprocess.run([str(candidate), "-c", "pass"], capture_output=True, check=False).returncode == 0:
            return str(candidate)
    raise AssertionError("sam build needs python3.13 (the Lambda runtime); install it (pyenv install 3.13)")


def build_layer(artifacts) -> None:
    """Run the layer's build exactly as sam build does (BuildMethod: makefile, ARTIFACTS_DIR, the
    runtime's python3.13 first on PATH)."""
    path = f"{Path(runtime_python()).parent}{os.pathsep}{os.environ['PATH']}"
    subprocess.run(
        ["make", "--no-print-directory", "-f", "Makefile", "build-ImpexLayer", f"ARTIFACTS_DIR={artifacts}"],
        cwd=ROOT / "shared",
        check=True,
        capture_output=True,
        env={**os.environ, "PATH": path},
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


def test_the_built_layer_ships_the_runtime_s_bytecode_for_every_module(tmp_path):
    # When the layer is built
    build_layer(tmp_path)
    package = tmp_path / "python" / "impex"
    # Then every module has python3.13 bytecode beside it, and no other interpreter's (no stale caches)
    sources = sorted(package.rglob("*.py"))
    compiled = sorted(package.rglob("*.pyc"))
    assert len(sources) > 40
    assert len(compiled) == len(sources)
    for source in sources:
        bytecode = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        header = bytecode.read_bytes()[:16]
        # PEP 552: flags 0b01 = hash-based and unchecked, so Lambda never recompiles (it cannot write)
        assert int.from_bytes(header[4:8], "little") == 0b01, source
    assert all(p.name.endswith(".cpython-313.pyc") for p in compiled)


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
