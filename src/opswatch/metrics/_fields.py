"""Field types for metrics: what each kind of value must be, as ``Annotated`` types mypy understands.

The catalog's signatures use these aliases (``amount: Amount``, ``currency: Currency | None = None``); at
class creation the annotations are read back to build each field's check. A check returns the value to
record (normalized: ``"usd"`` becomes ``"USD"``, a ``Decimal`` becomes a float) or raises ``Invalid``
with a one-line reason. Checks never see ``None``: an optional field given as ``None`` is simply absent.
"""

from __future__ import annotations

import dataclasses
import decimal
import math
from collections.abc import Callable
from typing import Annotated, Any

from ._currencies import CURRENCY_CODES

#: Longest text kept in a metric field; metrics are for counting, not for payloads.
MAX_TEXT = 500


class Invalid(ValueError):
    """A field's value is not acceptable; the message says why."""


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    """A named check on one field's value, attached to a type with ``Annotated``."""

    name: str
    check: Callable[[Any], Any]


def _describe(value: Any) -> str:
    return type(value).__name__


def _id(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Invalid(f"expected an id (text or integer), got {_describe(value)}")
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise Invalid("must not be empty")
        if len(value) > MAX_TEXT:
            raise Invalid(f"longer than {MAX_TEXT} characters")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected text, got {_describe(value)}")
    text = value.strip()
    if not text:
        raise Invalid("must not be empty")
    if len(text) > MAX_TEXT:
        raise Invalid(f"longer than {MAX_TEXT} characters")
    return text


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
        raise Invalid(f"expected a number, got {_describe(value)}")
    number: int | float = float(value) if isinstance(value, decimal.Decimal) else value
    if not math.isfinite(number):
        raise Invalid(f"must be a finite number, got {number!r}")
    return number


def _non_negative(value: Any) -> int | float:
    number = _number(value)
    if number < 0:
        raise Invalid(f"must not be negative, got {number!r}")
    return number


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"expected a whole number, got {_describe(value)}")
    if value < 0:
        raise Invalid(f"must not be negative, got {value!r}")
    return value


def _ratio(value: Any) -> int | float:
    number = _number(value)
    if not 0 <= number <= 1:
        raise Invalid(f"must be between 0 and 1, got {number!r}")
    return number


def _currency(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected an ISO 4217 currency code, got {_describe(value)}")
    code = value.strip().upper()
    if code not in CURRENCY_CODES:
        raise Invalid(f"unknown currency code {value!r} (expected ISO 4217, like USD or EUR)")
    return code


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {_describe(value)}")
    return value


#: An identifier: non-empty text or an integer (``donation_id``, ``church_id`` ...).
Id = Annotated[str | int, Check("id", _id)]
#: Non-empty text, at most ``MAX_TEXT`` characters.
Text = Annotated[str, Check("text", _text)]
#: Money in currency units (``100`` is $100.00): a finite, non-negative number (``Decimal`` accepted).
Amount = Annotated[float, Check("amount", _non_negative)]
#: A finite, non-negative number (seconds, dollars of cost ...).
NonNegative = Annotated[float, Check("non-negative number", _non_negative)]
#: A whole number, zero or more.
Count = Annotated[int, Check("count", _count)]
#: A number from 0 to 1.
Ratio = Annotated[float, Check("ratio", _ratio)]
#: An ISO 4217 code such as ``USD``; case does not matter and it is recorded upper case.
Currency = Annotated[str, Check("currency", _currency)]
#: ``True`` or ``False`` (not 0/1, not "yes").
Flag = Annotated[bool, Check("flag", _flag)]
