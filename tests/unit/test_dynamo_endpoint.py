"""The lean DynamoDB client finds its endpoint without botocore's service model where that is plain,
and gives way to botocore's endpoint rules everywhere else."""

from __future__ import annotations

import boto3
import pytest
from botocore.credentials import Credentials, EnvProvider
from botocore.exceptions import PartialCredentialsError

from impex.aws.dynamo_http import environment_credentials, raw_client_from_environment

COMMERCIAL = [
    "us-east-1",
    "us-west-2",
    "eu-west-3",
    "eu-central-2",
    "ap-southeast-2",
    "ap-northeast-3",
    "sa-east-1",
    "ca-west-1",
    "me-central-1",
    "af-south-1",
    "il-central-1",
    "mx-central-1",
]


@pytest.fixture
def environment(monkeypatch):
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_USE_FIPS_ENDPOINT",
        "AWS_USE_DUALSTACK_ENDPOINT",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return monkeypatch


@pytest.mark.parametrize("region", COMMERCIAL)
def test_a_commercial_region_gets_the_endpoint_botocore_resolves(environment, region):
    # Given a Lambda's region and no endpoint override
    environment.setenv("AWS_REGION", region)
    # When the lean client is made from the environment
    lean = raw_client_from_environment(boto3.Session())
    # Then it calls the very endpoint botocore's own rules give that region
    assert lean is not None
    assert lean.endpoint_url == boto3.client("dynamodb", region_name=region).meta.endpoint_url


@pytest.mark.parametrize(
    ("region", "setting"),
    [
        ("cn-north-1", None),
        ("us-gov-west-1", None),
        ("us-iso-east-1", None),
        ("eu-isoe-west-1", None),
        ("us-east-1", "AWS_USE_FIPS_ENDPOINT"),
        ("us-east-1", "AWS_USE_DUALSTACK_ENDPOINT"),
    ],
)
def test_other_partitions_and_endpoint_variants_are_left_to_botocore(environment, region, setting):
    # Given a region outside the commercial partition, or FIPS / dual-stack asked for
    environment.setenv("AWS_REGION", region)
    if setting:
        environment.setenv(setting, "true")
    # Then the lean client is not made from the environment (botocore's client resolves it instead)
    assert raw_client_from_environment(boto3.Session()) is None


def test_an_endpoint_override_wins_and_the_dynamodb_one_first(environment):
    # Given the general endpoint override (the local stack's), then DynamoDB's own as well
    environment.setenv("AWS_REGION", "cn-north-1")
    environment.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    general = raw_client_from_environment(boto3.Session())
    environment.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:6000")
    specific = raw_client_from_environment(boto3.Session())
    # Then each is called as given, whatever the region
    assert general is not None and general.endpoint_url == "http://127.0.0.1:5000"
    assert specific is not None and specific.endpoint_url == "http://127.0.0.1:6000"


def test_no_region_means_botocore_decides(environment):
    # Given no region anywhere (and no config file)
    environment.setenv("AWS_CONFIG_FILE", "/nonexistent")
    # Then no lean client is made from the environment
    assert raw_client_from_environment(boto3.Session()) is None


@pytest.mark.parametrize(
    "variables",
    [
        {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret"},
        {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token"},
        {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SECURITY_TOKEN": "old"},
        {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": ""},
        {"AWS_ACCESS_KEY_ID": "AKID"},
        {"AWS_SECRET_ACCESS_KEY": "secret"},
        {},
    ],
)
def test_credentials_in_the_environment_are_read_as_botocore_reads_them(environment, variables):
    # Given the environment's credential variables (Lambda sets the role's there)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        environment.delenv(name, raising=False)
    for name, value in variables.items():
        environment.setenv(name, value)
    # When impex and botocore's environment provider read them
    ours = environment_credentials()
    try:
        theirs = EnvProvider().load()
    except PartialCredentialsError:
        # Then half a pair is none to impex, which asks boto3's chain, which raises this very error
        assert ours is None
        return
    # Then both find the same keys and token, or both find none
    if theirs is None:
        assert ours is None
    else:
        frozen = theirs.get_frozen_credentials()
        assert ours == (frozen.access_key, frozen.secret_key, frozen.token)


def test_the_lean_client_signs_with_the_environment_without_asking_boto3(environment, monkeypatch):
    # Given credentials and a region in the environment, and a boto3 that must not be asked
    environment.setenv("AWS_REGION", "eu-west-1")
    environment.setenv("AWS_SESSION_TOKEN", "token")

    def no_session(*args, **kwargs):
        raise AssertionError("boto3 was asked for a session")

    monkeypatch.setattr(boto3, "Session", no_session)
    # When the lean client is made from the environment alone
    lean = raw_client_from_environment()
    # Then it signs with the environment's credentials, for the region's endpoint
    assert lean is not None and lean.endpoint_url == "https://dynamodb.eu-west-1.amazonaws.com"
    assert lean._credentials() == ("testing", "testing", "token")


def test_without_credentials_in_the_environment_the_lean_client_asks_boto3(environment, monkeypatch):
    # Given no credentials in the environment (a profile, SSO, an instance role: boto3's chain)
    environment.setenv("AWS_REGION", "eu-west-1")
    environment.delenv("AWS_ACCESS_KEY_ID")
    environment.delenv("AWS_SECRET_ACCESS_KEY")
    asked = []

    class Chain:
        region_name = "eu-west-1"

        def get_credentials(self):
            asked.append(1)
            return Credentials("FROM-CHAIN", "chain-secret", "chain-token")

    monkeypatch.setattr(boto3, "Session", Chain)
    # When the lean client is made from the environment
    lean = raw_client_from_environment()
    # Then its credentials come from boto3's chain
    assert lean is not None and asked == [1]
    signing = lean._credentials()
    assert (signing.access_key, signing.secret_key, signing.token) == (
        "FROM-CHAIN",
        "chain-secret",
        "chain-token",
    )
