"""Small inline SVG bar charts for the dashboard: drawn on the server, no script, no network."""

import datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT, PAD = 600, 160, 24


def bar_chart(points: list[tuple[datetime.date, int]], *, title: str, colour: str) -> SafeString:
    """One bar per day; each bar's tooltip gives the date and the figure."""
    highest = max((value for _, value in points), default=0)
    peak = highest or 1  # the bars' scale; an empty chart is said to be empty, not "peak 1"
    slot = (WIDTH - 2 * PAD) / max(len(points), 1)
    bars = []
    for index, (day, value) in enumerate(points):
        height = (HEIGHT - 2 * PAD) * value / peak
        bars.append(
            f'<rect class="bar" x="{PAD + index * slot + 1:.1f}" y="{HEIGHT - PAD - height:.1f}" '
            f'width="{max(slot - 2, 1):.1f}" height="{height:.1f}" fill="{escape(colour)}">'
            f"<title>{day.isoformat()}: {int(value)}</title></rect>"
        )
    first = points[0][0].strftime("%d %b") if points else ""
    last = points[-1][0].strftime("%d %b") if points else ""
    return mark_safe(
        f'<svg class="xero-chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">'
        f'<title>{escape(title)}</title>'
        f'<text x="{PAD}" y="14" font-size="12">{escape(title)} ({f"peak {highest}" if highest else "none"})</text>'
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>'
        + "".join(bars)
        + f'<text x="{PAD}" y="{HEIGHT - 6}" font-size="11">{escape(first)}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 6}" font-size="11" text-anchor="end">{escape(last)}</text></svg>'
    )
