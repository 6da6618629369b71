#!/usr/bin/env python3
"""Bar charts for the benchmark pages, as SVG an engineer can put on a slide: one panel per
test, each with its own y axis (requests/s, with ticks and gridlines), every bar labelled with
its value, the reference servers (Redis, twemproxy, NGINX) in grey tones beside tiercache's
colours, a white background and a legend.

    chart.py OUT.svg "title" < rows        # rows: panel,series,value (CSV, one bar each)

Used by scripts/bench-resp.sh and scripts/bench.sh.
"""
import csv
import math
import sys

REFERENCE = ["#7f7f7f", "#a6a6a6", "#c7c7c7", "#595959"]
OURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]


def nice_step(top, ticks=5):
    raw = top / ticks
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def short(v):
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e3:
        return f"{v / 1e3:.0f}k" if v >= 1e4 else f"{v / 1e3:.1f}k"
    return f"{v:.0f}"


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(rows, title):
    panels = list(dict.fromkeys(r[0] for r in rows))
    series = list(dict.fromkeys(r[1] for r in rows))
    val = {(r[0], r[1]): float(r[2]) for r in rows}
    colour, ref_i, ours_i = {}, 0, 0
    for s in series:
        if s.lower().startswith("tiercache"):
            colour[s] = OURS[ours_i % len(OURS)]
            ours_i += 1
        else:
            colour[s] = REFERENCE[ref_i % len(REFERENCE)]
            ref_i += 1
    bar, gap = 34, 8
    panel_w = 70 + len(series) * (bar + gap)
    plot_h, top_pad = 260, 70
    # Wide enough for the subtitle and a row of four legend entries.
    width = max(20 + len(panels) * (panel_w + 20), 900)
    legend_y = top_pad + plot_h + 60
    height = legend_y + 20 * ((len(series) + 3) // 4) + 10
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="Helvetica, Arial, sans-serif" font-size="12" fill="#222">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="20" y="28" font-size="16" font-weight="bold">{esc(title)}</text>',
        '<text x="20" y="48" font-size="12" fill="#555">requests per second (higher is better); '
        "grey: reference servers measured in the same run</text>",
    ]
    for pi, p in enumerate(panels):
        x0 = 20 + pi * (panel_w + 20) + 55
        present = [s for s in series if (p, s) in val]
        top = max(val[(p, s)] for s in present)
        step = nice_step(top)
        axis_top = step * math.ceil(top / step)
        y = lambda v: top_pad + plot_h - plot_h * v / axis_top  # noqa: E731
        # Gridlines and ticks.
        t = 0.0
        while t <= axis_top + 1e-9:
            yy = y(t)
            out.append(f'<line x1="{x0}" y1="{yy:.1f}" x2="{x0 + panel_w - 60}" y2="{yy:.1f}" stroke="#e5e5e5"/>')
            out.append(f'<text x="{x0 - 6}" y="{yy + 4:.1f}" text-anchor="end" font-size="11">{short(t)}</text>')
            t += step
        out.append(f'<line x1="{x0}" y1="{top_pad}" x2="{x0}" y2="{top_pad + plot_h}" stroke="#333"/>')
        out.append(
            f'<line x1="{x0}" y1="{top_pad + plot_h}" x2="{x0 + panel_w - 60}" y2="{top_pad + plot_h}" stroke="#333"/>'
        )
        for si, s in enumerate(present):
            v = val[(p, s)]
            bx = x0 + 8 + si * (bar + gap)
            out.append(
                f'<rect x="{bx}" y="{y(v):.1f}" width="{bar}" height="{top_pad + plot_h - y(v):.1f}" '
                f'fill="{colour[s]}"><title>{esc(s)}: {v:,.0f} requests/s</title></rect>'
            )
            out.append(
                f'<text x="{bx + bar / 2}" y="{y(v) - 5:.1f}" text-anchor="middle" font-size="10">{short(v)}</text>'
            )
        out.append(
            f'<text x="{x0 + (panel_w - 60) / 2}" y="{top_pad + plot_h + 22}" text-anchor="middle" '
            f'font-size="13" font-weight="bold">{esc(p)}</text>'
        )
    for si, s in enumerate(series):
        lx = 20 + (si % 4) * 220
        ly = legend_y + 20 * (si // 4)
        out.append(f'<rect x="{lx}" y="{ly - 11}" width="14" height="14" fill="{colour[s]}"/>')
        out.append(f'<text x="{lx + 20}" y="{ly}">{esc(s)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def main():
    out, title = sys.argv[1], sys.argv[2]
    rows = [r for r in csv.reader(sys.stdin) if len(r) >= 3]
    if not rows:
        sys.exit("chart.py: no rows")
    open(out, "w").write(render(rows, title))


if __name__ == "__main__":
    main()
