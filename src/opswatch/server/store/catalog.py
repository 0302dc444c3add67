"""The key catalog: every attribute key the store has seen, its type, and whether it has its own column.

Attributes (the fields of a record that are not common fields) start *cold*: their values live in the
``attributes`` JSON container of their row. The catalog counts the rows a cold key appears in; once a key
reaches ``promote_after`` rows it is *promoted*: it gets a typed column of its own (``a_<name>``), its
earlier values are copied there, and from then on its values are written only to that column. This is
what SigNoz (materialized attribute columns), PostHog (materialized properties) and Sentry's Snuba
(promoted tags) do: the keys that matter are read at typed-column speed, the long tail costs one JSON
column.

Types form a small lattice, so a key's column only ever widens: ``BIGINT`` and ``DOUBLE`` join to
``DOUBLE``; any other mix joins to ``VARCHAR`` (numbers and booleans as their JSON text, objects and
lists as JSON). A key whose values are all objects or lists is ``JSON``.

Keys are matched case-insensitively (DuckDB's identifiers are), so ``churchId`` and ``churchid`` share one
entry and one column; the entry keeps the first spelling seen as its ``name`` (a cold value stored under
another spelling stays reachable only through the container). Keys that collide with a common field or
an internal column are never cataloged: they stay in the container.

The catalog is shared by every project, so what one project can add is bounded (``plan``): at most
``max_new_per_batch`` new keys per project in one commit and ``max_keys_per_project`` keys in all (each
key remembers the project that first sent it). When the whole catalog (``max_keys``) is full, a project
under its share still gets its new key: the least-seen cold key of the project holding the most keys
makes room (its values stay in the container). Promoted keys are never dropped, nor ``protected`` ones
(the fields of the documented business metrics, which the seed's queries name). So a sender that
invents field names fills its own share and then only the container, and never takes a column (such as
``church_id``, which the seed's queries name) from another project.

The catalog is copy-on-write: ``plan`` computes the next state for a batch without changing this one;
the writer applies the plan to the database and only after the commit calls ``adopt``. A failed commit
therefore leaves the catalog as it was.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import orjson

BOOLEAN: Final = "BOOLEAN"
BIGINT: Final = "BIGINT"
DOUBLE: Final = "DOUBLE"
VARCHAR: Final = "VARCHAR"
JSON: Final = "JSON"
TYPES: Final = frozenset({BOOLEAN, BIGINT, DOUBLE, VARCHAR, JSON})

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_NOT_IDENTIFIER = re.compile(r"[^a-z0-9_]+")
_MAX_COLUMN_NAME: Final = 48


def value_type(value: Any) -> str | None:
    """The catalog type of one value; None for ``None`` (nulls are not stored)."""
    kind = type(value)
    if kind is str:
        return VARCHAR
    if kind is bool:
        return BOOLEAN
    if kind is int:
        return BIGINT if _INT64_MIN <= value <= _INT64_MAX else VARCHAR
    if kind is float:
        return DOUBLE
    if kind is dict or kind is list:
        return JSON
    if value is None:
        return None
    return VARCHAR


def join_types(a: str, b: str) -> str:
    """The narrowest type that holds values of both ``a`` and ``b``."""
    if a == b:
        return a
    if a in (BIGINT, DOUBLE) and b in (BIGINT, DOUBLE):
        return DOUBLE
    return VARCHAR


def as_text(value: Any) -> str:
    """A value as it is stored in a ``VARCHAR`` column: strings as they are, anything else as JSON text."""
    if type(value) is str:
        return value
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)


def coerce(value: Any, column_type: str) -> Any:
    """``value`` (non-null, of a type that joins into ``column_type``) in the form its column stores."""
    if column_type == VARCHAR:
        return value if type(value) is str else as_text(value)
    if column_type == DOUBLE and type(value) is int:
        return float(value)
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class KeyInfo:
    """One cataloged key.

    ``seen`` counts the rows the key appeared in while it was cold (it stops counting once promoted);
    ``cold_first``/``cold_last`` bound the timestamps of those rows, so promotion copies their values
    with a scan that the timestamp zone maps keep short.
    """

    key: str
    name: str
    type: str
    column: str | None = None
    seen: int = 0
    cold_first: str | None = None
    cold_last: str | None = None
    #: The project that first sent the key (None for keys cataloged before projects were recorded).
    project_id: int | None = None


@dataclasses.dataclass
class Plan:
    """The catalog after one batch, and the schema work that gets there (see ``KeyCatalog.plan``)."""

    keys: dict[str, KeyInfo]
    #: Keys that get a column in this batch; ``backfill`` holds those with cold rows already stored.
    promoted: list[KeyInfo] = dataclasses.field(default_factory=list)
    backfill: list[KeyInfo] = dataclasses.field(default_factory=list)
    #: Promoted keys whose column type widens (the new info; the old type is in the current catalog).
    widened: list[KeyInfo] = dataclasses.field(default_factory=list)
    #: Entries to write to the catalog table.
    changed: list[KeyInfo] = dataclasses.field(default_factory=list)
    #: Cold entries dropped to make room for another project's key (deleted from the catalog table).
    removed: list[KeyInfo] = dataclasses.field(default_factory=list)
    #: True when the ``logs`` view must be rebuilt (a new key, a new column, a new type).
    view_changed: bool = False


class KeyCatalog:
    """The keys, in memory; the store persists each ``Plan.changed`` in its catalog table."""

    def __init__(
        self,
        keys: Iterable[KeyInfo] = (),
        *,
        reserved: Iterable[str] = (),
        promote_after: int,
        max_columns: int,
        max_keys: int,
        max_keys_per_project: int | None = None,
        max_new_per_batch: int | None = None,
        protected: Iterable[str] = (),
    ) -> None:
        self.keys: dict[str, KeyInfo] = {info.key: info for info in keys}
        self.placements: dict[str, tuple[str, tuple[type, ...]]] = _placements(self.keys)
        self.reserved = frozenset(name.lower() for name in reserved)
        self.promote_after = promote_after
        self.max_columns = max_columns
        self.max_keys = max_keys
        self.max_keys_per_project = max_keys if max_keys_per_project is None else max_keys_per_project
        self.max_new_per_batch = max_keys if max_new_per_batch is None else max_new_per_batch
        self.protected = frozenset(name.lower() for name in protected)
        self._lower: dict[str, str] = {}

    @property
    def promoted_count(self) -> int:
        """Keys that have their own column."""
        return sum(1 for info in self.keys.values() if info.column is not None)

    def lower(self, name: str) -> str:
        """The catalog key for a field name (cached: the same few names repeat in every record)."""
        key = self._lower.get(name)
        if key is None:
            key = name.lower()
            if len(self._lower) < 100_000:
                self._lower[name] = key
        return key

    def plan(
        self, batch: Sequence[tuple[str, Mapping[str, Any]]], projects: Sequence[int | None] | None = None
    ) -> Plan:
        """The next catalog state for a batch of ``(timestamp, attributes)`` rows, without changing this one.

        ``timestamp`` is the row's RFC 3339 UTC timestamp in the record format (so text order is time
        order). ``projects`` holds each row's project (the owner of a new key is the project of the
        first row that has it; new keys are bounded per project, see the module docstring). Values that
        are None are ignored.
        """
        # Gather per key: joined type, rows, first and last timestamp, first spelling, first project.
        found: dict[str, list[Any]] = {}
        lower = self.lower
        lowered = self._lower
        for position, (stamp, attributes) in enumerate(batch):
            for name, value in attributes.items():
                kind = VARCHAR if type(value) is str else value_type(value)  # most values are text
                if kind is None:
                    continue
                key = lowered.get(name) or lower(name)
                entry = found.get(key)
                if entry is None:
                    found[key] = [kind, 1, stamp, stamp, name, projects[position] if projects else None]
                else:
                    if kind != entry[0]:
                        entry[0] = join_types(entry[0], kind)
                    entry[1] += 1
                    if stamp < entry[2]:
                        entry[2] = stamp
                    elif stamp > entry[3]:
                        entry[3] = stamp
        plan = Plan(keys=self.keys)
        if not found:
            return plan
        keys = dict(self.keys)
        used_columns = {info.column.lower() for info in keys.values() if info.column}
        promoted = len(used_columns)
        owned = _owned(keys)
        added: dict[int | None, int] = {}
        for key, (kind, rows, first, last, name, project) in found.items():
            info = keys.get(key)
            if info is None:
                if (
                    key in self.reserved
                    or added.get(project, 0) >= self.max_new_per_batch
                    or owned.get(project, 0) >= self.max_keys_per_project
                    or (len(keys) >= self.max_keys and not self._make_room(keys, owned, project, plan))
                ):
                    continue  # stays in the container, not a column of the view
                added[project] = added.get(project, 0) + 1
                owned[project] = owned.get(project, 0) + 1
                info = KeyInfo(key=key, name=name, type=kind, project_id=project)
                plan.view_changed = True
                new_info = dataclasses.replace(info, seen=rows, cold_first=first, cold_last=last)
                stored_cold = False
            elif info.column is not None:
                joined = join_types(info.type, kind)
                if joined == info.type:
                    continue  # the common case: a promoted key with a value of its type
                new_info = dataclasses.replace(info, type=joined)
                plan.widened.append(new_info)
                plan.changed.append(new_info)
                plan.view_changed = True
                keys[key] = new_info
                continue
            else:
                joined = join_types(info.type, kind)
                if joined != info.type:
                    plan.view_changed = True
                new_info = dataclasses.replace(
                    info,
                    type=joined,
                    seen=info.seen + rows,
                    cold_first=min(first, info.cold_first) if info.cold_first else first,
                    cold_last=max(last, info.cold_last) if info.cold_last else last,
                )
                stored_cold = info.seen > 0
            if new_info.seen >= self.promote_after and promoted < self.max_columns:
                column = _column_name(key, used_columns)
                used_columns.add(column.lower())
                promoted += 1
                new_info = dataclasses.replace(new_info, column=column)
                plan.promoted.append(new_info)
                if stored_cold:
                    plan.backfill.append(new_info)
                plan.view_changed = True
            keys[key] = new_info
            plan.changed.append(new_info)
        plan.keys = keys
        return plan

    def _make_room(
        self, keys: dict[str, KeyInfo], owned: dict[int | None, int], project: int | None, plan: Plan
    ) -> bool:
        """Drop the least-seen cold key of the project holding the most keys, when that project holds
        more than ``project`` would after adding one; whether room was made."""
        largest = max(owned, key=lambda owner: owned[owner], default=None)
        if largest is None or largest == project or owned[largest] <= owned.get(project, 0) + 1:
            return False
        cold = [
            info
            for info in keys.values()
            if info.project_id == largest and info.column is None and info.key not in self.protected
        ]
        if not cold:
            return False
        victim = min(cold, key=lambda info: (info.seen, info.cold_last or "", info.key))
        del keys[victim.key]
        owned[largest] -= 1
        plan.removed.append(victim)
        plan.changed[:] = [info for info in plan.changed if info.key != victim.key]
        plan.view_changed = True
        return True

    def adopt(self, plan: Plan) -> None:
        """Make ``plan`` the current state (after its changes were committed)."""
        if plan.keys is not self.keys:
            self.keys = plan.keys
            self.placements = _placements(plan.keys)


#: Python types a promoted column of each type stores as they are.
FITS: Final[dict[str, tuple[type, ...]]] = {
    BIGINT: (int,),
    DOUBLE: (int, float),
    VARCHAR: (str,),
    BOOLEAN: (bool,),
    JSON: (dict, list),
}


def documented_fields() -> set[str]:
    """The fields of the business-metric catalog (``church_id``, ``amount`` ...): never dropped from
    the key catalog to make room, since the seed's queries name them."""
    from ...metrics import catalog as metric_catalog

    return {field.name for spec in metric_catalog().values() for field in spec.fields}


def _placements(keys: Mapping[str, KeyInfo]) -> dict[str, tuple[str, tuple[type, ...]]]:
    """Field name (first spelling) -> (column, types it takes as they are), for promoted keys.

    Appending threads read this map to put most values straight into their columns; it is replaced
    whole, never changed in place, so a reader always sees one consistent version.
    """
    return {info.name: (info.column, FITS[info.type]) for info in keys.values() if info.column is not None}


def _owned(keys: Mapping[str, KeyInfo]) -> dict[int | None, int]:
    """Keys per owning project."""
    owned: dict[int | None, int] = {}
    for info in keys.values():
        owned[info.project_id] = owned.get(info.project_id, 0) + 1
    return owned


def _column_name(key: str, used: set[str]) -> str:
    """A column name for ``key``: ``a_`` plus the key in lower case with other characters as ``_``."""
    base = "a_" + _NOT_IDENTIFIER.sub("_", key).strip("_")[:_MAX_COLUMN_NAME]
    name = base
    number = 2
    while name.lower() in used:
        name = f"{base}_{number}"
        number += 1
    return name


def store_limits(*, promote_after: int, max_columns: int, max_keys: int) -> dict[str, Any]:
    """The ``KeyCatalog`` limits a store gives each of its catalogs (the events', the spans'): its own
    settings, and the per-project shares of ``limits.STORE_MAX_KEYS_PER_PROJECT`` and
    ``STORE_MAX_NEW_KEYS_PER_COMMIT`` within ``max_keys``."""
    from .. import limits

    return {
        "promote_after": promote_after,
        "max_columns": max_columns,
        "max_keys": max_keys,
        "max_keys_per_project": min(max_keys, limits.STORE_MAX_KEYS_PER_PROJECT),
        "max_new_per_batch": min(max_keys, limits.STORE_MAX_NEW_KEYS_PER_COMMIT),
    }
