"""impex exporter: export job messages from the export queue."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from impex import wiring
from impex.observability import logger, metrics, tracer

# A failed record goes back to the queue (and, after maxReceiveCount, to the DLQ) without failing the
# invocation, so one poison message never hides the outcome of the others.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
trigger = wiring.export_trigger()  # settings come from the environment, validated at cold start


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=trigger.handle_record, processor=processor, context=context
    )
