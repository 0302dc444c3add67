"""Thresholds and the clock for performance tracking: the seed's defaults, overridable per kind and name.

The configuration is one immutable ``PerfConfig`` swapped atomically by ``configure()``; the hot path reads
it once per measurement. Thresholds are in milliseconds; the clock returns seconds (``time.perf_counter``
by default) and is injectable so that tests drive time instead of sleeping.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

from ..config import ConfigError

Kind = Literal["api", "db", "external"]

#: The kinds of work tracked, in the order the seed lists them.
KINDS: Final[tuple[Kind, ...]] = ("api", "db", "external")

Clock = Callable[[], float]


@dataclasses.dataclass(frozen=True, slots=True)
class Thresholds:
    """When a measurement becomes slow (warn) and critical (error), in milliseconds.

    A duration strictly above ``slow_ms`` is slow and strictly above ``critical_ms`` is critical, so the
    seed's "slow queries (>500ms)" reads as written.
    """

    slow_ms: float
    critical_ms: float


#: The seed's table: API 1 s / 3 s, database 500 ms / 2 s, external 2 s / 5 s.
DEFAULT_THRESHOLDS: Final[Mapping[str, Thresholds]] = {
    "api": Thresholds(1000, 3000),
    "db": Thresholds(500, 2000),
    "external": Thresholds(2000, 5000),
}


@dataclasses.dataclass(frozen=True, slots=True)
class PerfConfig:
    """Thresholds per kind, per-operation overrides (by tracked name) and the clock."""

    kinds: Mapping[str, Thresholds]
    operations: Mapping[str, Thresholds]
    clock: Clock

    def thresholds_for(self, kind: str, name: str) -> Thresholds:
        """The thresholds for ``name`` of ``kind``: an operation override first, then the kind's."""
        if self.operations:
            found = self.operations.get(name)
            if found is not None:
                return found
        return self.kinds[kind]


_DEFAULT: Final = PerfConfig({**DEFAULT_THRESHOLDS}, {}, time.perf_counter)

#: The configuration in force; replaced whole by ``configure``/``reset``, never mutated.
CURRENT: PerfConfig = _DEFAULT

ThresholdsLike = Thresholds | tuple[float, float] | Mapping[str, float]


def to_thresholds(value: Any, setting: str) -> Thresholds:
    """Accept ``Thresholds``, ``(slow_ms, critical_ms)`` or ``{"slow_ms": .., "critical_ms": ..}``.

    Raises ``ConfigError`` naming ``setting`` when the numbers are missing, not positive, or critical is
    below slow.
    """
    if isinstance(value, Thresholds):
        slow, critical = value.slow_ms, value.critical_ms
    elif isinstance(value, Mapping):
        unknown = set(value) - {"slow_ms", "critical_ms"}
        if unknown or len(value) != 2:
            raise ConfigError(setting, "expected {'slow_ms': number, 'critical_ms': number}")
        slow, critical = value["slow_ms"], value["critical_ms"]
    elif isinstance(value, tuple | list) and len(value) == 2:
        slow, critical = value
    else:
        raise ConfigError(setting, f"expected (slow_ms, critical_ms), got {value!r}")
    for label, number in (("slow_ms", slow), ("critical_ms", critical)):
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            raise ConfigError(setting, f"{label} must be a number of milliseconds, got {number!r}")
        if number <= 0:
            raise ConfigError(setting, f"{label} must be positive, got {number!r}")
    if critical < slow:
        raise ConfigError(setting, f"critical_ms ({critical}) must not be below slow_ms ({slow})")
    return Thresholds(slow, critical)


def configure(
    *,
    api: ThresholdsLike | None = None,
    db: ThresholdsLike | None = None,
    external: ThresholdsLike | None = None,
    operations: Mapping[str, ThresholdsLike | None] | None = None,
    clock: Clock | None = None,
) -> PerfConfig:
    """Change thresholds or the clock; what is not given stays as it is. Returns the new configuration.

    ``api``/``db``/``external`` take ``(slow_ms, critical_ms)``. ``operations`` maps a tracked name
    (``"donations.findMany"``) to its own thresholds, merged into the existing overrides; ``None`` as a
    value removes that override. ``clock`` is a function returning seconds (tests pass a fake one).
    Raises ``opswatch.ConfigError`` naming the bad setting (``perf.db``, ``perf.operations[...]``).
    """
    global CURRENT
    old = CURRENT
    kinds = dict(old.kinds)
    for kind, value in (("api", api), ("db", db), ("external", external)):
        if value is not None:
            kinds[kind] = to_thresholds(value, f"perf.{kind}")
    overrides = dict(old.operations)
    if operations is not None:
        if not isinstance(operations, Mapping):
            raise ConfigError("perf.operations", "expected a mapping of operation name to thresholds")
        for name, value in operations.items():
            if not isinstance(name, str) or not name:
                raise ConfigError("perf.operations", f"operation names must be non-empty text, got {name!r}")
            if value is None:
                overrides.pop(name, None)
            else:
                overrides[name] = to_thresholds(value, f"perf.operations[{name!r}]")
    if clock is not None and not callable(clock):
        raise ConfigError("perf.clock", "expected a function returning seconds")
    CURRENT = PerfConfig(kinds, overrides, clock or old.clock)
    return CURRENT


def reset() -> PerfConfig:
    """Back to the seed's thresholds, no overrides, and ``time.perf_counter``."""
    global CURRENT
    CURRENT = _DEFAULT
    return CURRENT


def current() -> PerfConfig:
    """The configuration in force."""
    return CURRENT
