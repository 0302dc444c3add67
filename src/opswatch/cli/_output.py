"""What the CLI writes to a terminal or a file, made safe: stored text never drives the terminal.

Everything the commands print comes from a server that stores what any client sent, so every string
goes through ``clean`` (or ``one_line`` for a table cell) before it is printed: terminal escape
sequences (CSI, OSC such as clipboard writes and window titles, DCS/APC/PM strings, their 8-bit forms)
are removed whole, other control characters (carriage return, backspace, bell, DEL, C1) and the
bidirectional overrides that reorder what a reader sees are dropped. Nothing here interprets markup:
``[/]`` or ``[link=...]`` in a message are printed as they are.

``csv_cell`` applies OWASP's rule against formula injection to ``--format csv`` (a cell starting with
``= + - @``, tab or carriage return gets a leading ``'``), and ``print_json`` writes JSON whose C1
controls and bidi overrides are ``\\u`` escapes (JSON stays valid; the terminal sees no raw control).
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any, Final, TextIO

#: Escape sequences, removed whole: OSC (ESC ] ... BEL or ST; unterminated: to the end), DCS/SOS/PM/APC
#: strings, CSI, two-character escapes, and the 8-bit CSI and OSC forms.
_SEQUENCE: Final = re.compile(
    r"""
      \x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?
    | \x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?
    | \x1b\[[0-?]*[\x20-/]*[@-~]
    | \x1b[\x20-/]*[0-~]
    | \x9b[0-?]*[\x20-/]*[@-~]
    | [\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?
    """,
    re.VERBOSE,
)
#: Control characters other than tab and newline, and the bidi embeddings, overrides and isolates.
_CONTROL: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SPACES: Final = re.compile(r"\s*[\t\n]\s*")
_JSON_UNSAFE: Final = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
#: OWASP's formula-injection triggers for CSV cells.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def clean(text: str) -> str:
    """``text`` without escape sequences and control characters (tab and newline stay)."""
    if text.isprintable():
        return text
    return _CONTROL.sub("", _SEQUENCE.sub("", text))


def clean_tree(value: Any) -> Any:
    """``value`` (JSON data) with ``clean`` applied to every string in it, keys included."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(str(key)): clean_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clean_tree(item) for item in value]
    return value


def one_line(text: str) -> str:
    """``clean(text)`` on one line: tabs and newlines become single spaces."""
    return _SPACES.sub(" ", clean(text)).strip()


def csv_cell(text: str) -> str:
    """A CSV cell that spreadsheets do not run as a formula (OWASP: prefix ``'`` to ``= + - @ \\t \\r``),
    cleaned like every output (tabs and newlines stay; the CSV writer quotes them)."""
    text = clean(text)
    return "'" + text if text.startswith(_FORMULA_START) else text


def print_json(value: Any, *, indent: int | None = 2, file: TextIO | None = None) -> None:
    """``value`` as JSON on ``file`` (stdout), with C1 controls and bidi overrides written as escapes."""
    text = json_text(json.dumps(value, indent=indent, ensure_ascii=False))
    out = file or sys.stdout
    out.write(text + "\n")
    out.flush()


def json_text(text: str) -> str:
    """JSON text with C1 controls and bidi overrides written as ``\\u`` escapes (still the same JSON)."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def colors_enabled(file: TextIO | None = None) -> bool:
    """Whether to color output on ``file`` (stdout): a terminal, and ``NO_COLOR`` not set."""
    out = file or sys.stdout
    return not os.environ.get("NO_COLOR") and out.isatty()


_CODES: Final = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}


def paint(text: str, style: str | None, enabled: bool) -> str:
    """``text`` in ``style`` (bold, dim, red, green, yellow, cyan) when ``enabled``; as is otherwise."""
    if not enabled or not style or not text:
        return text
    return f"\x1b[{_CODES[style]}m{text}\x1b[0m"
