"""Bar charts drawn on the server as SVG, each with the table it was drawn from.

Why SVG from a template and not a chart library (docs/dashboard.md § Charts): the pages
are server-rendered, the Content-Security-Policy allows no inline script, and the charts
we need are bars — plain or stacked. The geometry is a few lines of arithmetic here; the
template (``components/bar_chart.html``) writes ``<rect>`` elements and the table. The
SVG is hidden from screen readers (``aria-hidden``); the table beside it carries the same
figures, so nothing is lost to anyone who cannot see the bars, and a printout keeps both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

# Colour-blind safe palette (Okabe & Ito), each dark enough against white for a 3:1 contrast.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#8a6d00", "#56B4E9", "#5f5f5f", "#E69F00"]
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 240, 64, 28, 12


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str


@dataclass
class Chart:
    title: str
    currency: str
    categories: list[str]
    series: list[tuple[str, list[Decimal]]]  # (name, one value per category)
    links: list[str] = field(default_factory=list)  # optional: the list behind each category
    bars: list[Bar] = field(default_factory=list)
    ticks: list[tuple[float, Decimal]] = field(default_factory=list)
    labels: list[tuple[float, str]] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    axis_y: float = HEIGHT - BOTTOM
    left: int = LEFT

    @property
    def totals(self) -> list[Decimal]:
        return [sum((values[i] for _name, values in self.series), Decimal(0)) for i in range(len(self.categories))]

    @property
    def rows(self) -> list[tuple[str, list[Decimal], Decimal, str]]:
        """The table: per category its value in each series, the total and the link."""
        links = self.links or [""] * len(self.categories)
        return [(category, [values[i] for _name, values in self.series], self.totals[i], links[i])
                for i, category in enumerate(self.categories)]


def _nice_step(peak: Decimal) -> Decimal:
    """A round step (1, 2 or 5 × a power of ten) giving about four grid lines up to ``peak``."""
    if peak <= 0:
        return Decimal(1)
    raw = peak / 4
    power = Decimal(10) ** (len(str(int(raw))) - 1) if raw >= 1 else Decimal("0.01")
    for factor in (1, 2, 5, 10):
        if raw <= power * factor:
            return power * factor
    return power * 10  # pragma: no cover


def bar_chart(*, title: str, currency: str, categories: list[str], series: list[tuple[str, list[Decimal]]],
              links: list[str] | None = None) -> Chart:
    """Stacked bars, one per category; one series gives plain bars. Negative values (credit
    notes larger than a month's invoices) are drawn as zero and kept in the table."""
    chart = Chart(title=title, currency=currency, categories=categories, series=series, links=links or [])
    plot_height = HEIGHT - BOTTOM - TOP
    plot_width = WIDTH - LEFT - 8
    peak = max([sum((max(v[i], Decimal(0)) for _n, v in series), Decimal(0)) for i in range(len(categories))] or [Decimal(0)])
    step = _nice_step(peak)
    top = step * max(1, math.ceil(peak / step))
    scale = Decimal(plot_height) / top
    chart.ticks = [(float(HEIGHT - BOTTOM - step * k * scale), step * k) for k in range(int(top / step) + 1)]
    slot = plot_width / max(1, len(categories))
    width = slot * 0.7
    for i, category in enumerate(categories):
        x = LEFT + i * slot + (slot - width) / 2
        base = Decimal(HEIGHT - BOTTOM)
        for index, (name, values) in enumerate(series):
            value = max(values[i], Decimal(0))
            if value == 0:
                continue
            height = value * scale
            base -= height
            chart.bars.append(Bar(x=round(x, 1), y=float(round(base, 1)), width=round(width, 1), height=float(round(height, 1)),
                                  colour=PALETTE[index % len(PALETTE)], label=f"{category}, {name}: {value}"))
        chart.labels.append((round(LEFT + i * slot + slot / 2, 1), category))
    chart.legend = [(PALETTE[index % len(PALETTE)], name) for index, (name, _values) in enumerate(series)]
    return chart
