"""Routing: which error records become which alert, on which channel. Routes are data.

A route is a table: ``name``, matchers (``level``, ``operation``, ``logger``, ``fields``), the
``template`` to build, the ``channel`` (or ``channels``; default: every configured channel), ``continue``
to keep matching after it, and an optional ``link`` (a format string over the record's fields, for the
"View" button). Routes are tried in order; the first match wins unless it says ``continue = true``.

Matchers: ``level`` is a minimum (``"error"`` takes error and fatal). ``operation``, ``logger`` and each
``fields`` entry take a pattern or a list of patterns (any may match). A pattern is a glob matched
against the whole value (``payment.*``, ``*.stripe.*``) or, written ``re:...``, a regular expression
matched against the whole value (anchored at both ends). Globs are literal about what they say:
``*payment*`` matches ``repayment.sync``; the default routes use whole-word regexes so they do not.

``DEFAULT_ROUTES`` is the seed's table. A route list may contain ``{"include": "defaults"}`` to put the
seed's routes at that place. An invalid route raises ``ConfigError`` naming the setting and the route.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
import string
import tomllib
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ..config import ConfigError, Settings
from ..record import ERROR, LEVEL_NUMBERS, Record
from .templates import RECORD_TEMPLATES

# -- the seed's table, as data --------------------------------------------------------------------

_SEP = r"[._:/\s-]"
_BEFORE = rf"(?:.*?(?:{_SEP}|(?<=[a-z0-9])(?=[A-Z])))?"  # anything, then a separator or a camelCase hump
_AFTER = rf"(?:(?:{_SEP}|(?=[A-Z0-9])).*)?"


def _words(*words: str) -> str:
    # the first letter in either case, so camelCase names (createPayment) are words too
    return "|".join(f"[{w[0].upper()}{w[0].lower()}]{w[1:]}" for w in words)


def word_pattern(*words: str) -> str:
    """A ``re:`` pattern matching values that contain one of ``words`` as a whole word, separated by
    ``. _ - : /`` or a camelCase boundary: ``payment.stripe.charge``, ``createPayment``, not ``repayment``."""
    return f"re:{_BEFORE}(?:{_words(*words)}){_AFTER}"


def _contains_word(*words: str) -> str:
    return rf"(?={_BEFORE}(?:{_words(*words)}){_AFTER}\Z)"


#: The seed's routing table. Slow queries come first: ``performance.critical.db.*`` also mentions ``db``.
DEFAULT_ROUTES: tuple[Mapping[str, Any], ...] = (
    {
        "name": "slow-query",
        "operation": r"re:performance\.critical\.(?:api|db)\..+",
        "template": "slow_query",
    },
    {"name": "payment", "operation": word_pattern("payments?", "stripe"), "template": "payment_failed"},
    {"name": "database", "operation": word_pattern("database", "db"), "template": "database_error"},
    {
        "name": "cron",
        "operation": rf"re:cron\.(?:.*?(?:{_SEP}|(?<=[a-z0-9])(?=[A-Z])))?(?:{_words('errors?')}){_AFTER}",
        "template": "cron_job_failed",
    },
    {
        "name": "campaign",
        "operation": "re:" + _contains_word("campaigns?") + word_pattern("send", "sends", "sending")[3:],
        "template": "campaign_failed",
    },
    {"name": "fatal", "level": "fatal", "template": "fatal_error"},
)

# -- routes ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Pattern:
    """A glob or ``re:`` regex, matched against a whole value."""

    source: str
    regex: re.Pattern[str]

    @classmethod
    def compile(cls, source: str) -> Pattern:
        """Compile ``source``; raises ``ValueError`` saying what is wrong."""
        if source.startswith("re:"):
            try:
                return cls(source, re.compile(source[3:]))
            except re.error as err:
                raise ValueError(f"bad regular expression {source[3:]!r}: {err}") from None
        return cls(source, re.compile(fnmatch.translate(source)))

    def matches(self, value: str) -> bool:
        """True when the whole ``value`` matches."""
        return self.regex.fullmatch(value) is not None


def _value_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _lookup(record: Mapping[str, Any], path: str) -> Any:
    if path in record:
        return record[path]
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _any(patterns: tuple[Pattern, ...], value: Any) -> bool:
    text = _value_text(value)
    return text is not None and any(p.matches(text) for p in patterns)


@dataclasses.dataclass(frozen=True)
class Route:
    """One routing rule (see the module docs for the table form)."""

    name: str
    template: str = "alert"
    channels: tuple[str, ...] | None = None
    level: int = ERROR
    operation: tuple[Pattern, ...] = ()
    logger: tuple[Pattern, ...] = ()
    fields: tuple[tuple[str, tuple[Pattern, ...]], ...] = ()
    continue_: bool = False
    link: str | None = None

    def matches(self, record: Mapping[str, Any]) -> bool:
        """True when every matcher of this route accepts ``record``."""
        if LEVEL_NUMBERS.get(str(record.get("level")), 0) < self.level:
            return False
        if self.operation and not _any(self.operation, record.get("operation")):
            return False
        if self.logger and not _any(self.logger, record.get("logger")):
            return False
        return all(_any(patterns, _lookup(record, path)) for path, patterns in self.fields)

    def link_for(self, record: Mapping[str, Any]) -> str | None:
        """The route's link with the record's fields filled in (missing fields become empty)."""
        if self.link is None:
            return None
        try:
            return string.Formatter().vformat(self.link, (), _Blank(record))
        except (ValueError, IndexError, AttributeError, KeyError):
            return None


class _Blank(dict[str, Any]):
    def __init__(self, record: Mapping[str, Any]) -> None:
        super().__init__(record)

    def __missing__(self, key: str) -> str:
        return ""


class Router:
    """An ordered list of routes. ``route(record)`` returns the routes a record goes through."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = tuple(routes)
        #: The lowest level any route takes (the alert sink's level).
        self.level = min((r.level for r in self.routes), default=ERROR)

    def route(self, record: Record) -> list[Route]:
        """The matching routes, in order, up to and including the first one without ``continue``."""
        matched: list[Route] = []
        for route in self.routes:
            if route.matches(record):
                matched.append(route)
                if not route.continue_:
                    break
        return matched

    def __repr__(self) -> str:
        return f"<Router {[r.name for r in self.routes]}>"


# -- parsing --------------------------------------------------------------------------------------------

_KEYS = frozenset(
    {"name", "template", "channel", "channels", "level", "operation", "logger", "fields", "continue", "link"}
)


def _patterns(value: Any, what: str) -> tuple[Pattern, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items or not all(isinstance(v, str) for v in items):
        raise ValueError(f"{what} must be a pattern or a non-empty list of patterns")
    return tuple(Pattern.compile(v) for v in items)


def _parse_one(table: Mapping[str, Any], name: str, channels: Collection[str] | None) -> Route:
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    template = table.get("template", "alert")
    if template not in RECORD_TEMPLATES:
        raise ValueError(f"unknown template {template!r} (known: {', '.join(RECORD_TEMPLATES)})")
    if "channel" in table and "channels" in table:
        raise ValueError("give either channel or channels, not both")
    chosen: tuple[str, ...] | None = None
    if "channel" in table or "channels" in table:
        raw = table.get("channel", table.get("channels"))
        names = [raw] if isinstance(raw, str) else raw
        if not isinstance(names, list | tuple) or not names or not all(isinstance(n, str) for n in names):
            raise ValueError("channel must be a channel name (or channels a list of names)")
        if channels is not None:
            for channel in names:
                if channel not in channels:
                    known = ", ".join(sorted(channels)) or "none configured"
                    raise ValueError(f"unknown channel {channel!r} (configured: {known})")
        chosen = tuple(names)
    level = table.get("level", "error")
    if not isinstance(level, str) or level.lower() not in LEVEL_NUMBERS:
        raise ValueError(f"unknown level {level!r} (expected one of trace, debug, info, warn, error, fatal)")
    fields = table.get("fields", {})
    if not isinstance(fields, Mapping) or not all(isinstance(k, str) for k in fields):
        raise ValueError("fields must be a table of field name -> pattern(s)")
    go_on = table.get("continue", False)
    if not isinstance(go_on, bool):
        raise ValueError("continue must be true or false")
    link = table.get("link")
    if link is not None:
        if not isinstance(link, str) or not link.startswith(("http://", "https://")):
            raise ValueError("link must be an http(s) URL (it may contain {field} placeholders)")
        try:
            list(string.Formatter().parse(link))
        except ValueError as err:
            raise ValueError(f"bad link template: {err}") from None
    return Route(
        name=name,
        template=template,
        channels=chosen,
        level=LEVEL_NUMBERS[level.lower()],
        operation=_patterns(table["operation"], "operation") if "operation" in table else (),
        logger=_patterns(table["logger"], "logger") if "logger" in table else (),
        fields=tuple((k, _patterns(v, f"fields.{k}")) for k, v in fields.items()),
        continue_=go_on,
        link=link,
    )


def parse_routes(
    tables: Sequence[Mapping[str, Any]],
    *,
    setting: str = "alert_routes",
    channels: Collection[str] | None = None,
) -> list[Route]:
    """Turn route tables into routes; ``ConfigError`` names ``setting`` and the route that is wrong.

    ``channels`` are the configured channel names a route may name (None: any name).
    """
    routes: list[Route] = []
    names: set[str] = set()
    for index, table in enumerate(tables):
        if not isinstance(table, Mapping):
            raise ConfigError(setting, f"route #{index + 1} is not a table")
        if "include" in table:
            if dict(table) != {"include": "defaults"}:
                raise ConfigError(
                    setting, f'route #{index + 1}: the only include is {{include = "defaults"}}'
                )
            routes += parse_routes(DEFAULT_ROUTES, setting=setting, channels=channels)
            names.update(r.name for r in routes)
            continue
        name = table.get("name", f"route-{index + 1}")
        label = f"route {name!r} (#{index + 1})"
        if not isinstance(name, str) or not name:
            raise ConfigError(setting, f"route #{index + 1}: name must be a non-empty string")
        if name in names:
            raise ConfigError(setting, f"{label}: another route has the same name")
        try:
            routes.append(_parse_one(table, name, channels))
        except ValueError as err:
            raise ConfigError(setting, f"{label}: {err}") from None
        names.add(name)
    return routes


def default_routes() -> list[Route]:
    """The seed's table as routes."""
    return parse_routes(DEFAULT_ROUTES, setting="alert_routes")


def load_routes_file(path: str, setting: str = "alerts_file") -> list[Mapping[str, Any]]:
    """Read the ``[[routes]]`` tables of a TOML file; ``ConfigError`` naming ``setting`` when unreadable."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as err:
        raise ConfigError(setting, f"cannot read {path!r}: {err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(setting, f"{path!r} is not valid TOML: {err}") from None
    unknown = sorted(set(data) - {"routes"})
    if unknown:
        raise ConfigError(setting, f"{path!r}: unknown top-level key {unknown[0]!r} (expected [[routes]])")
    routes = data.get("routes", [])
    if not isinstance(routes, list):
        raise ConfigError(setting, f"{path!r}: routes must be an array of tables ([[routes]])")
    return routes


def router_from_settings(settings: Settings, channels: Collection[str] | None = None) -> Router:
    """Routes from ``alert_routes`` (arguments), else ``alerts_file``, else the seed's table."""
    if settings.alert_routes is not None:
        return Router(parse_routes(settings.alert_routes, setting="alert_routes", channels=channels))
    if settings.alerts_file:
        tables = load_routes_file(settings.alerts_file)
        return Router(parse_routes(tables, setting="alerts_file", channels=channels))
    return Router(default_routes())
