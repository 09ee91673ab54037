"""impex: serverless bulk import/export jobs for DynamoDB-backed apps."""

__version__ = "0.1.0"
