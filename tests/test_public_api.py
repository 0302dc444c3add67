"""The public surface is curated: ``__all__`` is sorted and is exactly what the package exports."""

from __future__ import annotations

import types

import opswatch


def test_all_is_sorted() -> None:
    assert list(opswatch.__all__) == sorted(opswatch.__all__)


def test_all_names_exactly_the_public_attributes() -> None:
    public = {
        name
        for name, value in vars(opswatch).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(opswatch.__all__) - {"__version__"}


def test_every_exported_callable_has_a_docstring() -> None:
    for name in opswatch.__all__:
        value = getattr(opswatch, name)
        if callable(value):
            assert (value.__doc__ or "").strip(), name
