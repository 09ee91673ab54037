"""impex sweeper: runs on an EventBridge schedule."""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from impex import wiring
from impex.observability import logger, metrics, tracer

sweeper = wiring.scheduled_sweeper()  # settings come from the environment, validated at cold start


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    return sweeper.sweep(now=event.time).as_dict()
