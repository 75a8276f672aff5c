"""Inline SVG charts drawn in Python: no JavaScript library, no CDN, no map tiles.

Each function returns an SVG string. Colours are CSS classes defined in report/page.py, so the
drawing and the styling stay apart. Coordinates are rounded to 0.1 px to keep the file small.
"""

from __future__ import annotations

import math
from html import escape
from typing import Sequence

Number = float | int | None


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    """About `n` round tick values covering lo..hi."""
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [lo] if math.isfinite(lo) else [0.0]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    ticks, t = [], start
    while t <= hi + 1e-9:
        ticks.append(round(t, 10))
        t += step
    return ticks


def bar_chart(labels: Sequence[str], values: Sequence[float], *, line: Sequence[Number] | None = None,
              tips: Sequence[str] | None = None, width: int = 760, height: int = 220,
              y_label: str = "", css_id: str = "") -> str:
    """Vertical bars (one per label) with an optional overlaid line, e.g. weekly minutes + 4-week mean."""
    left, right, top, bottom = 48, 12, 12, 34
    pw, ph = width - left - right, height - top - bottom
    vmax = max([v for v in values if v is not None] + [v for v in (line or []) if v is not None] + [1e-9])
    ticks = nice_ticks(0, vmax)
    ymax = max(ticks[-1], vmax)
    n = max(len(values), 1)
    bw = pw / n
    out = [f'<svg class="chart" id="{escape(css_id)}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(y_label)}" xmlns="http://www.w3.org/2000/svg">']
    for t in ticks:
        y = top + ph - t / ymax * ph
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{_f(y)}" y2="{_f(y)}"/>'
                   f'<text class="tick" x="{left - 4}" y="{_f(y + 3)}" text-anchor="end">{_f(t)}</text>')
    for i, v in enumerate(values):
        h = (v or 0) / ymax * ph
        x = left + i * bw + bw * 0.12
        tip = escape(tips[i]) if tips else escape(f"{labels[i]}: {v}")
        out.append(f'<rect class="bar" data-tip="{tip}" x="{_f(x)}" y="{_f(top + ph - h)}" '
                   f'width="{_f(max(bw * 0.76, 1))}" height="{_f(h)}"><title>{tip}</title></rect>')
    step = max(1, math.ceil(n / 8))
    for i in range(0, n, step):
        x = left + (i + 0.5) * bw
        out.append(f'<text class="tick" x="{_f(x)}" y="{height - bottom + 14}" text-anchor="middle">'
                   f'{escape(labels[i])}</text>')
    if line:
        pts = [(left + (i + 0.5) * bw, top + ph - v / ymax * ph) for i, v in enumerate(line) if v is not None]
        if pts:
            out.append('<polyline class="trend" points="' + " ".join(f"{_f(x)},{_f(y)}" for x, y in pts) + '"/>')
    out.append(f'<text class="axis" x="4" y="{top + 8}">{escape(y_label)}</text></svg>')
    return "".join(out)


def comparison_bars(rows: Sequence[dict], *, width: int = 760, row_h: int = 54) -> str:
    """Per metric: a 'claims' bar and an 'evidence' bar with its low-high band, on one scale per row.

    rows: dicts with label, unit, claims, evidence, low, high (numbers or None).
    """
    left, right = 210, 90
    height = row_h * max(len(rows), 1) + 8
    out = [f'<svg class="chart" id="claims-chart" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="claims versus evidence" xmlns="http://www.w3.org/2000/svg">']
    pw = width - left - right
    for i, r in enumerate(rows):
        y0 = 6 + i * row_h
        vals = [v for v in (r.get("claims"), r.get("evidence"), r.get("high")) if v is not None]
        vmax = max(vals + [1e-9])
        out.append(f'<text class="label" x="0" y="{y0 + 14}">{escape(r["label"])}</text>'
                   f'<text class="tick" x="0" y="{y0 + 30}">{escape(r.get("note", ""))}</text>')
        for j, (key, cls) in enumerate((("claims", "claims"), ("evidence", "evidence"))):
            v = r.get(key)
            if v is None:
                continue
            y = y0 + j * 20
            w = v / vmax * pw
            end = max(v, r.get("high") or v) / vmax * pw if key == "evidence" else w  # text clears the band
            tip = f"{key}: {v:,.0f} {r.get('unit', '')}"
            out.append(f'<rect class="{cls}" x="{left}" y="{y}" width="{_f(max(w, 1))}" height="15" '
                       f'data-tip="{escape(tip)}"><title>{escape(tip)}</title></rect>'
                       f'<text class="value" x="{_f(left + end + 4)}" y="{y + 12}">{v:,.0f} {escape(r.get("unit", ""))}</text>')
        lo, hi = r.get("low"), r.get("high")
        if lo is not None and hi is not None and hi > lo:
            y = y0 + 20 + 7.5
            out.append(f'<line class="band" x1="{_f(left + lo / vmax * pw)}" x2="{_f(left + hi / vmax * pw)}" '
                       f'y1="{_f(y)}" y2="{_f(y)}"/>')
    out.append("</svg>")
    return "".join(out)


def _path(xs: Sequence[float], ys: Sequence[Number]) -> str:
    """An SVG path that lifts the pen over missing values."""
    d, pen = [], False
    for x, y in zip(xs, ys):
        if y is None or (isinstance(y, float) and math.isnan(y)):
            pen = False
            continue
        d.append(f"{'L' if pen else 'M'}{_f(x)},{_f(y)}")
        pen = True
    return "".join(d)


def timeline(t_s: Sequence[float], channels: Sequence[tuple[str, str, Sequence[Number]]],
             shaded: Sequence[tuple[float, float, str, str]], *, width: int = 760,
             panel_h: int = 90, css_id: str = "") -> str:
    """Stacked panels sharing a time axis (s), one per channel (name, unit, values).

    shaded: (start_s, end_s, css class, tooltip) bands drawn behind every panel.
    """
    left, right, gap, bottom = 52, 12, 10, 22
    channels = [c for c in channels if any(v is not None for v in c[2])]
    n = max(len(channels), 1)
    height = n * panel_h + (n - 1) * gap + bottom + 4
    t_max = max(t_s[-1] if t_s else 1.0, 1e-9)
    pw = width - left - right
    X = lambda t: left + t / t_max * pw  # noqa: E731
    out = [f'<svg class="chart timeline" id="{escape(css_id)}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="speed, cadence and heart rate over time" xmlns="http://www.w3.org/2000/svg">']
    for a, b, cls, tip in shaded:
        out.append(f'<rect class="{cls}" x="{_f(X(a))}" y="2" width="{_f(max(X(b) - X(a), 1))}" '
                   f'height="{height - bottom - 2}" data-tip="{escape(tip)}"><title>{escape(tip)}</title></rect>')
    if not channels:
        out.append(f'<text class="axis" x="{left}" y="40">no speed, cadence or heart-rate data</text>')
    for k, (name, unit, vals) in enumerate(channels):
        top = 4 + k * (panel_h + gap)
        finite = [v for v in vals if v is not None]
        lo, hi = min(finite), max(finite)
        if hi - lo < 1e-9:
            lo, hi = lo - 1, hi + 1
        pad = (hi - lo) * 0.08
        lo, hi = lo - pad, hi + pad
        Y = lambda v: top + panel_h - (v - lo) / (hi - lo) * panel_h  # noqa: E731
        out.append(f'<rect class="panel" x="{left}" y="{top}" width="{pw}" height="{panel_h}"/>')
        for t in nice_ticks(lo, hi, 3):
            out.append(f'<text class="tick" x="{left - 4}" y="{_f(Y(t) + 3)}" text-anchor="end">{_f(t)}</text>')
        ys = [None if v is None else Y(v) for v in vals]
        out.append(f'<path class="series s-{escape(name)}" d="{_path([X(t) for t in t_s], ys)}"/>'
                   f'<text class="axis" x="{left + 4}" y="{top + 12}">{escape(name)} ({escape(unit)})</text>')
    y_axis = height - bottom
    for t in nice_ticks(0, t_max / 60.0, 6):
        x = X(t * 60)
        out.append(f'<text class="tick" x="{_f(x)}" y="{y_axis + 14}" text-anchor="middle">{_f(t)}</text>')
    out.append(f'<text class="tick" x="{width - right}" y="{y_axis + 14}" text-anchor="end">min</text></svg>')
    return "".join(out)


def route(lat: Sequence[float], lon: Sequence[float], classes: Sequence[str], *, size: int = 360,
          css_id: str = "") -> str:
    """The track as polylines in an equirectangular projection, one class per run of points."""
    pad = 10
    if not lat:
        return (f'<svg class="chart route" id="{escape(css_id)}" viewBox="0 0 {size} 60" '
                f'xmlns="http://www.w3.org/2000/svg"><text class="axis" x="8" y="34">no GPS positions '
                f'(treadmill or indoor)</text></svg>')
    lat0 = (min(lat) + max(lat)) / 2
    k = math.cos(math.radians(lat0))
    xs = [x * k for x in lon]
    x_lo, x_hi, y_lo, y_hi = min(xs), max(xs), min(lat), max(lat)
    span = max(x_hi - x_lo, y_hi - y_lo, 1e-7)
    s = (size - 2 * pad) / span
    w = (x_hi - x_lo) * s + 2 * pad
    h = (y_hi - y_lo) * s + 2 * pad
    P = lambda i: f"{_f(pad + (xs[i] - x_lo) * s)},{_f(pad + (y_hi - lat[i]) * s)}"  # noqa: E731
    out = [f'<svg class="chart route" id="{escape(css_id)}" viewBox="0 0 {_f(w)} {_f(h)}" role="img" '
           f'aria-label="route, backward parts coloured" xmlns="http://www.w3.org/2000/svg">']
    start = 0
    for i in range(1, len(lat) + 1):
        if i == len(lat) or classes[i] != classes[start]:
            # overlap one point so the line has no gaps between runs
            pts = " ".join(P(j) for j in range(max(start - 1, 0), i))
            out.append(f'<polyline class="{classes[start]}" points="{pts}"/>')
            start = i
    out.append(f'<circle class="start" cx="{P(0).split(",")[0]}" cy="{P(0).split(",")[1]}" r="4"/>')
    out.append("</svg>")
    return "".join(out)


def share_bar(parts: Sequence[tuple[str, float, str]], *, width: int = 760, height: int = 46,
              css_id: str = "") -> str:
    """One horizontal bar split into labelled shares: (label, value, css class) per part."""
    total = sum(v for _, v, _ in parts) or 1.0
    out = [f'<svg class="chart" id="{escape(css_id)}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="shares" xmlns="http://www.w3.org/2000/svg">']
    x = 0.0
    for label, v, cls in parts:
        w = v / total * width
        tip = f"{label}: {100 * v / total:.0f} %"
        out.append(f'<rect class="{escape(cls)}" x="{_f(x)}" y="0" width="{_f(w)}" height="26" '
                   f'data-tip="{escape(tip)}"><title>{escape(tip)}</title></rect>')
        if w > 60:
            out.append(f'<text class="label inbar" x="{_f(x + 6)}" y="17">{escape(tip)}</text>')
        x += w
    out.append("</svg>")
    return "".join(out)
