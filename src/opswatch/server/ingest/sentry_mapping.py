"""Sentry payloads mapped into opswatch's record shape.

One record per Sentry event, transaction, log or check-in, with the same field names the SDK uses, so
one query answers for both: ``error`` holds the exception chain (the raised exception on top, what
caused it under ``cause``, frames caller to callee as ``{file, line, function, module, in_app}``);
``level``, ``logger``, ``message``, ``release``, ``environment``, ``host`` (Sentry's ``server_name``),
``trace_id`` and ``span_id`` are plain fields; ``tags`` (a map, whether sent as a map or as pairs),
``contexts``, ``user``, ``request`` and ``extra`` keep Sentry's structure. The shapes senders really use
are all accepted: timestamps as strings or float seconds, ``message``/``logentry`` as a string or a dict,
``exception`` as ``{values: [...]}`` or a bare list, ``in_app`` missing. Odd values are skipped rather
than refused; only a payload that is not an object is refused (by the caller).

The mappers never redact: the pipeline redacts every record, whatever its source.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Mapping
from typing import Any

from .records import Refused, canonical_level

Record = dict[str, Any]

_MAX_CHAIN = 10

#: Fields the mappers build from scalars with a fixed shape: at most ``_MAX_CHAIN`` causes, each with a
#: list of flat frames, so never deeper than about 2 * _MAX_CHAIN + 3 levels (under ``MAX_DEPTH``).
BOUNDED_FIELDS = frozenset({"error", "stack", "tags", "fingerprint"})
_MAX_FRAMES = 100
#: Source lines kept before and after a frame's line (sentry-sdk sends 5).
_MAX_CONTEXT = 10
_MAX_BREADCRUMBS = 50
_BUILTIN_MODULES = frozenset({"builtins", "__builtin__", "__main__", "exceptions"})
_CHECK_IN_STATUSES = frozenset({"in_progress", "ok", "error"})

#: Sentry log attributes that are opswatch's own fields under another name.
_LOG_ATTRIBUTE_FIELDS = {
    "sentry.environment": "environment",
    "sentry.release": "release",
    "server.address": "host",
    "logger.name": "logger",
    "sentry.message.template": "message_template",
}
_TEMPLATE_PARAMETER = "sentry.message.parameter."
_OTEL_LEVELS = ("trace", "debug", "info", "warn", "error", "fatal")
#: Sentry log attributes that repeat what the record says already.
_LOG_ATTRIBUTES_DROPPED = frozenset(
    {"sentry.severity_number", "sentry.severity_text", "sentry.sdk.name", "sentry.sdk.version"}
)


def derived_event_id(payload: bytes, index: int = 0) -> str:
    """A stable id for an item that carries none (logs, check-ins): the same bytes give the same id."""
    digest = hashlib.blake2b(payload, digest_size=16, person=b"opswatch-item")
    if index:
        digest.update(index.to_bytes(4, "big"))
    return digest.hexdigest()


def map_event(event: Mapping[str, Any], raw: bytes) -> list[Record]:
    """An error or message event as one record (``kind`` error, or log for a message below error)."""
    record = _common(event, raw)
    error = exception_chain(event.get("exception"))
    message = message_text(event.get("logentry")) or message_text(event.get("message"))
    if error is not None and message and _synthetic(event.get("exception")):
        # JavaScript's captureMessage attaches a stack as an exception with no type: a message.
        record["stack"] = error["stack"]
        error = None
    level = event.get("level")
    record["level"] = canonical_level(level) if level is not None else ("error" if error else "info")
    if error is not None:
        record["error"] = error
        if not message:
            message = f"{error['type']}: {error['message']}" if error.get("message") else error["type"]
    record["message"] = message or ""
    if isinstance(event.get("logger"), str):
        record["logger"] = event["logger"]
    if isinstance(event.get("transaction"), str):
        record["transaction"] = event["transaction"]
    fingerprint = event.get("fingerprint")
    if isinstance(fingerprint, list) and all(isinstance(part, str) for part in fingerprint):
        record["fingerprint"] = fingerprint
    stack = event.get("stacktrace")
    if error is None and isinstance(stack, Mapping):
        record["stack"] = frames(stack.get("frames"))
    crumbs = event.get("breadcrumbs")
    if isinstance(crumbs, Mapping):
        crumbs = crumbs.get("values")
    if isinstance(crumbs, list) and crumbs:
        record["breadcrumbs"] = [c for c in crumbs[-_MAX_BREADCRUMBS:] if isinstance(c, Mapping)]
    record["kind"] = "error" if error is not None or record["level"] in ("error", "fatal") else "log"
    return [record]


def map_transaction(event: Mapping[str, Any], raw: bytes) -> list[Record]:
    """A transaction as one duration record: its name, ``operation`` (the trace op), ``duration_ms``."""
    record = _common(event, raw)
    record["kind"] = "transaction"
    name = event.get("transaction")
    record["message"] = name if isinstance(name, str) else ""
    trace = _mapping(_mapping(event.get("contexts")).get("trace"))
    if isinstance(trace.get("op"), str):
        record["operation"] = trace["op"]
    if isinstance(trace.get("status"), str):
        record["status"] = trace["status"]
    start, end = _seconds(event.get("start_timestamp")), _seconds(event.get("timestamp"))
    if start is not None and end is not None and end >= start:
        record["duration_ms"] = round((end - start) * 1000, 3)
    if event.get("start_timestamp") is not None:
        record["start_timestamp"] = event["start_timestamp"]
    spans = event.get("spans")
    if isinstance(spans, list):
        record["span_count"] = len(spans)
    if isinstance(event.get("measurements"), Mapping):
        record["measurements"] = dict(event["measurements"])
    record["level"] = "info"
    return [record]


def map_logs(container: Mapping[str, Any], raw: bytes) -> list[Record]:
    """A ``log`` item: ``{"version": 2, "items": [...]}``, the older ``{"items": [...]}``, or one log."""
    items = container.get("items")
    if items is None and "body" in container:
        items = [container]
    if not isinstance(items, list):
        raise Refused("bad_item", "a log item must hold an items list")
    records: list[Record] = []
    for index, log in enumerate(items):
        if not isinstance(log, Mapping):
            raise Refused("bad_item", f"log {index} is not an object")
        records.append(_log_record(log, raw, index))
    return records


def map_check_in(check_in: Mapping[str, Any], raw: bytes) -> list[Record]:
    """A check-in as a ``check_in`` record: ``monitor_slug``, ``status``, ``check_in_id``, ``duration_ms``."""
    slug = check_in.get("monitor_slug")
    status = check_in.get("status")
    if not isinstance(slug, str) or not slug:
        raise Refused("bad_item", "a check-in needs a monitor_slug")
    if status not in _CHECK_IN_STATUSES:
        raise Refused("bad_item", f"check-in status must be one of {', '.join(sorted(_CHECK_IN_STATUSES))}")
    record: Record = {
        "event_id": derived_event_id(raw),
        "kind": "check_in",
        "source": "sentry",
        "monitor_slug": slug,
        "status": status,
        "level": "error" if status == "error" else "info",
        "message": f"check-in {slug}: {status}",
    }
    if isinstance(check_in.get("check_in_id"), str):
        record["check_in_id"] = check_in["check_in_id"]
    duration = _seconds(check_in.get("duration"))
    if duration is not None:
        record["duration_ms"] = round(duration * 1000, 3)
    for key in ("environment", "release"):
        if isinstance(check_in.get(key), str):
            record[key] = check_in[key]
    if isinstance(check_in.get("monitor_config"), Mapping):
        record["monitor_config"] = dict(check_in["monitor_config"])
    trace = _mapping(_mapping(check_in.get("contexts")).get("trace"))
    if isinstance(trace.get("trace_id"), str):
        record["trace_id"] = trace["trace_id"]
    return [record]


# -- pieces -----------------------------------------------------------------------------------------


def exception_chain(exception: Any) -> dict[str, Any] | None:
    """Sentry's exception list (oldest first, the raised one last) as ``error`` with ``cause`` links."""
    values = exception.get("values") if isinstance(exception, Mapping) else exception
    if not isinstance(values, list):
        return None
    error: dict[str, Any] | None = None
    for value in values[-_MAX_CHAIN:]:
        if not isinstance(value, Mapping):
            continue
        given = value.get("type")
        kind: str = given if isinstance(given, str) and given else "Error"
        module = value.get("module")
        if isinstance(module, str) and module and module not in _BUILTIN_MODULES and "." not in kind:
            kind = f"{module}.{kind}"
        text = value.get("value")
        node: dict[str, Any] = {
            "type": kind,
            "message": text if isinstance(text, str) else ("" if text is None else str(text)),
            "stack": frames(_mapping(value.get("stacktrace")).get("frames")),
        }
        mechanism = _mapping(value.get("mechanism"))
        if isinstance(mechanism.get("handled"), bool):
            node["handled"] = mechanism["handled"]
        if isinstance(mechanism.get("type"), str):
            node["mechanism"] = mechanism["type"]
        if error is not None:
            node["cause"] = error
        error = node
    return error


def _synthetic(exception: Any) -> bool:
    """True when the raised exception is a stand-in: no type, or ``mechanism.synthetic``."""
    values = exception.get("values") if isinstance(exception, Mapping) else exception
    if not isinstance(values, list) or not values or not isinstance(values[-1], Mapping):
        return False
    last = values[-1]
    return not last.get("type") or _mapping(last.get("mechanism")).get("synthetic") is True


def frames(raw_frames: Any) -> list[dict[str, Any]]:
    """Sentry frames (caller to callee) as ``{file, line, function, module, in_app}`` dicts."""
    if type(raw_frames) is not list:
        return []
    if len(raw_frames) > _MAX_FRAMES:
        half = _MAX_FRAMES // 2
        raw_frames = raw_frames[:half] + raw_frames[-half:]
    out: list[dict[str, Any]] = []
    for frame in raw_frames:
        if type(frame) is not dict:
            continue
        get = frame.get
        path = get("abs_path") or get("filename") or ""
        if type(path) is not str:
            path = str(path)
        line, function, module, in_app = get("lineno"), get("function"), get("module"), get("in_app")
        entry: dict[str, Any] = {
            "file": path,
            "line": line if type(line) is int else None,
            "function": function if type(function) is str else None,
            "module": module if type(module) is str else None,
            "in_app": in_app if type(in_app) is bool else guess_in_app(path),
        }
        column, context_line = get("colno"), get("context_line")
        if type(column) is int:
            entry["column"] = column
        if type(context_line) is str:
            entry["context_line"] = context_line
            # The source around it, shown on the issue page (the lines nearest the frame's line).
            pre, post = get("pre_context"), get("post_context")
            if type(pre) is list:
                entry["pre_context"] = [line for line in pre[-_MAX_CONTEXT:] if type(line) is str]
            if type(post) is list:
                entry["post_context"] = [line for line in post[:_MAX_CONTEXT] if type(line) is str]
        out.append(entry)
    return out


def message_text(value: Any) -> str:
    """The text of ``message``/``logentry``: a string, a dict's ``formatted``, else ``message % params``."""
    if isinstance(value, str):
        return value
    if not isinstance(value, Mapping):
        return ""
    formatted = value.get("formatted")
    if isinstance(formatted, str) and formatted:
        return formatted
    template = value.get("message")
    if not isinstance(template, str):
        return ""
    params = value.get("params")
    if params:
        try:
            if isinstance(params, Mapping):
                return template % dict(params)
            if isinstance(params, list):
                return template % tuple(params) if "%" in template else template.format(*params)
        except (TypeError, ValueError, KeyError, IndexError):
            return template
    return template


def tags_map(tags: Any) -> dict[str, str]:
    """Tags sent as a map or as a list of ``[key, value]`` pairs, as a map of strings."""
    pairs: Any = tags.items() if isinstance(tags, Mapping) else tags
    if not isinstance(tags, (Mapping, list)):
        return {}
    out: dict[str, str] = {}
    for pair in pairs:
        if isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], str):
            value = pair[1]
            out[pair[0]] = value if isinstance(value, str) else ("" if value is None else str(value))
    return out


def _common(event: Mapping[str, Any], raw: bytes) -> Record:
    """Fields every event and transaction share."""
    record: Record = {"source": "sentry"}
    event_id = event.get("event_id")
    record["event_id"] = (
        event_id.replace("-", "").lower() if isinstance(event_id, str) and event_id else derived_event_id(raw)
    )
    if event.get("timestamp") is not None:
        record["timestamp"] = event["timestamp"]
    for key in ("release", "environment", "dist", "platform"):
        if isinstance(event.get(key), str):
            record[key] = event[key]
    if isinstance(event.get("server_name"), str):
        record["host"] = event["server_name"]
    tags = tags_map(event.get("tags"))
    if tags:
        record["tags"] = tags
        if "operation" in tags:
            record["operation"] = tags["operation"]
        if "service" in tags:
            record["service"] = tags["service"]
    contexts = _mapping(event.get("contexts"))
    if contexts:
        record["contexts"] = dict(contexts)
        trace = _mapping(contexts.get("trace"))
        for key in ("trace_id", "span_id"):
            if isinstance(trace.get(key), str):
                record[key] = trace[key]
    for key in ("user", "request", "extra"):
        value = event.get(key)
        if isinstance(value, Mapping) and value:
            record[key] = dict(value)
    request = record.get("request")
    if request is not None and isinstance(request.get("headers"), list):
        request["headers"] = tags_map(request["headers"])
    sdk = _mapping(event.get("sdk"))
    if isinstance(sdk.get("name"), str):
        record["sdk"] = f"{sdk['name']}/{sdk.get('version', '')}".rstrip("/")
    return record


def _log_record(log: Mapping[str, Any], raw: bytes, index: int) -> Record:
    body = log.get("body")
    record: Record = {
        "event_id": derived_event_id(raw, index + 1),
        "kind": "log",
        "source": "sentry",
        "message": body if isinstance(body, str) else ("" if body is None else str(body)),
    }
    if log.get("timestamp") is not None:
        record["timestamp"] = log["timestamp"]
    level = log.get("level")
    severity = log.get("severity_number")
    if level is None and isinstance(severity, int) and 1 <= severity <= 24:
        level = _OTEL_LEVELS[(severity - 1) // 4]  # OpenTelemetry: four numbers per level
    record["level"] = canonical_level(level) if level is not None else "info"
    for key in ("trace_id", "span_id"):
        if isinstance(log.get(key), str):
            record[key] = log[key]
    attributes = log.get("attributes")
    if isinstance(attributes, Mapping):
        sdk_name = attributes.get("sentry.sdk.name")
        if isinstance(sdk_name, Mapping) and isinstance(sdk_name.get("value"), str):
            record["sdk"] = sdk_name["value"]
        for key, attribute in attributes.items():
            if key in _LOG_ATTRIBUTES_DROPPED or not isinstance(key, str):
                continue
            value = attribute.get("value") if isinstance(attribute, Mapping) else attribute
            name = _LOG_ATTRIBUTE_FIELDS.get(key, key)
            if name.startswith(_TEMPLATE_PARAMETER):
                name = _parameter_name(name)
            if name not in record or name in ("logger", "host", "environment", "release"):
                record[name] = value
    return record


def _parameter_name(attribute: str) -> str:
    """The field a template parameter is stored as.

    A named parameter (``logger.info("Order {order_id}", order_id=42)``, stdlib ``%(order_id)s``) is the
    caller's field, stored under its own name as the SDK's records store it. A positional one (stdlib
    ``%s`` arguments, JavaScript's ``logger.fmt``) has only its position for a name: it keeps Sentry's
    ``sentry.message.parameter.<n>``, since a bare ``0`` says nothing in a query.
    """
    name = attribute[len(_TEMPLATE_PARAMETER) :]
    return attribute if not name or name.isdigit() else name


def guess_in_app(path: str) -> bool:
    """True unless the path is a library's or the runtime's (site-packages, node_modules, ``node:``...)."""
    return not (
        "site-packages" in path
        or "dist-packages" in path
        or "node_modules" in path
        or path.startswith("<")
        or path.startswith("node:")
        or "/lib/python" in path
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _seconds(value: Any) -> float | None:
    """Seconds since the epoch (or a duration) from a float or an RFC 3339 string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        return moment.timestamp()
    return None
