"""Tables and records for people: the one layout every ``opswatch`` command prints, with the width
rules in one place.

**The width.** On a terminal, tables fit the terminal's width (``COLUMNS`` overrides it). When the
output is not a terminal (piped, redirected), no width is guessed: ``COLUMNS`` when it is set,
otherwise there is no limit, and each row is one line with nothing wrapped or cut (a cell's parts,
such as an issue's title and culprit, are joined by " · "). Programs should
still read ``--format json`` (or ``csv``).

**At a width.** Key columns (ids, statuses, numbers, times, DSNs) always keep their whole text. The
free-text columns (titles, messages, slugs) share what is left, at least ``MIN_FREE`` each: they wrap
at spaces, inside a word only after ``/ . _ : -`` when the word is longer than the column, and take
at most ``MAX_LINES`` lines a paragraph (the last one ends with "…"). Optional columns (a sparkline)
are left out, right to left, when the free text would get less than ``MIN_FREE``, and a line under
the table says so. A table that still does not fit runs past the width rather than cut a key column.

**Records.** ``records`` prints one block per row (``-[ row 1 ]-----`` then ``name  value`` lines), as
psql's ``\\x`` does; ``opswatch query`` switches to it when its rows do not fit (``fits``).

Every cell is passed through ``_output.one_line``: no escape sequence or control character from stored
data reaches the terminal, and no markup is interpreted.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Final, TextIO

from ._output import colors_enabled, one_line, paint

#: The narrowest a free-text column gets before optional columns are left out.
MIN_FREE: Final = 20
#: Lines a wrapped table cell may take; the last one ends with "…" when the text goes on.
MAX_LINES: Final = 3
#: Spaces between columns.
GAP: Final = 2
_BREAK_AFTER: Final = re.compile(r"[/._:\-]")


@dataclasses.dataclass(frozen=True)
class Column:
    """One column: ``free`` text may be wrapped (else the cell stays whole), ``right`` aligns numbers,
    ``optional`` columns go first when space is short, ``style`` picks a color for a cell's text."""

    header: str
    free: bool = False
    right: bool = False
    optional: bool = False
    style: Callable[[str], str | None] | None = None


def output_width(file: TextIO | None = None) -> int | None:
    """The width to lay out for: ``COLUMNS`` when set; else the terminal's width; else None (no limit)."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    out = file or sys.stdout
    try:
        if out.isatty():
            return os.get_terminal_size(out.fileno()).columns or None
    except (OSError, ValueError, AttributeError):
        pass
    return None


@lru_cache(maxsize=4096)
def _char_width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def text_width(text: str) -> int:
    """Terminal cells ``text`` takes (wide East Asian characters take two)."""
    if text.isascii():
        return len(text)
    return sum(_char_width(char) for char in text)


def _cut(text: str, width: int) -> tuple[str, str]:
    """``text`` split where its first part is at most ``width`` cells."""
    if text.isascii():
        return text[:width], text[width:]
    used = 0
    for index, char in enumerate(text):
        used += _char_width(char)
        if used > width:
            return text[:index], text[index:]
    return text, ""


def _break_word(word: str, width: int) -> list[str]:
    """A word longer than ``width`` in pieces, broken after ``/ . _ : -`` where possible."""
    pieces: list[str] = []
    while text_width(word) > width:
        head, _rest = _cut(word, width)
        spots = [m.end() for m in _BREAK_AFTER.finditer(head)]
        at = spots[-1] if spots and spots[-1] >= len(head) // 3 else len(head)
        at = max(at, 1)  # a character wider than the column still goes somewhere
        pieces.append(word[:at])
        word = word[at:]
    if word or not pieces:
        pieces.append(word)
    return pieces


def wrap(text: str, width: int, max_lines: int | None = None) -> list[str]:
    """``text`` wrapped to ``width`` cells at spaces, each of its paragraphs (lines) to at most
    ``max_lines`` lines, the last of them ending in "…" when the paragraph goes on."""
    width = max(width, 1)
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines.extend(_shorten(_wrap_paragraph(paragraph, width), width, max_lines))
    return lines


def _wrap_paragraph(paragraph: str, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in paragraph.split(" "):
        if not word:
            continue
        candidate = f"{line} {word}" if line else word
        if text_width(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        *full, line = _break_word(word, width)
        lines.extend(full)
    lines.append(line)
    return lines


def _shorten(lines: list[str], width: int, max_lines: int | None) -> list[str]:
    if max_lines is None or len(lines) <= max_lines:
        return lines
    last = lines[max_lines - 1]
    while last and text_width(last) + 1 > width:
        last = last.rsplit(" ", 1)[0] if " " in last else _cut(last, width - 1)[0]
    return [*lines[: max_lines - 1], last.rstrip() + "…"]


def _pad(text: str, width: int, right: bool) -> str:
    space = " " * max(0, width - text_width(text))
    return space + text if right else text + space


#: A cell: text (put on one line), or a tuple of paragraphs, each on its own line(s).
Cell = str | tuple[str, ...]


#: What joins a cell's paragraphs when there is no width (one line per row).
JOINER: Final = " · "


def _flat(cell: Cell, joiner: str = "\n") -> str:
    """A cell cleaned (``_output.one_line``), its paragraphs joined by ``joiner``."""
    parts = (cell,) if isinstance(cell, str) else cell
    return joiner.join(one_line(part) for part in parts if part)


def _prepare(rows: Sequence[Sequence[Cell]], joiner: str = "\n") -> list[list[str]]:
    return [[_flat(cell, joiner) for cell in row] for row in rows]


def _natural(columns: Sequence[Column], rows: list[list[str]]) -> list[int]:
    widths = [text_width(column.header) for column in columns]
    for row in rows:
        for index, cell in enumerate(row):
            for part in cell.split("\n"):
                widths[index] = max(widths[index], text_width(part))
    return widths


def _fixed(columns: Sequence[Column], natural: list[int]) -> int:
    """Cells the key columns and the gaps take, plus ``MIN_FREE`` (or less, if shorter) a free column."""
    total = GAP * (len(columns) - 1)
    for column, width in zip(columns, natural, strict=True):
        total += min(width, MIN_FREE) if column.free else width
    return total


def fits(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], width: int | None) -> bool:
    """Whether the table fits ``width`` with its free columns at least ``MIN_FREE`` wide."""
    if width is None:
        return True
    return _fixed(columns, _natural(columns, _prepare(rows))) <= width


def _widths(columns: Sequence[Column], natural: list[int], width: int | None) -> list[int]:
    """Each column's width: natural when it all fits; else free columns share what the others leave."""
    total = sum(natural) + GAP * (len(columns) - 1)
    if width is None or total <= width:
        return natural
    free = [i for i, column in enumerate(columns) if column.free]
    if not free:
        return natural
    left = width - (total - sum(natural[i] for i in free))
    widths = list(natural)
    # Hand out the room, narrowest first: a column narrower than its share keeps its natural width and
    # leaves the rest to the wider ones; none gets less than MIN_FREE (or its natural width, if less).
    for count, index in enumerate(sorted(free, key=lambda i: natural[i])):
        share = left // (len(free) - count)
        widths[index] = min(natural[index], max(share, MIN_FREE))
        left -= widths[index]
    return widths


def table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    *,
    width: int | None,
    color: bool = False,
) -> tuple[list[str], list[str]]:
    """The table's lines at ``width`` (None: no limit, a row per line), and the headers of optional
    columns left out."""
    cells = _prepare(rows, "\n" if width is not None else JOINER)
    shown = list(range(len(columns)))
    left_out: list[str] = []
    while width is not None:
        picked = [columns[i] for i in shown]
        if _fixed(picked, _natural(picked, [[row[i] for i in shown] for row in cells])) <= width:
            break
        optional = [i for i in shown if columns[i].optional]
        if not optional:
            break
        shown.remove(optional[-1])
        left_out.insert(0, columns[optional[-1]].header)
    picked = [columns[i] for i in shown]
    cells = [[row[i] for i in shown] for row in cells]
    widths = _widths(picked, _natural(picked, cells), width)
    header = [paint(_pad(c.header, w, c.right), "bold", color) for c, w in zip(picked, widths, strict=True)]
    lines = [(" " * GAP).join(header).rstrip()]
    for row in cells:
        # Each cell as (line, paragraph number): a cell's later paragraphs (a culprit under a title, a
        # schedule under a slug) are dimmed on a terminal.
        wrapped = [
            [
                (line, number)
                for number, paragraph in enumerate(cell.split("\n"))
                for line in (
                    wrap(paragraph, w, MAX_LINES) if c.free and text_width(paragraph) > w else [paragraph]
                )
            ]
            for c, w, cell in zip(picked, widths, row, strict=True)
        ]
        for n in range(max(len(parts) for parts in wrapped)):
            parts = []
            for c, w, cell_lines in zip(picked, widths, wrapped, strict=True):
                text, paragraph = cell_lines[n] if n < len(cell_lines) else ("", 0)
                padded = _pad(text, w, c.right)
                if color and text:
                    style = c.style(text) if c.style else ("dim" if paragraph else None)
                    padded = padded.replace(text, paint(text, style, True), 1)
                parts.append(padded)
            lines.append((" " * GAP).join(parts).rstrip())
    return lines, left_out


def print_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    *,
    title: str | None = None,
    file: TextIO | None = None,
) -> None:
    """Print ``title`` and the table at the output's width (see the module docstring)."""
    out = file or sys.stdout
    color = colors_enabled(out)
    lines, left_out = table(columns, rows, width=output_width(out), color=color)
    if title:
        out.write(paint(one_line(title), "bold", color) + "\n")
    out.write("\n".join(lines) + "\n")
    if left_out:
        out.write(f"({', '.join(left_out)} left out to fit the width; --format json has everything)\n")
    out.flush()


def pairs(items: Sequence[tuple[str, Cell]], *, width: int | None, right_labels: bool = False) -> list[str]:
    """``label  value`` lines; values wrap under themselves at ``width`` (labels are the command's own)."""
    if not items:
        return []
    label_width = max(text_width(label) for label, _ in items)
    room = None if width is None else max(MIN_FREE, width - label_width - GAP)
    lines: list[str] = []
    for label, value in items:
        text = _flat(value)
        parts = text.split("\n") if room is None else wrap(text, room)
        indent = " " * (label_width + GAP)
        lines.append(_pad(label, label_width, right_labels) + " " * GAP + parts[0])
        lines.extend(indent + part for part in parts[1:])
    return [line.rstrip() for line in lines]


def records(headers: Sequence[str], rows: Sequence[Sequence[Cell]], *, width: int | None) -> list[str]:
    """One block per row, as psql's expanded display: ``-[ row N ]---`` then ``header  value`` lines."""
    lines: list[str] = []
    rule = min(width or 40, 40)
    for number, row in enumerate(rows, start=1):
        mark = f"-[ row {number} ]"
        lines.append(mark + "-" * max(0, rule - len(mark)))
        lines.extend(pairs([(one_line(h), cell) for h, cell in zip(headers, row, strict=True)], width=width))
    return lines
