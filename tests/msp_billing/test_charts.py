"""The SVG bar charts: bars in proportion to their values, inside the plot, and the table
beside them holding every figure drawn."""
from decimal import Decimal

from msp_billing.charts import HEIGHT, TOP, bar_chart


def test_bars_are_in_proportion_and_never_leave_the_plot():
    chart = bar_chart(title="Unbilled work by age", currency="EUR", categories=["0–30", "31–60", "61–90", "> 90"],
                      series=[("Unbilled", [Decimal("0"), Decimal("8434.55"), Decimal("5710.68"), Decimal("5517.30")])])
    heights = [bar.height for bar in chart.bars]
    assert len(heights) == 3  # nothing is drawn for 0.00
    assert all(bar.y >= TOP for bar in chart.bars)
    assert abs(heights[0] / heights[1] - 8434.55 / 5710.68) < 0.01
    assert chart.ticks[-1][1] == Decimal(10000) and chart.ticks[0][0] == HEIGHT - 28


def test_stacked_series_add_up_and_the_table_keeps_negative_months():
    chart = bar_chart(title="Invoiced", currency="EUR", categories=["Jan", "Feb"],
                      series=[("Hourly", [Decimal("100"), Decimal("-40")]), ("Retainer", [Decimal("300"), Decimal("0")])])
    jan = [bar for bar in chart.bars if bar.label.startswith("Jan")]
    assert len(jan) == 2 and abs(jan[0].y - (jan[1].y + jan[1].height)) < 0.2  # stacked, touching
    assert [row[2] for row in chart.rows] == [Decimal("400"), Decimal("-40")]
    assert not [bar for bar in chart.bars if bar.label.startswith("Feb")]
