"""Settings are validated at cold start; resource names have no silent defaults."""

import pytest
from pydantic import ValidationError

from impex.settings import RECORD_REQUESTS_IN_FLIGHT, ApiSettings
from impex.settings.workers import ImporterSettings

API_ENV = {
    "JOBS_TABLE": "jobs-t",
    "DATASETS_TABLE": "datasets-t",
    "FILES_BUCKET": "files-b",
    "JOB_RETENTION_DAYS": "30",
    "IDEMPOTENCY_TABLE": "idem-t",
    "EXPORT_QUEUE_URL": "https://sqs/q",
    "IMPORT_QUEUE_URL": "https://sqs/i",
    "TENANT_CLAIM": "tenant",
    "MAX_UPLOAD_BYTES": "1000",
    "UPLOAD_URL_TTL_SECONDS": "900",
    "DOWNLOAD_URL_TTL_SECONDS": "900",
    "DEFAULT_RECORD_SHARDS": "10",
    "EVENT_BUS_NAME": "impex-jobs",
    "TENANT_CONCURRENCY": "5",
    "STUCK_AFTER_SECONDS": "300",
    "IMPORT_HIGH_QUEUE_URL": "https://sqs/ih",
    "IMPORT_LOW_QUEUE_URL": "https://sqs/il",
    "EXPORT_HIGH_QUEUE_URL": "https://sqs/eh",
    "EXPORT_LOW_QUEUE_URL": "https://sqs/el",
}


@pytest.fixture
def api_env(monkeypatch):
    for key, value in API_ENV.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


def test_complete_settings_load(api_env):
    settings = ApiSettings.from_environment()
    assert settings.jobs_table == "jobs-t"
    assert settings.external_tables() == {}


@pytest.mark.parametrize("missing", ["JOBS_TABLE", "FILES_BUCKET", "IDEMPOTENCY_TABLE", "EXPORT_QUEUE_URL"])
def test_a_missing_resource_name_fails_at_cold_start(api_env, missing):
    api_env.delenv(missing)
    with pytest.raises(ValidationError) as raised:
        ApiSettings.from_environment()
    assert missing.lower() in str(raised.value)


def test_url_lifetimes_above_fifteen_minutes_are_refused(api_env):
    api_env.setenv("UPLOAD_URL_TTL_SECONDS", "3600")
    with pytest.raises(ValidationError):
        ApiSettings.from_environment()


def test_the_external_table_allow_list_parses(api_env):
    api_env.setenv(
        "EXTERNAL_TABLE_ARNS",
        "arn:aws:dynamodb:us-east-1:1:table/orders,arn:aws:dynamodb:us-east-1:1:table/u",
    )
    api_env.setenv("EXTERNAL_TABLE_KEYS", "tenantId/orderId,userId")
    tables = ApiSettings.from_environment().external_tables()
    assert tables["orders"].key_names == ["tenantId", "orderId"]
    assert tables["u"].key_names == ["userId"]


def test_a_mismatched_allow_list_is_refused(api_env):
    api_env.setenv("EXTERNAL_TABLE_ARNS", "arn:aws:dynamodb:us-east-1:1:table/orders")
    with pytest.raises(ValidationError):
        ApiSettings.from_environment()


def test_each_function_has_its_own_requirements(monkeypatch):
    for key, value in API_ENV.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError) as raised:
        ImporterSettings.from_environment()
    assert "records_table" in str(raised.value)


def test_values_are_parsed_from_the_environment_text_and_keywords_come_first(api_env):
    # Given the importer's variables as text, among them a number, a boolean and a decimal
    api_env.setenv("RECORDS_TABLE", "records-t")
    api_env.setenv("BATCH_ROWS", "250")
    api_env.setenv("COLUMNAR_CONVERSION", "false")
    api_env.setenv("RETRY_BASE_SECONDS", "0.5")
    # When the settings are read, one of them also given as a keyword
    settings = ImporterSettings.from_environment(batch_rows=10)
    # Then each is typed from its text, the keyword wins, and unset ones take their defaults
    assert settings.records_table == "records-t"
    assert settings.columnar_conversion is False and settings.retry_base_seconds == 0.5
    assert settings.batch_rows == 10
    assert ImporterSettings.from_environment().batch_rows == 250
    assert settings.max_columns == 1000 and settings.xlsx_memory_budget_bytes is None


def test_a_variable_that_is_not_its_fields_type_is_refused_naming_it(api_env):
    api_env.setenv("RECORDS_TABLE", "records-t")
    api_env.setenv("BATCH_ROWS", "many")
    with pytest.raises(ValidationError) as raised:
        ImporterSettings.from_environment()
    assert "batch_rows" in str(raised.value)


def test_settings_are_frozen(api_env):
    settings = ApiSettings.from_environment()
    with pytest.raises(ValidationError):
        settings.jobs_table = "other"  # type: ignore[misc]


def test_the_importers_record_requests_in_flight_default_to_the_tables_window_and_stop_at_64(api_env):
    # Given the importer's variables without WRITE_CONCURRENCY
    api_env.setenv("RECORDS_TABLE", "records-t")
    from impex import wiring

    # When the settings are read and the record tables built from them
    settings = ImporterSettings.from_environment()
    table = wiring.record_tables(settings.write_concurrency)("records-t")
    # Then the window's ceiling is the default, which is also a record table's own, and a value past
    # the lean client's 64 connections is refused
    assert settings.write_concurrency == RECORD_REQUESTS_IN_FLIGHT > 16
    assert table.window.cap == RECORD_REQUESTS_IN_FLIGHT
    assert wiring.record_tables()("records-t").window.cap == RECORD_REQUESTS_IN_FLIGHT
    table.close()
    api_env.setenv("WRITE_CONCURRENCY", "65")
    with pytest.raises(ValidationError, match="write_concurrency"):
        ImporterSettings.from_environment()
