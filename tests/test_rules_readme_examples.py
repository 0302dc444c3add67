"""Every rules-file example in the README's "Server alert rules" section loads as written."""

from __future__ import annotations

import re
from pathlib import Path

from opswatch.server.rules.load import load_text

README = Path(__file__).resolve().parents[1] / "README.md"


def section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Server alert rules")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_every_rules_file_example_loads() -> None:
    examples = re.findall(r"```toml\n(.*?)```", section(), flags=re.DOTALL)
    names = [rule.name for example in examples for rule in load_text(example)]
    kinds = {"donations-down", "donations-anomaly", "new-fatal-issue", "regression-in-production"}
    assert kinds <= set(names)
    assert len(examples) >= 4
