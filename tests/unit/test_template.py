"""Invariants of template.yaml that the deployment relies on."""

from typing import Any

import pytest

from impex.jobs.store import ACTIVE_BY_TENANT_INDEX, ACTIVE_INDEX, TENANT_INDEX
from impex.local.template import load_template
from impex.pipelines.fanout import CHUNK_RETENTION_DAYS
from tests.conftest import ROOT

TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}


def of_type(kind: str) -> dict[str, Any]:
    return {k: v for k, v in RESOURCES.items() if v["Type"] == kind}


def test_globals_set_runtime_architecture_tracing_and_powertools():
    function_globals = TEMPLATE["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Tracing"] == "Active"
    variables = function_globals["Environment"]["Variables"]
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"} <= set(
        variables
    )


def test_the_four_functions_are_wired():
    assert set(FUNCTIONS) == {"ApiFunction", "ImporterFunction", "ExporterFunction", "SweeperFunction"}
    for name, spec in FUNCTIONS.items():
        assert spec["Properties"]["Handler"] == "app.lambda_handler"
        assert (ROOT / spec["Properties"]["CodeUri"] / "app.py").is_file(), name
    assert FUNCTIONS["SweeperFunction"]["Properties"]["Events"]["EveryMinute"]["Type"] == "Schedule"


def test_heavy_libraries_stay_out_of_the_api_function():
    api_layers = FUNCTIONS["ApiFunction"]["Properties"].get(
        "Layers", TEMPLATE["Globals"]["Function"]["Layers"]
    )
    assert {"Ref": "DataDependenciesLayer"} not in api_layers
    core = (ROOT / "layers/core/requirements.txt").read_text()
    assert "pyarrow" not in core
    assert "pyarrow" in (ROOT / "layers/data/requirements.txt").read_text()


@pytest.mark.parametrize(
    "queue",
    ["ImportQueue", "ImportHighQueue", "ImportLowQueue", "ExportQueue", "ExportHighQueue", "ExportLowQueue"],
)
def test_work_queues_have_a_dead_letter_queue_and_a_long_enough_visibility(queue):
    properties = RESOURCES[queue]["Properties"]
    redrive = properties["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"]["Fn::GetAtt"][0] in of_type("AWS::SQS::Queue")
    assert 1 < redrive["maxReceiveCount"] <= 10
    consumer = next(
        spec
        for spec in FUNCTIONS.values()
        for event in spec["Properties"].get("Events", {}).values()
        if event["Type"] == "SQS" and event["Properties"]["Queue"] == {"Fn::GetAtt": [queue, "Arn"]}
    )
    assert properties["VisibilityTimeout"] >= 6 * consumer["Properties"]["Timeout"]
    sqs_event = next(
        e
        for e in consumer["Properties"]["Events"].values()
        if e["Type"] == "SQS" and e["Properties"]["Queue"] == {"Fn::GetAtt": [queue, "Arn"]}
    )
    assert sqs_event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_every_dead_letter_queue_and_function_has_an_alarm():
    alarmed = set()
    for alarm in of_type("AWS::CloudWatch::Alarm").values():
        for dimension in alarm["Properties"]["Dimensions"]:
            value = dimension["Value"]
            if isinstance(value, dict):
                alarmed.add(value.get("Ref") or value.get("Fn::GetAtt", [None])[0])
    assert {"ImportDeadLetterQueue", "ExportDeadLetterQueue"} <= alarmed
    assert set(FUNCTIONS) <= alarmed
    stuck = [
        a for a in of_type("AWS::CloudWatch::Alarm").values() if a["Properties"]["MetricName"] == "StuckJobs"
    ]
    assert stuck, "no alarm on stuck jobs"


def test_the_bucket_blocks_public_access_encrypts_and_requires_tls():
    bucket = RESOURCES["FilesBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    prefixes = {rule.get("Prefix") for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert {"uploads/", "incoming/", "exports/", "errors/"} <= prefixes
    notified = {
        n["Filter"]["S3Key"]["Rules"][0]["Value"]
        for n in bucket["NotificationConfiguration"]["QueueConfigurations"]
    }
    assert notified == {"uploads/", "incoming/"}
    statements = RESOURCES["FilesBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false" for s in statements
    )


def _statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for policy in function["Properties"].get("Policies", []):
        if "Fn::If" in policy:
            policy = policy["Fn::If"][1]
        found.extend(policy.get("Statement", []))
    return found


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_policies_name_exact_resources(name):
    statements = _statements(FUNCTIONS[name])
    assert statements
    for statement in statements:
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        assert "*" not in resources
        for action in statement["Action"]:
            assert not action.endswith(":*")


def test_the_jobs_table_has_the_indexes_and_ttl_the_store_uses():
    table = RESOURCES["JobsTable"]["Properties"]
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {
        TENANT_INDEX,
        ACTIVE_INDEX,
        ACTIVE_BY_TENANT_INDEX,
    }
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}


def test_the_http_api_requires_a_jwt_except_for_the_spec():
    auth = RESOURCES["HttpApi"]["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "JwtAuthorizer"
    config = auth["Authorizers"]["JwtAuthorizer"]["JwtConfiguration"]
    assert config == {"issuer": {"Ref": "JwtIssuer"}, "audience": {"Ref": "JwtAudience"}}
    events = FUNCTIONS["ApiFunction"]["Properties"]["Events"]
    public = {e["Properties"]["Path"] for e in events.values() if e["Properties"].get("Auth")}
    assert public == {"/api/import-export/openapi.json", "/api/import-export/docs"}


def test_the_api_code_path_imports_no_heavy_library():
    # The api function ships without the data layer: its imports must not need pyarrow and friends.
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "for name in ('pyarrow', 'python_calamine', 'openpyxl', 'xlsxwriter'):\n"
        "    sys.modules[name] = None\n"
        "import impex.wiring, impex.api.app, impex.pipelines.sweeper, impex.pipelines.importer\n"
        "import impex.pipelines.exporter, impex.formats.writers, impex.formats.source\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert result.stdout.strip() == "ok", result.stderr


def test_every_function_has_a_log_group_with_the_retention_parameter():
    groups = of_type("AWS::Logs::LogGroup")
    named = {g["Properties"].get("LogGroupName", {}).get("Fn::Sub"): g for g in groups.values()}
    for function in FUNCTIONS:
        group = named.get(f"/aws/lambda/${{{function}}}")
        assert group is not None, f"{function} has no log group: Lambda's own keeps logs for ever"
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert RESOURCES["ApiAccessLogs"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_api_stage_is_throttled_by_parameters():
    settings = RESOURCES["HttpApi"]["Properties"]["DefaultRouteSettings"]
    assert settings == {
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
    }


def test_every_table_has_deletion_protection_on_by_default():
    assert TEMPLATE["Parameters"]["TableDeletionProtection"]["Default"] == "true"
    for name, table in of_type("AWS::DynamoDB::Table").items():
        assert table["Properties"]["DeletionProtectionEnabled"] == {
            "Fn::If": ["ProtectTables", True, False]
        }, name


def test_cors_origins_are_a_required_parameter_that_refuses_a_wildcard():
    import re

    parameter = TEMPLATE["Parameters"]["CorsAllowedOrigins"]
    assert "Default" not in parameter
    allowed = re.compile(parameter["AllowedPattern"])
    assert allowed.fullmatch("https://app.example.com,http://localhost:5173")
    for refused in ("*", "https://*.example.com", "", "app.example.com", "https://a.com, https://b.com"):
        assert not allowed.fullmatch(refused), refused
    origins = {"Fn::Split": [",", {"Ref": "CorsAllowedOrigins"}]}
    assert RESOURCES["HttpApi"]["Properties"]["CorsConfiguration"]["AllowOrigins"] == origins
    assert (
        RESOURCES["FilesBucket"]["Properties"]["CorsConfiguration"]["CorsRules"][0]["AllowedOrigins"]
        == origins
    )


def test_cloudwatch_can_publish_to_the_encrypted_alarm_topic():
    topic = RESOURCES["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}  # not alias/aws/sns: CloudWatch cannot use it
    key = RESOURCES["AlarmTopicKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    cloudwatch = [
        statement
        for statement in key["KeyPolicy"]["Statement"]
        if statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert len(cloudwatch) == 1 and set(cloudwatch[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert cloudwatch[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    [policy] = of_type("AWS::SNS::TopicPolicy").values()
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert (
        statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        and statement["Action"] == "sns:Publish"
    )
    for alarm in of_type("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_a_failed_imports_chunk_files_are_kept_as_long_as_its_retry_says():
    # Given the lifecycle rule that expires a fanned-out import's chunk files
    rules = RESOURCES["FilesBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    chunk_rule = next(rule for rule in rules if rule.get("Prefix") == "chunks/")
    # Then the days a retry's message names are the rule's
    assert chunk_rule["ExpirationInDays"] == CHUNK_RETENTION_DAYS
