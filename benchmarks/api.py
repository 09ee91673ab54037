"""The api function's cold start and warm status latency (issue #14's api_cold_start, api_status).

api_cold_start: importing functions/api/app.py in a fresh interpreter (what Lambda does on a cold
start: settings validated, the resolver and its routes built), against a minimal Powertools
APIGatewayHttpResolver handler with validation and one pydantic route, in the same run; the median
of several runs each. It also lists the heavy modules the api module pulls in.

api_status: warm GET /jobs/{id}/status through the api handler, sequentially, on moto in-process.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ["pyarrow", "openpyxl", "python_calamine", "s3transfer", "xlsxwriter", "impex.pipelines"]

_MINIMAL = """
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from pydantic import BaseModel


class Status(BaseModel):
    id: str
    status: str


app = APIGatewayHttpResolver(enable_validation=True)


@app.get("/jobs/<job_id>/status")
def status(job_id: str) -> Status:
    return Status(id=job_id, status="PENDING")


def lambda_handler(event, context):
    return app.resolve(event, context)
"""

_PROBE = """
import sys, time, json
sys.path.insert(0, {directory!r})
started = time.perf_counter()
import app
seconds = time.perf_counter() - started
heavy = [name for name in {heavy!r} if name in sys.modules]
print(json.dumps({{"seconds": seconds, "heavy": heavy}}))
"""


def _import_once(directory: Path, env: dict[str, str]) -> dict[str, Any]:
    probe = _PROBE.format(directory=str(directory), heavy=HEAVY)
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False, cwd=ROOT
    )
    if result.returncode != 0:
        raise SystemExit(f"importing {directory}/app.py failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def cold_start_line(function_env: dict[str, str], moto_url: str, runs: int = 7) -> str:
    """BENCH api_cold_start: median import time of the api module over the minimal handler's."""
    env = {
        **os.environ,
        **function_env,
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
    with tempfile.TemporaryDirectory() as scratch:
        minimal = Path(scratch)
        (minimal / "app.py").write_text(_MINIMAL)
        ours, baseline, heavy = [], [], set()
        for _ in range(runs):  # interleaved, so both see the same machine
            measured = _import_once(ROOT / "functions" / "api", env)
            ours.append(measured["seconds"])
            heavy.update(measured["heavy"])
            baseline.append(_import_once(minimal, env)["seconds"])
    ms, base_ms = statistics.median(ours) * 1000, statistics.median(baseline) * 1000
    return (
        f"BENCH api_cold_start ms={ms:.0f} baseline_ms={base_ms:.0f} ratio={ms / base_ms:.2f} "
        f"runs={runs} heavy_modules={','.join(sorted(heavy)) or 'none'}"
    )


def status_line(requests_count: int = 300) -> str:
    """BENCH api_status: warm GET …/status latency through the local stack over HTTP, sequentially."""
    import re
    import signal
    import time

    import requests

    from impex.local.auth import LocalIssuer

    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "IMPEX_HOME": home, "IMPEX_LOCAL_AWS_PORT": "0"}
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
            env.pop(name, None)
        impex = str(Path(sys.executable).with_name("impex"))
        process = subprocess.Popen(
            [impex, "local", "serve", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=ROOT,
        )
        try:
            assert process.stdout is not None
            ready = None
            while ready is None:
                line = process.stdout.readline()
                if not line:
                    raise SystemExit("the local stack did not start")
                ready = re.search(r"ready: api=(\S+)", line)
            api = ready.group(1)
            headers = {"Authorization": f"Bearer {LocalIssuer(Path(home)).token('bench')}"}
            schema = json.loads((ROOT / "examples" / "customers.schema.json").read_text())
            requests.put(f"{api}/datasets/customers", json=schema, headers=headers, timeout=10)
            body = {"dataset": "customers", "fileName": "a.csv"}
            created = requests.post(f"{api}/imports", json=body, headers=headers, timeout=10).json()
            url = f"{api}/jobs/{created['job']['id']}/status"
            with requests.Session() as session:
                for _ in range(20):  # warm: the first requests pay for imports and connections
                    session.get(url, headers=headers, timeout=10)
                latencies = []
                for _ in range(requests_count):
                    started = time.perf_counter()
                    response = session.get(url, headers=headers, timeout=10)
                    latencies.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200, response.text
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return f"BENCH api_status p50_ms={p50:.1f} p99_ms={p99:.1f} requests={requests_count}"
