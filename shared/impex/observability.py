"""Powertools Logger, Tracer and Metrics shared by every function (service name from POWERTOOLS_*)."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
