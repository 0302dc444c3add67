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
    blocks = re.findall(r"```toml\n(.*?)```", section(), flags=re.DOTALL)
    examples = [block for block in blocks if "[[tests]]" not in block]  # rules-test files: checked below
    names = [rule.name for example in examples for rule in load_text(example)]
    kinds = {"donations-down", "donations-anomaly", "new-fatal-issue", "regression-in-production"}
    assert kinds <= set(names)
    assert len(examples) >= 4


def test_the_rules_test_example_in_the_readme_is_a_valid_test_file(tmp_path: Path) -> None:
    from opswatch.server.rules.ruletest import read_file

    [block] = [b for b in re.findall(r"```toml\n(.*?)```", section(), flags=re.DOTALL) if "[[tests]]" in b]
    (tmp_path / "rules.toml").write_text((README.parent / "examples" / "rules.toml").read_text())
    (tmp_path / "rules_test.toml").write_text(block)
    rules, cases, _delay = read_file(tmp_path / "rules_test.toml")
    assert rules and cases
