"""The waterfall's span rows as HTML, written in one pass in Python (a template loop costs ~180 us a row,
too slow for a trace of thousands of spans; this is ~20 us).

Every text taken from a span is escaped (``html.escape``, quotes too), as the autoescaping templates would;
texts that repeat (services, kinds, names, attribute keys) are escaped once per page.
Each row is a ``<details>`` element: the summary holds the name (indented by depth), the duration and
the bar (SVG: the dashboard's CSP allows no inline styles); opening it shows the span's attributes.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any, Final

from markupsafe import Markup

from .render import cell, millis, pretty_json

#: Deepest indentation the stylesheet has a class for (``.depth-30``).
MAX_INDENT: Final = 30


class _Escaper(dict[Any, str]):
    """``escaper[value]``: ``value`` as text safe inside an element or a quoted attribute, remembered."""

    def __missing__(self, value: Any) -> str:
        made = self[value] = html.escape(str(value))
        return made


def span_rows(rows: Sequence[Mapping[str, Any]]) -> Markup:
    """The rows of ``opswatch.server.ui.traces.waterfall`` as ``<details>`` elements, in their order."""
    escape = _Escaper().__getitem__
    out: list[str] = []
    add = out.append
    for row in rows:
        span_id = escape(row["span_id"])
        error = row["status"] == "error"
        classes = "span" + (" critical" if row["critical"] else "") + (" error" if error else "")
        bar = "bar-error" if error else ("bar-critical" if row["critical"] else "bar-span")
        add(
            f'<details class="{classes}" id="span-{span_id}" data-span-id="{span_id}" '
            f'data-depth="{row["depth"]}">'
            f'<summary><span class="name depth-{min(row["depth"], MAX_INDENT)}">'
            + ('<b class="err-mark" title="error">!</b> ' if error else "")
            + f'<span class="svc">{escape(row["service"])}</span> {escape(row["name"])}</span>'
            f'<span class="dur">{millis(row["duration_ms"])}</span>'
            '<svg class="lane" viewBox="0 0 1000 12" preserveAspectRatio="none" aria-hidden="true">'
            f'<rect class="{bar}" x="{row["x"]}" y="1" width="{row["w"]}" height="10"/></svg></summary>'
            '<div class="attrs"><table class="fields">'
            f"<tr><th>span id</th><td><code>{span_id}</code>"
        )
        if row["parent"]:
            parent = escape(row["parent"])
            add(f' · parent <a href="#span-{parent}"><code>{parent}</code></a>')
        message = f": {escape(row['status_message'])}" if row["status_message"] else ""
        add(
            "</td></tr><tr><th>kind · status</th>"
            f"<td>{escape(row['kind'])} · {escape(row['status'])}{message}</td></tr>"
            f"<tr><th>starts at</th><td>+{millis(row['offset_ms'])}"
            + (" · on the critical path" if row["critical"] else "")
            + "</td></tr>"
        )
        attributes = row["attributes"]
        if isinstance(attributes, Mapping):
            for key in sorted(attributes, key=str):
                add(f"<tr><th>{escape(key)}</th><td><pre>{escape(cell(attributes[key]))}</pre></td></tr>")
        if row["events"]:
            add(f"<tr><th>events</th><td><pre>{escape(pretty_json(row['events']))}</pre></td></tr>")
        add("</table></div></details>\n")
    return Markup("".join(out))
