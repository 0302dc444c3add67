"""How a catalog entry becomes a metric: its signature is its specification.

A category class declares each metric as a method with a typed, keyword-only signature and a docstring
that documents every field (``field: meaning`` lines). ``@category("donation")`` reads each ``@metric``
method back into a ``MetricSpec`` and replaces it with a recorder that takes the same arguments but never
raises: a missing required field, a value of the wrong type, a negative amount or an unknown currency
becomes a ``warn`` record ``operation="metrics.invalid"`` naming the metric and the problem, and the
``info`` record ``operation="metrics.<category>.<event>"`` keeps every valid field. Static type checkers
still see the declared signature, so most mistakes are caught before they run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .._runtime import STATE
from ..record import INFO, WARN
from ._fields import Check, Invalid

#: ``record["logger"]`` for metric records.
LOGGER = "metrics"

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)

_DOC_FIELD = re.compile(r"^\s{0,8}([a-z_][a-z0-9_]*): (.+)$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a metric: its keyword, whether it is required, its check and what it means."""

    name: str
    required: bool
    check: Check
    doc: str


@dataclasses.dataclass(frozen=True, slots=True)
class MetricSpec:
    """A metric in the catalog: ``name`` (``donation.completed``), the record's operation and fields."""

    name: str
    operation: str
    message: str
    fields: tuple[FieldSpec, ...]
    doc: str

    def field(self, name: str) -> FieldSpec | None:
        """The field called ``name``, if the metric has one."""
        return next((f for f in self.fields if f.name == name), None)


#: Every metric of the catalog, by name, filled as the category classes are created.
REGISTRY: dict[str, MetricSpec] = {}


def metric(fn: F) -> F:
    """Mark a method of a category class as a metric (see ``category``)."""
    fn.__opswatch_metric__ = True  # type: ignore[attr-defined]
    return fn


def snake_case(key: str) -> str:
    """``donationId`` -> ``donation_id``: the seed's keys, as Python keywords."""
    return _CAMEL.sub("_", key).lower()


def _field_docs(doc: str) -> dict[str, str]:
    docs: dict[str, str] = {}
    for line in doc.splitlines():
        match = _DOC_FIELD.match(line)
        if match:
            docs[match.group(1)] = match.group(2).strip()
    return docs


def _check_of(annotation: Any) -> Check:
    """The ``Check`` inside ``Annotated[T, Check]`` or ``Annotated[T, Check] | None``."""
    candidates = [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        candidates = [a for a in typing.get_args(annotation) if a is not type(None)]
    for candidate in candidates:
        for extra in getattr(candidate, "__metadata__", ()):
            if isinstance(extra, Check):
                return extra
    raise TypeError(f"metric field annotation {annotation!r} has no opswatch.metrics check")


def spec_of(category_name: str, fn: Callable[..., Any]) -> MetricSpec:
    """Read one declared metric method into its specification."""
    hints = typing.get_type_hints(fn, include_extras=True)
    doc = inspect.getdoc(fn) or ""
    docs = _field_docs(doc)
    fields = []
    for param in inspect.signature(fn).parameters.values():
        if param.name == "self" or param.kind is inspect.Parameter.VAR_KEYWORD:
            continue  # **extra: a team's own context fields, recorded unchecked
        if param.kind is not inspect.Parameter.KEYWORD_ONLY:
            raise TypeError(f"{fn.__qualname__}: metric fields must be keyword-only ({param.name})")
        if param.name not in docs:
            raise TypeError(f"{fn.__qualname__}: field {param.name!r} is not documented in the docstring")
        required = param.default is inspect.Parameter.empty
        fields.append(FieldSpec(param.name, required, _check_of(hints[param.name]), docs[param.name]))
    event = fn.__name__
    name = f"{category_name}.{event}"
    message = f"{category_name.capitalize()} {event.replace('_', ' ')}"
    return MetricSpec(name, f"metrics.{name}", message, tuple(fields), doc)


def category(name: str) -> Callable[[C], C]:
    """Class decorator: turn every ``@metric`` method of a category into a never-raising recorder."""

    def decorate(cls: C) -> C:
        for attr, value in list(vars(cls).items()):
            if callable(value) and getattr(value, "__opswatch_metric__", False):
                spec = spec_of(name, value)
                REGISTRY[spec.name] = spec
                setattr(cls, attr, _recorder(spec, value))
        return cls

    return decorate


def _recorder(spec: MetricSpec, declared: Callable[..., Any]) -> Callable[..., None]:
    def record_metric(self: Any, *args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(Exception):  # monitoring never breaks business code
            write(spec, args, kwargs)

    functools.update_wrapper(record_metric, declared)
    record_metric.__opswatch_spec__ = spec  # type: ignore[attr-defined]
    return record_metric


def write(spec: MetricSpec, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Validate the arguments of one metric call and write its records (see the module docstring)."""
    given = dict(kwargs)
    problems: list[str] = []
    if args:
        if len(args) == 1 and isinstance(args[0], Mapping):
            # the seed's shape: metrics.donation.completed({donationId, amount, ...})
            given = {snake_case(str(k)): v for k, v in args[0].items()} | given
        else:
            problems.append("fields must be given by keyword (or as one dict)")
    values: dict[str, Any] = {}
    invalid: list[str] = []
    for field in spec.fields:
        value = given.pop(field.name, None)
        if value is None:
            if field.required:
                problems.append(f"{field.name}: missing required field")
                invalid.append(field.name)
            continue
        try:
            values[field.name] = field.check.check(value)
        except Invalid as err:
            problems.append(f"{field.name}: {err}")
            invalid.append(field.name)
    given.pop("operation", None)  # the metric names its own operation
    values.update(given)  # a team's extra context travels along unchecked
    if invalid:
        values["invalid_fields"] = invalid
    values["operation"] = spec.operation
    STATE.emit(INFO, LOGGER, spec.message, None, values, None)
    if problems:
        report_invalid(spec.name, problems, invalid)


def report_invalid(metric_name: str, problems: list[str], invalid: list[str]) -> None:
    """Write the ``warn`` record ``operation="metrics.invalid"`` for one bad metric call."""
    STATE.emit(
        WARN,
        LOGGER,
        f"Invalid metric {metric_name}: {'; '.join(problems)}",
        None,
        {
            "operation": "metrics.invalid",
            "metric": metric_name,
            "problems": problems,
            "invalid_fields": invalid,
        },
        None,
    )
