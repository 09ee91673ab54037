"""The local stack: moto server for AWS, template.yaml's resources, and a small Lambda runtime that
delivers API requests, SQS batches and schedule ticks to the very handlers that run on Lambda."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import socket
import threading
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import boto3

from impex.local.auth import LOCAL_AUDIENCE, LOCAL_ISSUER, LocalIssuer, impex_home
from impex.local.context import LocalLambdaContext
from impex.local.gateway import LocalGateway, Route
from impex.local.moto_fixes import make_moto_dynamodb_faithful
from impex.local.sandbox import SandboxPool, load_handler
from impex.local.template import ACCOUNT_ID, REGION, LocalStack, load_template, project_root

log = logging.getLogger("impex.local")
API_PREFIX = "/api/import-export"
DEFAULT_API_PORT = 3000
DEFAULT_AWS_PORT = 4750


class PortInUse(Exception):
    """A port the local stack needs is taken: the message names it and the variable that moves it."""


def check_port_free(port: int, variable: str) -> None:
    """Raise PortInUse now, rather than let a server thread fail to bind and the stack wait for ever."""
    if port == 0:
        return  # any free port
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind(("127.0.0.1", port))
    except OSError as error:
        raise PortInUse(
            f"port {port} on 127.0.0.1 is in use ({error.strerror}); set {variable} to a free port, or to 0 "
            "for any free port (the stack prints the one it gets)"
        ) from None
    finally:
        probe.close()


class LocalSettingError(ValueError):
    """An IMPEX_LOCAL_* variable that cannot be used: the message names it and what it takes."""


def _number(name: str, default: str, kind: type[int] | type[float]) -> Any:
    text = os.environ.get(name, default)
    try:
        return kind(text)
    except ValueError:
        shown = "a whole number" if kind is int else "a number"
        raise LocalSettingError(f"{name} is {text!r}: use {shown}") from None


@dataclass
class LocalConfig:
    """Ports and folders of a local stack (IMPEX_LOCAL_* environment variables)."""

    api_port: int = field(default_factory=lambda: _number("IMPEX_LOCAL_PORT", str(DEFAULT_API_PORT), int))
    # Not 4566: that is LocalStack's port, taken on many developers' machines.
    aws_port: int = field(default_factory=lambda: _number("IMPEX_LOCAL_AWS_PORT", str(DEFAULT_AWS_PORT), int))
    home: Path = field(default_factory=impex_home)
    # Invocations each SQS event source runs at once (at most the template's MaximumConcurrency):
    # a fanned-out import's chunks run in parallel, as on Lambda.
    concurrency: int = field(default_factory=lambda: _number("IMPEX_LOCAL_CONCURRENCY", "4", int))
    # "threads": every function in this process; "processes": the workers in sandboxes of their own
    # (impex.local.sandbox), in parallel and killable, as Lambda runs them.
    workers: Literal["threads", "processes"] = field(default_factory=lambda: _workers_mode())
    sweep_seconds: float | None = field(
        default_factory=lambda: (
            _number("IMPEX_LOCAL_SWEEP_SECONDS", "", float)
            if "IMPEX_LOCAL_SWEEP_SECONDS" in os.environ
            else None
        )
    )


def _workers_mode() -> Literal["threads", "processes"]:
    mode = os.environ.get("IMPEX_LOCAL_WORKERS", "threads")
    if mode not in ("threads", "processes"):
        raise LocalSettingError(f"IMPEX_LOCAL_WORKERS is {mode!r}: use threads or processes")
    return mode  # type: ignore[return-value]


@dataclass
class LocalFunction:
    """A function with its template settings, run in this process (threads) or in sandboxes."""

    logical_id: str
    timeout: float
    memory: int
    module: ModuleType | None = None
    sandboxes: SandboxPool | None = None

    def invoke(self, event: dict[str, Any], pool: ThreadPoolExecutor) -> tuple[bool, Any]:
        """(finished in time, result): a handler that overruns its Timeout times out, as on Lambda."""
        if self.sandboxes is not None:
            return self.sandboxes.invoke(event, self.timeout, self.memory)
        assert self.module is not None
        context = LocalLambdaContext(
            f"impex-{self.logical_id}", timeout_seconds=self.timeout, memory_limit_in_mb=self.memory
        )
        future = pool.submit(self.module.lambda_handler, event, context)
        try:
            return True, future.result(timeout=self.timeout)
        except FutureTimeout:
            log.error("%s: Task timed out after %.2f seconds", self.logical_id, self.timeout)
            return False, None
        except Exception:
            log.exception("%s: the invocation failed", self.logical_id)
            return False, None


class LocalImpex:
    """Everything impex needs, on 127.0.0.1, started and stopped as one."""

    def __init__(self, config: LocalConfig | None = None) -> None:
        self.config = config or LocalConfig()
        self.template = load_template(project_root() / "template.yaml")
        self.issuer = LocalIssuer(self.config.home)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="lambda")
        self.functions: dict[str, LocalFunction] = {}
        self.stack: LocalStack | None = None
        self._moto: Any = None
        self.gateway: LocalGateway | None = None

    # ---- lifecycle ---------------------------------------------------------------------------------

    @property
    def aws_endpoint(self) -> str:
        host, port = self._moto.get_host_and_port()
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        assert self.gateway is not None
        return f"http://127.0.0.1:{self.gateway.port}{API_PREFIX}"

    def start(self) -> LocalImpex:
        """Start moto, create the template's resources, load the functions and start delivering events;
        raise PortInUse at once if a port is taken (and stop whatever had started on any failure)."""
        check_port_free(self.config.aws_port, "IMPEX_LOCAL_AWS_PORT")
        check_port_free(self.config.api_port, "IMPEX_LOCAL_PORT")
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalImpex:
        from moto.server import ThreadedMotoServer

        make_moto_dynamodb_faithful()
        # Locally nothing collects metrics; Powertools would warn on every invocation that published none.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.config.aws_port, verbose=False)
        self._moto.start()
        self._environment()
        self.stack = LocalStack(
            self.template,
            stack_name="impex-local",
            parameters={
                "JwtIssuer": LOCAL_ISSUER,
                "JwtAudience": LOCAL_AUDIENCE,
                "CorsAllowedOrigins": "http://127.0.0.1,http://localhost",
                "LogLevel": os.environ.get("IMPEX_LOCAL_LOG_LEVEL", "WARNING"),
                **template_parameters(os.environ.get("IMPEX_LOCAL_PARAMETERS", "")),
            },
        ).create(boto3.Session(), endpoint_url=self.aws_endpoint)
        for logical_id in self.stack.resources("AWS::Serverless::Function"):
            spec = self.stack.function(logical_id)
            os.environ.update(spec.environment)
        os.environ["S3_ADDRESSING_STYLE"] = "path"
        from impex.aws import clients

        clients.reset()
        # The sandbox listing is this stack's: a file left by one that was killed names a process
        # that is not a sandbox any more (its id may even be another process's by now).
        shutil.rmtree(self.config.home / "sandboxes", ignore_errors=True)
        for logical_id in self.stack.resources("AWS::Serverless::Function"):
            self.functions[logical_id] = self._load(logical_id)
        self._start_gateway()
        self._start_event_sources()
        return self

    def stop(self) -> None:
        """Stop every thread and server this stack started, and release the ports."""
        self._stop.set()
        if self.gateway is not None:
            self.gateway.stop()
        for function in self.functions.values():  # first: a poller waiting on a sandbox is let go
            if function.sandboxes is not None:
                function.sandboxes.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._moto is not None:
            self._moto.stop()

    def __enter__(self) -> LocalImpex:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _environment(self) -> None:
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "impex-local",
                "AWS_SECRET_ACCESS_KEY": "impex-local",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL": self.aws_endpoint,
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_SERVICE_NAME": "impex",
                "POWERTOOLS_METRICS_NAMESPACE": "Impex",
                "POWERTOOLS_METRICS_DISABLED": "true",
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        os.environ.pop("AWS_SESSION_TOKEN", None)

    def _load(self, logical_id: str) -> LocalFunction:
        assert self.stack is not None
        spec = self.stack.function(logical_id)
        path = project_root() / spec.code_uri / "app.py"
        function = LocalFunction(logical_id, float(spec.timeout), spec.memory_size)
        if self.config.workers == "processes" and self._is_worker(logical_id):
            function.sandboxes = SandboxPool(logical_id, path, self.config.home / "sandboxes" / logical_id)
        else:
            function.module = load_handler(logical_id, path)
        return function

    def _is_worker(self, logical_id: str) -> bool:
        """A function an SQS queue drives (the importer and the exporter)."""
        events = self.template["Resources"][logical_id]["Properties"].get("Events", {})
        return any(event["Type"] == "SQS" for event in events.values())

    # ---- API Gateway -------------------------------------------------------------------------------

    def _start_gateway(self) -> None:
        routes: list[Route] = []
        api_function = ""
        for logical_id, function in self.functions.items():
            for event in self.template["Resources"][logical_id]["Properties"].get("Events", {}).values():
                if event["Type"] != "HttpApi":
                    continue
                properties = event["Properties"]
                authorized = properties.get("Auth", {}).get("Authorizer") != "NONE"
                routes.append(Route(properties["Method"].upper(), properties["Path"], authorized))
                api_function = function.logical_id

        def invoke(event: dict[str, Any]) -> dict[str, Any]:
            finished, result = self.functions[api_function].invoke(event, self._pool)
            if not finished:
                return {
                    "statusCode": 503 if result is None else 500,
                    "body": json.dumps({"message": "Service Unavailable"}),
                }
            return result if isinstance(result, dict) else {"statusCode": 200, "body": json.dumps(result)}

        assert self.stack is not None
        tenant_claim = self.stack.function(api_function).environment["TENANT_CLAIM"]
        self.gateway = LocalGateway(
            routes, invoke, self.issuer, port=self.config.api_port, tenant_claim=tenant_claim
        )
        self.gateway.start()

    # ---- event sources -----------------------------------------------------------------------------

    def _start_event_sources(self) -> None:
        assert self.stack is not None
        for logical_id in self.functions:
            events = self.template["Resources"][logical_id]["Properties"].get("Events", {})
            for name, event in events.items():
                if event["Type"] == "SQS":
                    queue_id = event["Properties"]["Queue"]["Fn::GetAtt"][0]
                    batch = int(event["Properties"].get("BatchSize", 10))
                    ceiling = event["Properties"].get("ScalingConfig", {}).get("MaximumConcurrency", 1000)
                    for poller in range(max(1, min(int(ceiling), self.config.concurrency))):
                        self._thread(f"sqs-{name}-{poller}", self._poll_queue, logical_id, queue_id, batch)
                elif event["Type"] in ("Schedule", "ScheduleV2"):
                    expression = (
                        event["Properties"].get("Schedule") or event["Properties"]["ScheduleExpression"]
                    )
                    seconds = self.config.sweep_seconds or _rate_seconds(expression)
                    self._thread(f"schedule-{name}", self._tick, logical_id, seconds, name)

    def _thread(self, name: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _poll_queue(self, function_id: str, queue_id: str, batch_size: int) -> None:
        """The SQS event source mapping: receive a batch, invoke, delete what did not fail."""
        assert self.stack is not None
        sqs = boto3.client("sqs", endpoint_url=self.aws_endpoint)
        url = self.stack.physical[queue_id]
        arn = self.stack.get_att(queue_id, "Arn")
        while not self._stop.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=min(batch_size, 10),
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                if self._stop.is_set():
                    return
                raise
            if not messages:
                continue
            records = [_sqs_record(dict(message), arn) for message in messages]
            finished, result = self.functions[function_id].invoke({"Records": records}, self._pool)
            if not finished:
                continue  # every message becomes visible again after the visibility timeout
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )

    def _tick(self, function_id: str, seconds: float, rule: str) -> None:
        """The EventBridge schedule: a Scheduled Event every ``seconds``."""
        while not self._stop.wait(seconds):
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": ACCOUNT_ID,
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": REGION,
                "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/impex-local-{rule}"],
                "detail": {},
            }
            self.functions[function_id].invoke(event, self._pool)


def template_parameters(text: str) -> dict[str, str]:
    """Template parameter overrides from IMPEX_LOCAL_PARAMETERS: ``Name=value`` pairs, comma-separated."""
    parameters = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            raise ValueError(f"IMPEX_LOCAL_PARAMETERS: {pair!r} is not Name=value")
        parameters[name.strip()] = value.strip()
    return parameters


def _rate_seconds(expression: str) -> float:
    found = re.match(r"rate\((\d+) (minute|minutes|second|seconds|hour|hours)\)", expression)
    if not found:
        return 60.0
    unit = found.group(2).rstrip("s")
    return float(found.group(1)) * {"second": 1, "minute": 60, "hour": 3600}[unit]


def _sqs_record(message: dict[str, Any], arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": REGION,
    }
