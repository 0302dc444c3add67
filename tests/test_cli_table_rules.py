"""The CLI's one table helper, its rules on their own: key columns whole, free text wrapped at spaces
(inside a word only after / . _ : - when the word is too long), optional columns out first, and no
width at all when piped without ``COLUMNS``."""

from __future__ import annotations

import io

import pytest

from opswatch.cli._table import MAX_LINES, Column, output_width, table, text_width, wrap

COLUMNS = [
    Column("ID", right=True),
    Column("Status"),
    Column("Events", right=True),
    Column("24h", optional=True),
    Column("Last seen"),
    Column("Issue", free=True),
]
TITLE = "CardDeclinedError: Your card was declined by the issuing bank"
ROW = ["12", "unresolved", "1234", "▁▂▃▄▅▆▇█" * 3, "3m ago", (TITLE, "payments/stripe.py in charge")]


def test_it_wraps_at_spaces_and_never_inside_a_word_that_fits() -> None:
    lines = wrap("CardDeclinedError: Your card was declined", 20)
    assert lines == ["CardDeclinedError:", "Your card was", "declined"]


def test_it_breaks_a_word_longer_than_the_column_after_a_separator() -> None:
    assert wrap("/srv/app/payments/stripe_gateway.py", 16) == ["/srv/app/", "payments/stripe_", "gateway.py"]


def test_it_shortens_a_paragraph_past_the_line_limit_with_an_ellipsis() -> None:
    lines = wrap(" ".join(["word"] * 40), 20, MAX_LINES)
    assert len(lines) == MAX_LINES and lines[-1].endswith("word…") and all(len(x) <= 20 for x in lines)


def test_it_keeps_key_columns_whole_and_wraps_the_free_one_at_80() -> None:
    lines, left_out = table(COLUMNS, [ROW], width=80)
    assert left_out == ["24h"]
    assert lines[0].split() == ["ID", "Status", "Events", "Last", "seen", "Issue"]
    assert lines[1].split()[:5] == ["12", "unresolved", "1234", "3m", "ago"]
    assert all(text_width(line) <= 80 for line in lines)
    assert " ".join(line[lines[0].index("Issue") :] for line in lines[1:3]).split() == TITLE.split()


def test_it_keeps_the_optional_column_when_there_is_room() -> None:
    lines, left_out = table(COLUMNS, [ROW], width=140)
    assert left_out == [] and "▁▂▃▄▅▆▇█" in lines[1]


def test_it_lays_out_one_line_a_row_with_no_width() -> None:
    lines, left_out = table(COLUMNS, [ROW], width=None)
    assert left_out == [] and len(lines) == 2
    assert lines[1].endswith(f"{TITLE} · payments/stripe.py in charge")


def test_it_takes_no_width_from_a_pipe_but_takes_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert output_width(io.StringIO()) is None
    monkeypatch.setenv("COLUMNS", "80")
    assert output_width(io.StringIO()) == 80


def test_it_counts_wide_characters_as_two_cells() -> None:
    lines, _ = table(
        [Column("name", free=True), Column("n", right=True)],
        [["東京 大阪 名古屋 札幌 福岡 神戸 京都", "7"]],
        width=24,
    )
    assert all(text_width(line) <= 24 for line in lines)
