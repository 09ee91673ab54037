"""`impex local serve | demo | token`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from impex.local.auth import LocalIssuer, impex_home
from impex.local.runtime import LocalConfig, LocalImpex, LocalSettingError, PortInUse


def run(args: argparse.Namespace) -> int:
    """Dispatch a `local` subcommand; the exit code (2, with a message, for an unusable setting)."""
    try:
        return _run(args)
    except LocalSettingError as bad:
        print(f"impex local: {bad}", file=sys.stderr, flush=True)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.local_command == "token":
        print(LocalIssuer(impex_home()).token(args.token_tenant))
        return 0
    if args.local_command == "demo":
        from impex.local.demo import run_demo

        return run_demo()
    config = LocalConfig()
    if args.port is not None:
        config.api_port = args.port
    return serve(config, tenant=args.tenant)


def serve(config: LocalConfig, *, tenant: str) -> int:
    """Run the stack in the foreground until Ctrl-C (or SIGTERM); then stop everything it started.
    A taken port ends it at once (exit code 2) with a message naming the port and its variable."""
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        stack = LocalImpex(config).start()
    except PortInUse as busy:
        print(f"impex local: {busy}", file=sys.stderr, flush=True)
        return 2
    try:
        token = stack.issuer.token(tenant)
        bucket = stack.stack.physical["FilesBucket"] if stack.stack else ""
        print(_banner(stack.api_url, stack.aws_endpoint, token, tenant, bucket), flush=True)
        print(
            f"impex local stack ready: api={stack.api_url} aws={stack.aws_endpoint} bucket={bucket}",
            flush=True,
        )
        while not stopped.wait(0.5):  # a timed wait: signals are handled within half a second
            pass
        print("stopping the local stack…", flush=True)
    finally:
        stack.stop()
    return 0


def _banner(api: str, aws: str, token: str, tenant: str, bucket: str) -> str:
    return f"""
impex local stack
  API         {api}
  Swagger UI  {api}/docs
  AWS (moto)  {aws}    credentials: impex-local / impex-local, region us-east-1
  bucket      {bucket}
  tenant      {tenant}   (another: impex local token --tenant NAME)

export IMPEX_URL={api}
export IMPEX_TOKEN={token}

# a dataset, an import through a presigned POST, its status, an export
curl -s -X PUT "$IMPEX_URL/datasets/customers" -H "Authorization: Bearer $IMPEX_TOKEN" \\
     -H 'content-type: application/json' --data @examples/customers.schema.json
curl -s -X POST "$IMPEX_URL/imports" -H "Authorization: Bearer $IMPEX_TOKEN" \\
     -H 'content-type: application/json' -d '{{"dataset": "customers", "fileName": "customers.csv"}}'
#   then POST the file with every field of "upload":
#   curl -F key=… -F policy=… … -F file=@examples/customers.csv UPLOAD_URL
curl -s "$IMPEX_URL/jobs/JOB_ID/status" -H "Authorization: Bearer $IMPEX_TOKEN"
curl -s -X POST "$IMPEX_URL/exports" -H "Authorization: Bearer $IMPEX_TOKEN" \\
     -H 'content-type: application/json' -d '{{"dataset": "customers", "format": "xlsx"}}'

# or drop a file in the bucket: it becomes an import job for tenant {tenant}
AWS_ACCESS_KEY_ID=impex-local AWS_SECRET_ACCESS_KEY=impex-local AWS_DEFAULT_REGION=us-east-1 \\
  aws --endpoint-url {aws} s3 cp examples/customers.csv s3://{bucket}/incoming/{tenant}/customers/

Ctrl-C stops everything.
"""
