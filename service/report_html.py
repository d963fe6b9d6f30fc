"""`rnnsweep report`: one self-contained HTML file (inline CSS and SVG, no scripts, no
network) that answers "which runs went wrong, how, and what should I change?".

Sections: label counts; a heat map of the label over the grid's two main axes; training
and validation loss curves grouped by label (the 20-window curves of run_curves); every
run's evidence and fix; and, where `rnnsweep fix` followed up this sweep's runs (or this
sweep is such a follow-up), each fix tried: before -> after (the fix_outcomes view).
"""

from __future__ import annotations

import html
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rnnsweep.service.diagnose import LABELS, diagnose
from rnnsweep.service.query import run_query
from rnnsweep.service.reports import column_of

COLORS = {
    "healthy": "#2e7d32",
    "overfitting": "#ef6c00",
    "l2_collapsed": "#6a1b9a",
    "diverged": "#c62828",
    "constant_output": "#1565c0",
}
CURVES_PER_PANEL = 60  # more lines than this is a blur; the panel says how many it left out
PREFERRED_AXES = ("optimizer.lr", "optimizer.weight_decay")

SWEEP = "select name, grid_text, axes, updated_at from sweeps where name = $sweep"
PARAMS = "select * from run_params where sweep = $sweep"
CURVES = """
select run_id, metric, list(last_step order by window_index) as steps, list(mean_value order by window_index) as values
from run_curves
where metric in ('train_loss', 'val_loss') and run_id in (select run_id from runs where sweep = $sweep)
group by all
"""
FIX_PAIRS = """
select *
from fix_outcomes
where $sweep in (sweep, follow_up_sweep)
order by follow_up_sweep, follow_up_index
"""


@dataclass(frozen=True)
class Run:
    run_id: str
    label: str
    confidence: str
    onset_step: int | None
    evidence: str
    fix: str | None
    params: dict


def build_report(warehouse: Path, sweep: str, overrides: dict[str, float] | None = None) -> str:
    diagnosis = diagnose(warehouse, sweep, overrides).to_pylist()
    sweep_row = run_query(warehouse, SWEEP, {"sweep": sweep}).to_pylist()[0]
    params = {r["run_id"]: r for r in run_query(warehouse, PARAMS, {"sweep": sweep}).to_pylist()}
    curves: dict[str, dict[str, tuple[list, list]]] = defaultdict(dict)
    for row in run_query(warehouse, CURVES, {"sweep": sweep}).to_pylist():
        curves[row["run_id"]][row["metric"]] = (row["steps"], row["values"])
    runs = [
        Run(
            d["run_id"],
            d["label"],
            d["confidence"],
            d["onset_step"],
            d["evidence"],
            d["fix"],
            params.get(d["run_id"], {}),
        )
        for d in diagnosis
    ]
    # Seeds make a poor heat-map axis: runs that differ only by seed share a cell instead.
    axes = [a for a in sweep_row["axes"] if a != "sweep.seeds"] or list(sweep_row["axes"])
    axes = sorted(axes, key=lambda a: PREFERRED_AXES.index(a) if a in PREFERRED_AXES else len(PREFERRED_AXES))
    columns = [column_of(a) for a in axes]
    pairs = run_query(warehouse, FIX_PAIRS, {"sweep": sweep}, thresholds=overrides).to_pylist()
    return _page(sweep, sweep_row, runs, columns, curves, pairs)


def _page(sweep: str, sweep_row: dict, runs: list[Run], columns: list[str], curves: dict, pairs: list[dict]) -> str:
    counts = Counter(r.label for r in runs)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    badges = "".join(
        f'<span class="badge" style="background:{COLORS[label]}">{label} {counts[label]}</span>'
        for label in LABELS
        if counts[label]
    )
    parts = [
        f"<h1>rnnsweep report: {_e(sweep)}</h1>",
        f'<p class="meta">{len(runs)} runs · generated {generated} · warehouse updated {_e(str(sweep_row["updated_at"])[:19])}</p>',
        f'<p class="badges">{badges}</p>',
        _heat_map(runs, columns[:2]) if columns else "",
        "<h2>Loss curves by label</h2>",
        '<p class="meta">Mean of each of 20 equal step windows per run; solid: training loss, dashed: validation loss. Log scale.</p>',
        '<div class="panels">'
        + "".join(
            _curve_panel(label, [r for r in runs if r.label == label], curves) for label in LABELS if counts[label]
        )
        + "</div>",
        "<h2>Runs</h2>",
        _run_table(runs, columns),
    ]
    if pairs:
        parts.append(_fix_table(pairs))
    if sweep_row["grid_text"]:
        parts.append(f"<details><summary>grid file</summary><pre>{_e(sweep_row['grid_text'])}</pre></details>")
    return _TEMPLATE.replace("{title}", _e(f"rnnsweep · {sweep}")).replace("{body}", "\n".join(parts))


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return "" if value is None else str(value)


def _heat_map(runs: list[Run], columns: list[str]) -> str:
    """Label over the two main axes; a cell's colour is its most common label."""
    x_name, y_name = columns[0], (columns[1] if len(columns) > 1 else None)
    xs = sorted({_fmt(r.params.get(x_name)) for r in runs}, key=_sort_key)
    ys = sorted({_fmt(r.params.get(y_name)) for r in runs}, key=_sort_key) if y_name else [""]
    cells: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for r in runs:
        cells[(_fmt(r.params.get(x_name)), _fmt(r.params.get(y_name)) if y_name else "")][r.label] += 1
    head = "".join(f"<th>{_e(x)}</th>" for x in xs)
    rows = []
    for y in ys:
        tds = []
        for x in xs:
            count = cells.get((x, y))
            if not count:
                tds.append("<td></td>")
                continue
            # the most common label; on a tie, the problem rather than "healthy"
            label, n = max(count.items(), key=lambda item: (item[1], item[0] != "healthy"))
            total = sum(count.values())
            detail = ", ".join(f"{k} {v}" for k, v in count.most_common())
            tds.append(
                f'<td class="cell" style="background:{COLORS[label]}" title="{_e(detail)}">{_e(label)}<br><small>{n}/{total}</small></td>'
            )
        rows.append(f"<tr><th>{_e(y)}</th>{''.join(tds)}</tr>")
    corner = f"{_e(y_name)} ↓ / {_e(x_name)} →" if y_name else _e(x_name)
    return f'<h2>Label by {_e(x_name)}{" × " + _e(y_name) if y_name else ""}</h2><table class="heat"><tr><th>{corner}</th>{head}</tr>{"".join(rows)}</table>'


def _sort_key(text: str):
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def _curve_panel(label: str, runs: list[Run], curves: dict, width: int = 360, height: int = 220) -> str:
    shown = runs[:CURVES_PER_PANEL]
    lines = [(curves[r.run_id].get(m), m) for r in shown for m in ("train_loss", "val_loss") if r.run_id in curves]
    points = [
        (s, v)
        for series, _ in lines
        if series
        for s, v in zip(*series, strict=True)
        if v is not None and v > 0 and math.isfinite(v)
    ]
    title = f'<h3 style="color:{COLORS[label]}">{label} · {len(runs)} run{"s" if len(runs) != 1 else ""}</h3>'
    if not points:
        return f'<div class="panel">{title}<p class="meta">no finite loss values</p></div>'
    pad_l, pad_b, pad_t, pad_r = 46, 24, 8, 8
    x_max = max(s for s, _ in points) or 1
    lo, hi = math.log10(min(v for _, v in points)), math.log10(max(v for _, v in points))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5

    def px(step):
        return pad_l + (width - pad_l - pad_r) * step / x_max

    def py(value):
        return pad_t + (height - pad_t - pad_b) * (hi - math.log10(value)) / (hi - lo)

    svg = [
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{label} loss curves">'
    ]
    for tick in log_ticks(lo, hi):
        y = py(tick)
        svg.append(
            f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/><text x="{pad_l - 4}" y="{y + 4:.1f}" class="tick" text-anchor="end">{tick:g}</text>'
        )
    svg.append(f'<line x1="{pad_l}" x2="{pad_l}" y1="{pad_t}" y2="{height - pad_b}" class="axis"/>')
    svg.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{height - pad_b}" y2="{height - pad_b}" class="axis"/>')
    svg.append(
        f'<text x="{width - pad_r}" y="{height - 6}" class="tick" text-anchor="end">step {x_max:,}</text><text x="{pad_l}" y="{height - 6}" class="tick">0</text>'
    )
    for series, metric in lines:
        if not series:
            continue
        path = " ".join(
            f"{px(s):.1f},{py(v):.1f}"
            for s, v in zip(*series, strict=True)
            if v is not None and v > 0 and math.isfinite(v)
        )
        dash = ' stroke-dasharray="4 3"' if metric == "val_loss" else ""
        svg.append(
            f'<polyline points="{path}" fill="none" stroke="{COLORS[label]}" stroke-opacity="0.55" stroke-width="1.3"{dash}/>'
        )
    svg.append("</svg>")
    more = f'<p class="meta">first {CURVES_PER_PANEL} of {len(runs)} shown</p>' if len(runs) > CURVES_PER_PANEL else ""
    return f'<div class="panel">{title}{"".join(svg)}{more}</div>'


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks for a log axis from 10**lo to 10**hi: 1, 2 and 5 times powers of ten (powers only
    when crowded), or round linear steps when the range is too narrow for two of those."""
    ticks = [
        m * 10.0**k
        for k in range(math.floor(lo), math.ceil(hi) + 1)
        for m in (1, 2, 5)
        if lo <= math.log10(m) + k <= hi
    ]
    if len(ticks) > 6:
        return [t for t in ticks if abs(math.log10(t) - round(math.log10(t))) < 1e-9]
    if len(ticks) >= 2:
        return ticks
    bottom, top = 10.0**lo, 10.0**hi
    step = 10.0 ** math.floor(math.log10(top - bottom))
    return [round(k * step, 12) for k in range(math.ceil(bottom / step), math.floor(top / step) + 1)]


def _run_table(runs: list[Run], columns: list[str]) -> str:
    order = {
        label: i for i, label in enumerate(("diverged", "constant_output", "l2_collapsed", "overfitting", "healthy"))
    }
    head = "".join(f"<th>{_e(c)}</th>" for c in ["run", *columns, "label", "confidence", "onset", "evidence", "fix"])
    rows = []
    for r in sorted(runs, key=lambda r: (order[r.label], r.run_id)):
        values = "".join(f"<td>{_e(_fmt(r.params.get(c)))}</td>" for c in columns)
        onset = "" if r.onset_step is None else f"{r.onset_step:,}"
        rows.append(
            f'<tr><td class="mono">{_e(r.run_id)}</td>{values}<td><span class="badge" style="background:{COLORS[r.label]}">{r.label}</span></td>'
            f"<td>{_e(r.confidence)}</td><td>{onset}</td><td>{_e(r.evidence or '')}</td><td>{_e(r.fix or '')}</td></tr>"
        )
    return f'<table class="runs"><tr>{head}</tr>{"".join(rows)}</table>'


def _fix_table(pairs: list[dict]) -> str:
    """Each follow-up beside the run it fixes; a run counts as fixed when one of its follow-ups is healthy."""
    tried = {p["run_id"] for p in pairs}
    fixed = {p["run_id"] for p in pairs if p["fixed"]}

    def badge(label):
        return f'<span class="badge" style="background:{COLORS[label]}">{label}</span>' if label else "not diagnosed"

    head = "".join(
        f"<th>{h}</th>" for h in ("run", "sweep", "label", "follow-up", "sweep", "label after", "best score", "fixed")
    )
    rows = []
    for p in pairs:
        score = f"{p['score']} {_fmt(p['best_before'])} → {_fmt(p['best_after'])}" if p["score"] else ""
        rows.append(
            f'<tr><td class="mono">{_e(p["run_id"])}</td><td>{_e(_fmt(p["sweep"]))}</td><td>{badge(p["label_before"])}</td>'
            f'<td class="mono">{_e(p["follow_up"])}</td><td>{_e(p["follow_up_sweep"])}</td><td>{badge(p["label_after"])}</td>'
            f"<td>{_e(score)}</td><td>{'yes' if p['fixed'] else 'no'}</td></tr>"
        )
    return (
        "<h2>Fixes tried</h2>"
        f'<p class="meta">{len(fixed)} of {len(tried)} runs fixed: a follow-up trial of <code>rnnsweep fix</code> labelled healthy.</p>'
        f'<table class="runs"><tr>{head}</tr>{"".join(rows)}</table>'
    )


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1b1b1b; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; } h3 { font-size: 14px; margin: 0 0 4px; }
.meta { color: #666; margin: 2px 0; }
.badge { display: inline-block; color: #fff; border-radius: 10px; padding: 1px 9px; margin: 2px 4px 2px 0; font-size: 12px; white-space: nowrap; }
table { border-collapse: collapse; }
.heat th, .heat td { border: 1px solid #fff; padding: 6px 10px; text-align: center; font-size: 12px; }
.heat th { background: #f1f1f1; }
.heat td.cell { color: #fff; min-width: 84px; }
.panels { display: flex; flex-wrap: wrap; gap: 16px; }
.panel { border: 1px solid #e3e3e3; border-radius: 6px; padding: 8px; }
svg .grid { stroke: #eee; } svg .axis { stroke: #999; } svg .tick { font-size: 10px; fill: #777; }
.runs th, .runs td { border-bottom: 1px solid #eee; padding: 4px 8px; text-align: left; vertical-align: top; font-size: 12px; }
.runs th { background: #f6f6f6; position: sticky; top: 0; }
.mono { font-family: ui-monospace, monospace; }
pre { background: #f6f6f6; padding: 8px; }
</style></head>
<body>
{body}
</body></html>
"""


def write_report(warehouse: Path, sweep: str, output: Path, overrides: dict[str, float] | None = None) -> int:
    """Write the report; returns its size in bytes."""
    text = build_report(warehouse, sweep, overrides)
    output.write_text(text, encoding="utf-8")
    return len(text.encode())
