"""The one seam between the ClickHouse event store and a ClickHouse engine, with two implementations.

* ``ChdbClient``: the ClickHouse engine inside this process (``chdb``), on a directory. The contract
  suite runs on it; no server, no network. chdb allows one open session per process.
* ``HttpClient``: a ClickHouse server over HTTP through ``clickhouse-connect``
  (``OPSWATCH_EVENTS_URL=clickhouse://user:pass@host:8123/opswatch``).

Both give the same answers: ``query`` returns column names and rows of Python values (times as naive
UTC ``datetime``, like DuckDB's ``TIMESTAMP``), ``insert_json`` sends JSON lines (``JSONEachRow``).
Every failure is a ``ClickHouseError`` carrying ClickHouse's error code when there is one (159 is
``TIMEOUT_EXCEEDED``); a ``TransportError`` means the answer was lost on the way and the statement may
or may not have run.
"""

from __future__ import annotations

import contextlib
import datetime
import re
import threading
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Protocol

import orjson

from ...config import ConfigError

TIMEOUT_EXCEEDED: Final = 159
MEMORY_LIMIT_EXCEEDED: Final = 241
TOO_MANY_ROWS_OR_BYTES: Final = 396
_CODE = re.compile(r"\bcode:?\s*(\d+)", re.IGNORECASE)


class ClickHouseError(Exception):
    """ClickHouse refused or failed a statement; ``code`` is its error code (0 when none was given)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        found = _CODE.search(message)
        self.code = int(found.group(1)) if found else 0


class TransportError(ClickHouseError):
    """The connection failed; a write may have landed or not (retry with the same dedup token)."""


Settings = Mapping[str, Any]


class Client(Protocol):
    """What the store needs from ClickHouse."""

    #: Where the events live, for messages and ``stats``.
    where: str

    def command(self, sql: str, settings: Settings | None = None) -> None:
        """Run a statement that returns nothing (DDL, ``ALTER``, ``DELETE``)."""
        ...

    def query(self, sql: str, settings: Settings | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a ``SELECT``; its column names and rows."""
        ...

    def insert_json(self, table: str, lines: bytes, settings: Settings | None = None) -> None:
        """Insert newline-separated JSON objects into ``table`` as one block."""
        ...

    def close(self) -> None:
        """Release the session or connection (idempotent)."""
        ...


def setting_literal(value: Any) -> str:
    """A setting's value as ClickHouse SQL (numbers as they are, text quoted)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return repr(value)
    return string_literal(str(value))


def string_literal(text: str) -> str:
    """``text`` as a ClickHouse string literal (backslashes escape in ClickHouse, quotes are doubled)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _settings_clause(settings: Settings | None) -> str:
    if not settings:
        return ""
    return " SETTINGS " + ", ".join(f"{name} = {setting_literal(value)}" for name, value in settings.items())


_JSON_OUTPUT: Final = {
    "output_format_json_quote_64bit_integers": 0,
    "output_format_json_quote_denormals": 1,
}


class ChdbClient:
    """ClickHouse in process on the directory ``path`` (``chdb``); statements run one at a time."""

    def __init__(self, path: str | Path) -> None:
        try:
            from chdb import session
        except ImportError:  # pragma: no cover - depends on the environment
            raise ConfigError("events_url", "chdb is not installed (pip install chdb)") from None
        self.where = f"chdb:{path}"
        self._lock = threading.Lock()
        try:
            self._session: Any = session.Session(str(path))  # type: ignore[no-untyped-call]
        except Exception as err:  # chdb raises plain RuntimeErrors
            raise ClickHouseError(f"cannot open chdb at {path}: {err}") from None

    def _run(self, sql: str, fmt: str) -> Any:
        with self._lock:
            if self._session is None:
                raise ClickHouseError("the chdb session is closed")
            try:
                return self._session.query(sql, fmt)
            except Exception as err:
                # chdb 4.4 hands a failed query's partial output to the next query (measured: a
                # timed-out SELECT's JSON header came first in the next answer); one query takes it.
                with contextlib.suppress(Exception):
                    self._session.query("SELECT 1", "CSV")
                raise ClickHouseError(str(err).strip()) from None

    def command(self, sql: str, settings: Settings | None = None) -> None:
        self._run(sql + _settings_clause(settings), "CSV")

    def query(self, sql: str, settings: Settings | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        merged = {**(settings or {}), **_JSON_OUTPUT}
        result = self._run(sql + _settings_clause(merged), "JSONCompact")
        raw = result.bytes()
        if not raw:
            return [], []
        document = orjson.loads(raw)
        meta = document.get("meta", [])
        columns = [column["name"] for column in meta]
        converters = [_converter(column["type"]) for column in meta]
        rows = [
            tuple(convert(value) for convert, value in zip(converters, row, strict=True))
            for row in document.get("data", [])
        ]
        return columns, rows

    def insert_json(self, table: str, lines: bytes, settings: Settings | None = None) -> None:
        # chdb takes the data inline after FORMAT; JSON lines never hold a raw newline inside a value.
        text = lines.decode()
        self._run(f"INSERT INTO {table}{_settings_clause(settings)} FORMAT JSONEachRow\n{text}", "CSV")

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()


def _converter(type_name: str) -> Any:
    """A function turning a ``JSONCompact`` value of ClickHouse type ``type_name`` into Python's."""
    inner = type_name
    for wrapper in ("Nullable(", "LowCardinality("):
        if inner.startswith(wrapper):
            inner = inner[len(wrapper) : -1]
    if inner.startswith("DateTime"):
        return _to_datetime
    if inner == "Date" or inner == "Date32":
        return lambda value: None if value is None else datetime.date.fromisoformat(value)
    if inner.startswith(("Float", "Decimal")):
        return _to_float
    return lambda value: value


def _to_datetime(value: Any) -> Any:
    if value is None:
        return None
    return datetime.datetime.fromisoformat(value)


def _to_float(value: Any) -> Any:
    if isinstance(value, str):  # inf, -inf, nan (quoted denormals)
        return float(value)
    return None if value is None else float(value)


class HttpClient:
    """A ClickHouse server over HTTP (``clickhouse-connect``), from a ``clickhouse://`` URL."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("clickhouse", "clickhouses"):
            shown = f"{parts.scheme}://"
            raise ConfigError("events_url", f"expected clickhouse://user:pass@host:8123/db, got {shown}")
        if not parts.hostname:
            raise ConfigError("events_url", "the ClickHouse URL names no host")
        database = parts.path.strip("/") or "default"
        try:
            import clickhouse_connect
        except ImportError:  # pragma: no cover - depends on the environment
            raise ConfigError(
                "events_url", "clickhouse-connect is not installed (pip install 'opswatch[clickhouse]')"
            ) from None
        secure = parts.scheme == "clickhouses"
        self.where = (
            f"{parts.scheme}://{parts.hostname}:{parts.port or (8443 if secure else 8123)}/{database}"
        )
        try:
            self._client: Any = clickhouse_connect.get_client(
                host=parts.hostname,
                port=parts.port or (8443 if secure else 8123),
                username=urllib.parse.unquote(parts.username or "default"),
                password=urllib.parse.unquote(parts.password or ""),
                database=database,
                secure=secure,
                autogenerate_session_id=False,
            )
        except Exception as err:
            raise ClickHouseError(f"cannot reach ClickHouse at {self.where}: {err}") from None

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        from clickhouse_connect.driver import exceptions

        try:
            return getattr(self._client, method)(*args, **kwargs)
        except exceptions.OperationalError as err:
            raise TransportError(str(err)) from None
        except exceptions.Error as err:
            raise ClickHouseError(str(err)) from None

    def command(self, sql: str, settings: Settings | None = None) -> None:
        self._call("command", sql, settings=dict(settings or {}))

    def query(self, sql: str, settings: Settings | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        result = self._call("query", sql, settings=dict(settings or {}))
        rows = [tuple(_naive_utc(value) for value in row) for row in result.result_rows]
        return list(result.column_names), rows

    def insert_json(self, table: str, lines: bytes, settings: Settings | None = None) -> None:
        self._call("raw_insert", table, insert_block=lines, fmt="JSONEachRow", settings=dict(settings or {}))

    def close(self) -> None:
        self._client.close()


def _naive_utc(value: Any) -> Any:
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value
