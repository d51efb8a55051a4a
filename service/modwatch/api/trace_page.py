"""A job's locally kept traces as one HTML page: a waterfall per trace, spans nested under their parents,
each bar placed on the trace's time line. Self-contained (inline CSS, no script), so it works offline."""

from __future__ import annotations

from html import escape
from typing import Any

STYLE = """
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; width: 100%; margin-bottom: 2em; }
td, th { padding: 3px 6px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; white-space: nowrap; }
th { font-weight: 600; background: #f6f6f6; }
td.timeline { width: 45%; position: relative; }
.bar { position: absolute; top: 5px; height: 12px; min-width: 2px; border-radius: 2px; background: #4a7bd0; }
.bar.ERROR { background: #d04a4a; }
.service { color: #666; }
details { font-size: 12px; color: #444; white-space: normal; }
code { font-size: 12px; }
"""


def _depths(spans: list[dict[str, Any]]) -> dict[str, int]:
    parents = {span["span_id"]: span["parent_span_id"] for span in spans}
    depths: dict[str, int] = {}
    for span_id in parents:
        depth, parent, seen = 0, parents[span_id], {span_id}
        while parent in parents and parent not in seen:  # a parent exported elsewhere ends the chain
            seen.add(parent)
            depth, parent = depth + 1, parents[parent]
        depths[span_id] = depth
    return depths


def _ordered(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Depth first: each span followed by its children, siblings in start order."""
    ids = {span["span_id"] for span in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:  # already in start order
        parent = span["parent_span_id"] if span["parent_span_id"] in ids else None
        children.setdefault(parent, []).append(span)
    ordered: list[dict[str, Any]] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        span = stack.pop()
        ordered.append(span)
        stack.extend(reversed(children.get(span["span_id"], [])))
    return ordered


def _trace_table(trace: dict[str, Any]) -> str:
    spans = trace["spans"]
    if not spans:
        return (f"<p>Trace <code>{escape(trace['trace_id'])}</code>: no spans kept (not exported yet, or older than "
                "the store keeps). Reload in a few seconds.</p>")
    start = min(span["start_ns"] for span in spans)
    end = max(span["end_ns"] or span["start_ns"] for span in spans)
    total = max(end - start, 1)
    depths = _depths(spans)
    rows = []
    for span in _ordered(spans):
        span_end = span["end_ns"] or span["start_ns"]
        left = 100 * (span["start_ns"] - start) / total
        width = 100 * (span_end - span["start_ns"]) / total
        attributes = "".join(f"<div><code>{escape(str(key))}</code> = {escape(str(value))}</div>"
                             for key, value in sorted(span["attributes"].items()))
        events = "".join(f"<div>event <code>{escape(event['name'])}</code> at +"
                         f"{(event['time_ns'] - start) / 1e6:.1f} ms</div>" for event in span["events"])
        status = span["status"] + (f": {escape(span['status_message'])}" if span["status_message"] else "")
        rows.append(
            "<tr>"
            f"<td style=\"padding-left:{6 + 18 * depths[span['span_id']]}px\">{escape(span['name'])}"
            f"<details><summary>{escape(span['kind'])}, {escape(status)}</summary>{attributes}{events}</details></td>"
            f"<td class=\"service\">{escape(str(span['service']))}</td>"
            f"<td>{(span['start_ns'] - start) / 1e6:.1f}</td>"
            f"<td>{(span_end - span['start_ns']) / 1e6:.1f}</td>"
            f"<td class=\"timeline\"><div class=\"bar {escape(span['status'])}\" "
            f"style=\"left:{left:.2f}%;width:{width:.2f}%\"></div></td>"
            "</tr>"
        )
    return (f"<h2>Trace <code>{escape(trace['trace_id'])}</code>, {len(spans)} spans, {total / 1e6:.1f} ms</h2>"
            "<table><tr><th>span</th><th>service</th><th>start (ms)</th><th>duration (ms)</th><th>timeline</th></tr>"
            + "".join(rows) + "</table>")


def render(job_id: str, traces: list[dict[str, Any]]) -> str:
    body = "".join(_trace_table(trace) for trace in traces) or "<p>This job carries no trace id.</p>"
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>trace of job {escape(job_id)}</title>"
            f"<style>{STYLE}</style></head><body><h1>Job <code>{escape(job_id)}</code></h1>{body}</body></html>")
