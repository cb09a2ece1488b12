"""A self-contained HTML page for the report, rendered from the markdown the report writes.

Only the subset ``report.md`` uses is supported (headings, paragraphs, bullet lines, pipe tables,
images with captions, inline code and bold), which keeps the page free of any extra dependency.
Images found beside the report are embedded as base64 ``data:`` URIs, so the page is one file.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px;display:block;overflow-x:auto;max-width:100%}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}code{background:#f3f3f3;padding:0 3px}
figure{margin:1em 0}figure img{max-width:100%;display:block}figcaption{font-size:13px;color:#555}ul{padding-left:1.2em}"""


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


def _image(src: str, alt: str, base: Path | None) -> str:
    """A figure: the file beside the report embedded as a ``data:`` URI (else linked)."""
    path = Path(base) / src if base is not None else None
    if path is not None and path.is_file():
        mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}.get(
            path.suffix.lower(), "application/octet-stream"
        )
        src = f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"
    return f'<figure><img src="{html.escape(src)}" alt="{html.escape(alt)}"><figcaption>{_inline(alt)}</figcaption></figure>'


def _table(lines: list[str]) -> str:
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in lines
        if not re.fullmatch(r"\|(-+\|)+", line.strip())
    ]
    head, body = rows[0], rows[1:]
    out = ["<table>", "<tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body]
    return "\n".join(out + ["</table>"])


def markdown_to_html(text: str, title: str = "genunlearn report", base: Path | None = None) -> str:
    """The page; ``base`` is the folder the markdown's images are read from (embedded)."""
    blocks, table, items = [], [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            table.append(line)
            continue
        if table:
            blocks.append(_table(table))
            table = []
        if line.startswith("- "):
            items.append(f"<li>{_inline(line[2:])}</li>")
            continue
        if items:
            blocks.append("<ul>" + "".join(items) + "</ul>")
            items = []
        if m := re.fullmatch(r"(#+) (.*)", line):
            level = len(m.group(1))
            blocks.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
        elif m := re.fullmatch(r"!\[(.*)\]\((.*)\)", line):
            blocks.append(_image(m.group(2), m.group(1), base))
        elif line.strip():
            blocks.append(f"<p>{_inline(line)}</p>")
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
        + "\n".join(blocks)
        + "\n</body></html>\n"
    )
