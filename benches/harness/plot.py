"""The ratios as an SVG bar chart, written by hand (no plotting library needed)."""

from xml.sax.saxutils import escape

COLOURS = {"berth": "#1f6feb", "runc": "#8b949e", "crun": "#d29922", "youki": "#a371f7",
           "floor": "#2da44e", "floor-true": "#116329"}
ROW, BAR, LEFT, WIDTH = 22, 16, 330, 420


def ratios_svg(summary: dict) -> str:
    """Panels of horizontal bars: each runtime's median against the true floor (where it
    was measured), against the simple floor, then against Berth; a dashed line marks 1.0."""
    panels = [("x true floor (all the kernel work of the config)", "x_true_floor"),
              ("x floor (namespaces, rootfs and /proc alone)", "x_floor"), ("x berth", "x_berth")]
    body, y = [], 30
    for heading, field in panels:
        groups = [(result["title"], [(name, row[field]) for name, row in result["runtimes"].items()
                                     if row[field] is not None])
                  for result in summary.values() if result["unit"]]  # counts are no ratio
        groups = [(t, bars) for t, bars in groups if bars]
        if not groups:
            continue
        top = max(value for _, bars in groups for _, value in bars)
        scale = WIDTH / max(top, 1.0)
        body.append(f'<text x="10" y="{y}" font-weight="bold">{escape(heading)}</text>')
        y += 12
        start = y
        for group_title, bars in groups:
            body.append(f'<text x="10" y="{y + BAR}" font-size="11">{escape(group_title)}</text>')
            for name, value in bars:
                length = max(value * scale, 1)
                body.append(f'<rect x="{LEFT}" y="{y + 3}" width="{length:.1f}" height="{BAR}" '
                            f'fill="{COLOURS.get(name, "#6e7781")}"/>')
                body.append(f'<text x="{LEFT + length + 4:.1f}" y="{y + BAR}" font-size="11">'
                            f'{escape(name)} {value:.2f}</text>')
                y += ROW
            y += 8
        one = LEFT + scale
        body.append(f'<line x1="{one:.1f}" y1="{start}" x2="{one:.1f}" y2="{y}" stroke="#000" '
                    f'stroke-dasharray="4 3"/>')
        y += 30
    width = LEFT + WIDTH + 120
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" '
            f'font-family="sans-serif" font-size="13">\n'
            f'<rect width="100%" height="100%" fill="#fff"/>\n' + "\n".join(body) + "\n</svg>\n")
