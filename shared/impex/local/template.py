"""Read template.yaml and create its tables, queues and bucket on any AWS endpoint (moto, locally).

The tests and the local stack build resources from here, so they cannot drift from what deploys.
Only the intrinsic functions the template uses are resolved; anything else raises.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml

if TYPE_CHECKING:
    import boto3

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
_NO_VALUE = object()


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation short tags (!Ref, !Sub...) into their long form."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(cast(yaml.MappingNode, node), deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    if suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template."""
    with path.open(encoding="utf-8") as handle:
        return cast(dict[str, Any], yaml.load(handle, Loader=_CfnLoader))  # noqa: S506 - SafeLoader subclass


def project_root() -> Path:
    """The repository root (where template.yaml lives)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "template.yaml").is_file():
            return parent
    raise FileNotFoundError("template.yaml not found above " + str(here))


@dataclass
class FunctionSpec:
    """What the template says about one function, with intrinsics resolved."""

    logical_id: str
    code_uri: str
    handler: str
    timeout: int
    memory_size: int
    environment: dict[str, str]
    events: dict[str, Any]


@dataclass
class LocalStack:
    """Resources of template.yaml created through one boto3 session, with their physical names."""

    template: dict[str, Any]
    stack_name: str = "impex-local"
    parameters: dict[str, str] = field(default_factory=dict)
    physical: dict[str, str] = field(default_factory=dict)
    stack_uuid: str = field(default_factory=lambda: str(uuid.uuid4()))

    # --- intrinsic resolution ----------------------------------------------------------------------

    def pseudo(self, name: str) -> Any:
        """CloudFormation pseudo parameters, as seen locally."""
        stack_arn_prefix = f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack"
        values = {
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"{stack_arn_prefix}/{self.stack_name}/{self.stack_uuid}",
            "AWS::NoValue": _NO_VALUE,
        }
        return values[name]

    def parameter(self, name: str) -> Any:
        spec = self.template.get("Parameters", {})[name]
        raw = self.parameters.get(name, spec.get("Default"))
        if raw is None:
            raise KeyError(f"parameter {name} has no default; pass it to LocalStack(parameters=...)")
        text = str(raw)
        return text.split(",") if spec["Type"] == "CommaDelimitedList" else text

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.template.get("Parameters", {}):
            return self.parameter(name)
        if name in self.physical:
            return self.physical[name]
        raise KeyError(f"Ref {name}: resource not created locally")

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.template["Resources"][logical_id]["Type"]
        name = self.physical_name(logical_id)
        if kind == "AWS::SQS::Queue":
            return {"Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}", "QueueName": name}[attribute]
        if kind == "AWS::DynamoDB::Table" and attribute == "Arn":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:aws:s3:::{name}"
        if kind == "AWS::Events::EventBus" and attribute in ("Arn", "Name"):
            return f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/{name}" if attribute == "Arn" else name
        if kind == "AWS::Events::Rule" and attribute == "Arn":
            bus = self.resolve(
                self.template["Resources"][logical_id]["Properties"].get("EventBusName", "default")
            )
            return f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{bus}/{name}"
        raise KeyError(f"GetAtt {logical_id}.{attribute} is not supported locally")

    def physical_name(self, logical_id: str) -> str:
        """The name a resource gets locally: its explicit name if the template sets one."""
        props = self.template["Resources"][logical_id].get("Properties", {})
        for name_key in ("BucketName", "TableName", "QueueName", "Name"):
            if name_key in props:
                return str(self.resolve(props[name_key]))
        return f"{self.stack_name}-{logical_id}"

    def resolve(self, node: Any) -> Any:
        """Resolve the intrinsic functions in ``node``."""
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            handler = getattr(self, "_fn_" + key.replace("Fn::", "").replace("::", "_"), None)
            if key in {"Ref", "Condition"} or key.startswith("Fn::"):
                if handler is None:
                    raise KeyError(f"intrinsic {key} is not supported locally")
                return handler(value)
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _fn_Ref(self, value: str) -> Any:
        return self.ref(value)

    def _fn_Condition(self, value: str) -> bool:
        return self.condition(value)

    def _fn_GetAtt(self, value: list[str]) -> str:
        return self.get_att(value[0], value[1])

    def _fn_Join(self, value: list[Any]) -> str:
        delimiter, items = value
        return str(delimiter).join(str(i) for i in self.resolve(items))

    def _fn_Split(self, value: list[Any]) -> list[str]:
        delimiter, text = value
        return str(self.resolve(text)).split(delimiter)

    def _fn_Select(self, value: list[Any]) -> Any:
        index, items = value
        return self.resolve(items)[int(self.resolve(index))]

    def _fn_Equals(self, value: list[Any]) -> bool:
        left, right = (self.resolve(v) for v in value)
        return bool(left == right)

    def _fn_Not(self, value: list[Any]) -> bool:
        return not self.resolve(value[0])

    def _fn_If(self, value: list[Any]) -> Any:
        name, when_true, when_false = value
        return self.resolve(when_true if self.condition(name) else when_false)

    def _fn_Sub(self, value: Any) -> str:
        text, variables = (value, {}) if isinstance(value, str) else (value[0], value[1])
        local = {k: self.resolve(v) for k, v in variables.items()}
        out, rest = [], text
        while "${" in rest:
            before, _, after = rest.partition("${")
            name, _, rest = after.partition("}")
            out.append(before)
            if name in local:
                out.append(str(local[name]))
            elif "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                out.append(self.get_att(logical_id, attribute))
            else:
                out.append(str(self.ref(name)))
        out.append(rest)
        return "".join(out)

    # --- resources ---------------------------------------------------------------------------------

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        """The template's resources of one CloudFormation type, by logical id."""
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == kind}

    def create(self, session: boto3.session.Session, endpoint_url: str | None = None) -> LocalStack:
        """Create every queue, table and bucket of the template (in dependency order)."""
        sqs = session.client("sqs", endpoint_url=endpoint_url)
        dynamodb = session.client("dynamodb", endpoint_url=endpoint_url)
        s3 = session.client("s3", endpoint_url=endpoint_url)
        queues = self.resources("AWS::SQS::Queue")
        # Dead-letter queues first: the others' redrive policies point at them.
        for logical_id in sorted(queues, key=lambda q: "RedrivePolicy" in queues[q].get("Properties", {})):
            self._create_queue(sqs, logical_id, queues[logical_id].get("Properties", {}))
        for logical_id, spec in self.resources("AWS::DynamoDB::Table").items():
            self._create_table(dynamodb, logical_id, spec["Properties"])
        for logical_id, spec in self.resources("AWS::S3::Bucket").items():
            self._create_bucket(s3, logical_id, spec.get("Properties", {}))
        events = session.client("events", endpoint_url=endpoint_url)
        for logical_id in self.resources("AWS::Events::EventBus"):
            name = self.physical_name(logical_id)
            events.create_event_bus(Name=name)
            self.physical[logical_id] = name
        for logical_id, spec in self.resources("AWS::Events::Rule").items():
            self._create_rule(events, logical_id, spec["Properties"])
        return self

    def _create_rule(self, events: Any, logical_id: str, props: Mapping[str, Any]) -> None:
        props = self.resolve(dict(props))
        name = self.physical_name(logical_id)
        bus = props.get("EventBusName", "default")
        events.put_rule(
            Name=name,
            EventBusName=bus,
            EventPattern=json.dumps(props["EventPattern"]),
            State=props.get("State", "ENABLED"),
        )
        events.put_targets(
            Rule=name,
            EventBusName=bus,
            Targets=[{"Id": t["Id"], "Arn": t["Arn"]} for t in props.get("Targets", [])],
        )
        self.physical[logical_id] = name

    def _create_queue(self, sqs: Any, logical_id: str, props: Mapping[str, Any]) -> None:
        props = self.resolve(dict(props))
        attributes = {}
        for key in (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "ReceiveMessageWaitTimeSeconds",
        ):
            if key in props:
                attributes[key] = str(props[key])
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        name = self.physical_name(logical_id)
        self.physical[logical_id] = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]

    def _create_table(self, dynamodb: Any, logical_id: str, props: Mapping[str, Any]) -> None:
        props = self.resolve(dict(props))
        name = self.physical_name(logical_id)
        request: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            request["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        dynamodb.create_table(**request)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        self.physical[logical_id] = name

    def _create_bucket(self, s3: Any, logical_id: str, props: Mapping[str, Any]) -> None:
        name = self.physical_name(logical_id)
        s3.create_bucket(Bucket=name)
        self.physical[logical_id] = name
        props = self.resolve(dict(props))
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if "BucketEncryption" in props:
            rules = [
                {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "CorsConfiguration" in props:
            cors_rules = [
                {("MaxAgeSeconds" if k == "MaxAge" else k): v for k, v in rule.items()}
                for rule in props["CorsConfiguration"]["CorsRules"]
            ]
            s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": cors_rules})
        notifications = props.get("NotificationConfiguration", {}).get("QueueConfigurations", [])
        if notifications:
            s3.put_bucket_notification_configuration(
                Bucket=name,
                NotificationConfiguration={
                    "QueueConfigurations": [
                        {
                            "QueueArn": n["Queue"],
                            "Events": [n["Event"]],
                            "Filter": {"Key": {"FilterRules": n["Filter"]["S3Key"]["Rules"]}},
                        }
                        for n in notifications
                    ]
                },
            )

    # --- functions ---------------------------------------------------------------------------------

    def function(self, logical_id: str) -> FunctionSpec:
        """A function's handler, limits, resolved environment and events (globals applied)."""
        globals_ = self.template.get("Globals", {}).get("Function", {})
        props = self.template["Resources"][logical_id]["Properties"]
        env = {
            **globals_.get("Environment", {}).get("Variables", {}),
            **props.get("Environment", {}).get("Variables", {}),
        }
        return FunctionSpec(
            logical_id=logical_id,
            code_uri=props["CodeUri"],
            handler=props["Handler"],
            timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
            memory_size=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
            environment={k: str(v) for k, v in self.resolve(env).items()},
            events=props.get("Events", {}),
        )
