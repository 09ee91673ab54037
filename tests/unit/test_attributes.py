"""impex builds and reads DynamoDB's JSON itself (record traffic skips boto3's serializer, issue
#14); on every value both understand, it gives what boto3's TypeSerializer and TypeDeserializer
give."""

from __future__ import annotations

from decimal import Decimal

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impex.aws.attributes import from_attribute, to_attribute

DIFFERENTIAL = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# What DynamoDB holds and both sides take: text, booleans, null, integers and decimals within
# DynamoDB's 38 significant digits, and maps and lists of them (boto3 refuses floats and sets of
# mixed types; impex writes datetimes as text before this point).
scalars = st.one_of(
    st.text(max_size=20),
    st.booleans(),
    st.none(),
    st.integers(min_value=-(10**37), max_value=10**37),
    st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-(10**20), max_value=10**20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=4),
    ),
    max_leaves=12,
)


@DIFFERENTIAL
@given(value=values)
def test_impex_serialises_a_value_as_boto3_does(value):
    # Given any value DynamoDB holds
    # When impex and boto3 each make its DynamoDB JSON
    # Then the attribute values are the same
    assert to_attribute(value) == TypeSerializer().serialize(value)


@DIFFERENTIAL
@given(value=values)
def test_impex_reads_an_attribute_back_as_boto3_does(value):
    # Given the DynamoDB JSON boto3 makes of a value
    attribute = TypeSerializer().serialize(value)
    # When impex and boto3 each read it back
    # Then they give the same value (numbers as Decimal, on both sides)
    assert from_attribute(attribute) == TypeDeserializer().deserialize(attribute)


def test_numbers_keep_every_digit():
    # Given a decimal at DynamoDB's 38 significant digits
    value = Decimal("1234567890123456789012345678.9012345678")
    # When it goes to DynamoDB JSON and back
    # Then not a digit is lost (no float in between)
    assert to_attribute(value) == {"N": "1234567890123456789012345678.9012345678"}
    assert from_attribute(to_attribute(value)) == value
