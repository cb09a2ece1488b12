"""A standalone HTML page for the report, rendered from the markdown the report writes.

Only the subset ``report.md`` uses is supported (headings, paragraphs, pipe tables, images,
inline code), which keeps the page free of any extra dependency.
"""

from __future__ import annotations

import html
import re

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}img{max-width:100%;margin:.5em 0}code{background:#f3f3f3;padding:0 3px}"""


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def _table(lines: list[str]) -> str:
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines if not re.fullmatch(r"\|(-+\|)+", line.strip())]
    head, body = rows[0], rows[1:]
    out = ["<table>", "<tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body]
    return "\n".join(out + ["</table>"])


def markdown_to_html(text: str, title: str = "genunlearn report") -> str:
    blocks, table = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            table.append(line)
            continue
        if table:
            blocks.append(_table(table))
            table = []
        if m := re.fullmatch(r"(#+) (.*)", line):
            level = len(m.group(1))
            blocks.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
        elif m := re.fullmatch(r"!\[(.*)\]\((.*)\)", line):
            blocks.append(f'<img src="{html.escape(m.group(2))}" alt="{html.escape(m.group(1))}">')
        elif line.strip():
            blocks.append(f"<p>{_inline(line)}</p>")
    return f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n" + "\n".join(blocks) + "\n</body></html>\n"
