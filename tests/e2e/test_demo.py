"""`make run`'s demo must never rot: run it exactly as `make run` does."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import IMPEX

pytestmark = pytest.mark.e2e


def test_the_demo_completes_and_checks_itself(tmp_path):
    env = {**os.environ, "IMPEX_HOME": str(tmp_path)}
    for name in ("AWS_ENDPOINT_URL", "IMPEX_LOCAL_PORT", "IMPEX_LOCAL_AWS_PORT"):
        env.pop(name, None)
    result = subprocess.run(
        [IMPEX, "local", "demo"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "demo OK" in result.stdout
    downloads = list((tmp_path / "downloads").glob("customers-*.xlsx"))
    assert len(downloads) == 1
