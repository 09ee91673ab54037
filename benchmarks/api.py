"""The api function's cold start and warm status latency (issue #14's api_cold_start, api_status).

api_cold_start: importing functions/api/app.py in a fresh interpreter (what Lambda does on a cold
start: settings validated, the resolver and its routes built), against a minimal Powertools
APIGatewayHttpResolver handler with validation and one pydantic route, in the same run; the median
of several runs each. Both import with bytecode at hand, as the layers ship it (sam build's
makefiles compile every layer; without it every cold start compiles every module): a warm-up run
writes it under a scratch PYTHONPYCACHEPREFIX first. What is left for the first request is measured
too (first_request_ms: a status request, through the handler, to moto): making a client on first
use is not free, only not paid by requests that never call that service. It also lists the heavy
modules the api module pulls in.

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
from impex.local.context import LocalLambdaContext
event = json.loads({event!r})
started = time.perf_counter()
response = app.lambda_handler(event, LocalLambdaContext("api", 30))
first_request = time.perf_counter() - started
status = response["statusCode"]
print(json.dumps({{"seconds": seconds, "first": first_request, "status": status, "heavy": heavy}}))
"""


def _status_event(path: str) -> str:
    """events/api_create_import.json as a GET of a job's status at ``path``."""
    event = json.loads((ROOT / "events" / "api_create_import.json").read_text())
    event.update(rawPath=path, body=None, pathParameters={"proxy": path.split("/api/import-export/")[-1]})
    event["requestContext"]["http"].update(method="GET", path=path)
    return json.dumps(event)


def _import_once(directory: Path, env: dict[str, str], path: str) -> dict[str, Any]:
    probe = _PROBE.format(directory=str(directory), heavy=HEAVY, event=_status_event(path))
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
        # What the Lambda runtime sets in every execution environment. The X-Ray SDK reads
        # LAMBDA_TASK_ROOT: outside Lambda its recorder makes a botocore X-Ray client for sampling
        # rules (~0.1 s, and botocore's import), inside it samples as Lambda says, with no client.
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / "api"),
        "AWS_LAMBDA_FUNCTION_NAME": "api",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as scratch:
        minimal = Path(scratch) / "minimal"
        minimal.mkdir()
        (minimal / "app.py").write_text(_MINIMAL)
        env["PYTHONPYCACHEPREFIX"] = str(Path(scratch) / "bytecode")
        api, ours_path = (
            ROOT / "functions" / "api",
            "/api/import-export/jobs/01JZ3Q6W0000000000000000ZZ/status",
        )
        probes = [(api, ours_path), (minimal, "/jobs/01JZ3Q6W0000000000000000ZZ/status")]
        for directory, path in probes:  # the warm-up: writes the bytecode
            _import_once(directory, env, path)
        runs_of: dict[Path, list[dict[str, Any]]] = {api: [], minimal: []}
        for _ in range(runs):  # interleaved, so both see the same machine
            for directory, path in probes:
                runs_of[directory].append(_import_once(directory, env, path))
        # And the api module as it started before the layers shipped bytecode: compiling every module.
        # An empty bytecode folder, never written: any __pycache__ next to the sources (a venv that
        # once ran without PYTHONDONTWRITEBYTECODE has them) is not read either.
        empty = Path(scratch) / "no-bytecode"
        empty.mkdir()
        compiling = {**env, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(empty)}
        without = [_import_once(api, compiling, ours_path)["seconds"] for _ in range(3)]
    ours, baseline = runs_of[api], runs_of[minimal]
    assert {r["status"] for r in ours} == {404} and {r["status"] for r in baseline} == {200}, (ours, baseline)
    ms, base_ms = (statistics.median(r["seconds"] for r in rs) * 1000 for rs in (ours, baseline))
    first, base_first = (statistics.median(r["first"] for r in rs) * 1000 for rs in (ours, baseline))
    heavy = sorted({name for r in ours for name in r["heavy"]})
    return (
        f"BENCH api_cold_start ms={ms:.0f} baseline_ms={base_ms:.0f} ratio={ms / base_ms:.2f} "
        f"first_request_ms={first:.0f} baseline_first_request_ms={base_first:.0f} "
        f"ms_compiling_every_module={statistics.median(without) * 1000:.0f} "
        f"runs={runs} heavy_modules={','.join(heavy) or 'none'}"
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
