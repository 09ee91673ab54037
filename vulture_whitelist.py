"""Names vulture cannot see being used: frameworks call them by convention or by registration.

`make lint` runs vulture over shared/impex and functions with this file; anything else it reports is
dead code to remove, not to add here. Each entry says who uses it.
"""

# Powertools event handler: routes and exception handlers are registered by their decorators.
openapi
docs
domain_error
invalid_request
not_json
unreadable_form
key_reused
key_in_flight
no_route
unexpected
list_datasets
get_dataset
delete_dataset
process_jobs
job_status
create_import
create_export

# pydantic: configuration, validators and serializers are found on the class; fields are set by
# keyword (ProcessResult.success, ImportResult.rows_total) and read through model_dump.
model_config
_._drop_none
_._one_mapping
_._plain_file_name
_._name_is_usable
_._constraints_fit_type
_._fields_and_keys_agree
_._options_of_its_type
_._external_tables_parse
success
rows_total

# RE2's options object reads the attributes set on it.
_.log_errors

# Enum members looked up by value (Priority("high"), a request's "priority").
HIGH
LOW

# io.RawIOBase: the buffered readers and writers call these.
_.readable
_.readinto
_.writable

# The context manager protocol's third argument (BulkAllocations.__exit__).
trace

# The Lambda context interface the local runtime hands to handlers.
memory_limit_in_mb
aws_request_id
function_version
log_stream_name
_.invoked_function_arn

# http.server: the local gateway's request handler and server attributes it reads by name.
_.daemon_threads
protocol_version
disable_nagle_algorithm
_.log_message
do_DELETE
do_GET
do_HEAD
do_TRACE
do_OPTIONS
do_PATCH
do_POST
do_PUT

# signal handlers receive (signum, frame).
frame
signum

# The local template's intrinsic functions, dispatched by name (getattr(self, "_fn_" + name)).
_._fn_Ref
_._fn_Condition
_._fn_GetAtt
_._fn_Join
_._fn_Split
_._fn_Select
_._fn_Equals
_._fn_Not
_._fn_If
_._fn_Sub

# expat calls the handlers set as its parser's attributes.
_.StartElementHandler
_.EndElementHandler
_.CharacterDataHandler

# socketserver reads the listen backlog from the class attribute.
_.request_queue_size
# pydantic runs the validator.
_._progress_of_its_chunks
