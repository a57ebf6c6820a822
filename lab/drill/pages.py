"""What report.html and matrix.html share: one inline style (no network, no fonts, no scripts), the page
frame, tables, and the line that says what a figure was measured on."""

from __future__ import annotations

import html
import os
import platform
from typing import Any


def machine() -> dict[str, Any]:
    """What a figure was measured on: it goes beside every figure the project publishes."""
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_1min": round(os.getloadavg()[0], 2),
    }


def machine_line(m: dict[str, Any]) -> str:
    return f"{m['cpus']} CPUs, {m['memory_gib']} GiB, {m['kernel']}, Python {m['python']}, load {m['load_1min']}"


#: The pages' style (report.html, matrix.html): inline, no fonts or scripts from anywhere.
PAGE_CSS = """
:root{--ink:#1d2733;--muted:#5b6b7c;--line:#d9e0e7;--bg:#f6f8fa;--bad:#b03a2e;--bad-bg:#fdecea;--ok:#1e8449;
--warn:#9a6700;--warn-bg:#fff4d6}
*{box-sizing:border-box} body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1320px;margin:0 auto;padding:24px 32px 48px;background:#fff;min-height:100vh}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:18px;margin:32px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--bg);padding:1px 4px;
border-radius:3px}
.meta{color:var(--muted);font-size:13px;margin:2px 0} .meta b{color:var(--ink);font-weight:600}
.story{font-size:17px;line-height:1.55;margin:18px 0;padding:14px 18px;border-left:4px solid #1f4e9c;background:#eef3fa}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{flex:1 1 150px;border:1px solid var(--line);border-radius:6px;padding:10px 14px;background:#fff}
.card .value{font-size:24px;font-weight:650} .card .label{color:var(--muted);font-size:12px}
.card.bad{border-color:var(--bad);background:var(--bad-bg)} .card.bad .value{color:var(--bad)}
.card.good .value{color:var(--ok)}
figure{margin:16px 0} figure img{width:100%;height:auto;border:1px solid var(--line);border-radius:4px}
figcaption{color:var(--muted);font-size:13px;margin-top:6px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
thead th{background:var(--bg);font-weight:600;border-bottom:2px solid var(--line)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
table.kv th{font-weight:500;color:var(--muted);width:22em}
td.bad{background:var(--bad-bg);color:var(--bad);font-weight:650}
table.grid td{white-space:nowrap} table.grid td,table.grid th{padding:4px 6px}
table.grid tbody tr:hover{background:var(--bg)}
.note{background:var(--warn-bg);border-left:4px solid var(--warn);padding:8px 12px;margin:8px 0}
details{margin:8px 0} summary{cursor:pointer;color:#1f4e9c}
dl.legend{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;font-size:13px}
dl.legend dt{font-weight:600} dl.legend dd{margin:0;color:var(--muted)}
"""


def page(title: str, body: str) -> str:
    """A self-contained HTML page around ``body``."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1"><link rel="icon" href="data:,">'
        f"<title>{html.escape(title)}</title><style>{PAGE_CSS}</style></head>\n<body><main>\n{body}\n</main></body></html>\n"
    )


def table(
    head: list[str], rows: list[list[str]], numeric: set[int] | None = None, marked: str = "", kind: str = ""
) -> str:
    """An HTML table; cells are HTML already (escape them); ``numeric``: the columns aligned right. A cell
    that holds ``marked`` (an element with that class) gets the class too (the whole cell coloured);
    ``kind``: the table's class (``grid``: cells never wrap)."""
    numeric = numeric or set()

    def cells(values: list[str], tag: str) -> str:
        out = ""
        for i, value in enumerate(values):
            classes = ["num"] if i in numeric else []
            if marked and f'class="{marked}"' in value:
                classes.append(marked)
            attribute = f' class="{" ".join(classes)}"' if classes else ""
            out += f"<{tag}{attribute}>{value}</{tag}>"
        return out

    body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows)
    attribute = f' class="{kind}"' if kind else ""
    return f"<table{attribute}><thead><tr>{cells(head, 'th')}</tr></thead><tbody>{body}</tbody></table>"
