"""Thin adapters around boto3. Endpoints come from boto3's own AWS_ENDPOINT_URL* variables."""
