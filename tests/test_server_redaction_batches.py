"""A batch of records is redacted as each record alone would be (``ServerRedactor.redact_records``).

The batch entry point walks a flat dict that several records share (the OTLP resource under every span's
``attributes``) once for all of them; these tests hold it to the SDK's result record by record.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from opswatch.redact import Redactor
from opswatch.server.redaction import ServerRedactor
from test_server_redaction import keys, records, text

flat_dicts = st.dictionaries(
    keys, text | st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none()
)


@settings(max_examples=150, deadline=None)
@given(st.lists(records, max_size=5), flat_dicts, st.lists(keys, min_size=1, max_size=3))
def test_it_redacts_records_sharing_a_nested_dict_exactly_as_the_sdk_does(
    batch: list[dict[str, Any]], shared: dict[str, Any], under: list[str]
) -> None:
    for number, record in enumerate(batch):
        record["attributes"] = {**record, under[number % len(under)]: shared}
    assert ServerRedactor().redact_records(batch) == [Redactor().redact(record) for record in batch]


def test_it_censors_a_secret_in_a_shared_resource_in_every_span() -> None:
    resource = {"telemetry.sdk.name": "opentelemetry", "note": "mail jane.doe@example.com", "api_key": "k1"}
    spans = [
        {"name": f"GET /{n}", "attributes": {"http.route": "/x", "resource": resource}} for n in range(3)
    ]
    clean = ServerRedactor().redact_records(spans)
    for span in clean:
        shown = span["attributes"]["resource"]
        assert shown["api_key"] == "[REDACTED]"
        assert "jane.doe@example.com" not in shown["note"]
        assert shown["telemetry.sdk.name"] == "opentelemetry"
    first, second = (span["attributes"]["resource"] for span in clean[:2])
    assert first == second and first is not second  # each span owns its copy
    assert resource["api_key"] == "k1"  # the input is not changed


def test_it_walks_a_shared_dict_that_is_not_flat_in_each_record() -> None:
    nested = {"user": {"password": "hunter2"}, "note": "x"}
    spans = [{"attributes": {"resource": nested}}, {"attributes": {"resource": nested}}]
    clean = ServerRedactor().redact_records(spans)
    assert clean == [Redactor().redact(span) for span in spans]
    assert clean[1]["attributes"]["resource"]["user"]["password"] == "[REDACTED]"


def test_it_honours_paths_and_remove_mode_in_a_batch() -> None:
    resource = {"region": "eu", "token": "t"}
    spans = [{"attributes": {"resource": resource, "region": "us"}} for _ in range(2)]
    options: dict[str, Any] = {"paths": ["attributes.resource.region"], "mode": "remove"}
    assert ServerRedactor(**options).redact_records(spans) == [Redactor(**options).redact(s) for s in spans]
