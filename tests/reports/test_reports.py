"""Reports: each filters, each downloads a CSV that parses back to what the page shows, bad
filters get a 400 with the form, and nothing of one MSP shows on another's reports."""
from __future__ import annotations

import csv
import io
from decimal import Decimal

from django.urls import reverse

from tests.support import body
from tests.billing.test_dashboard import world  # noqa: F401  (the shared fixture)


def _csv(client, url: str) -> list[dict]:
    response = client.get(url + ("&" if "?" in url else "?") + "format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(body(response).decode())))


def test_the_index_links_every_report(client_for, world):
    html = client_for("alpha", "accountant").get(reverse("reports:index")).content.decode()
    for name in ("unbilled", "revenue", "blocks", "renewals"):
        assert reverse(f"reports:{name}") in html
    assert reverse("invoices:aging") in html and reverse("invoices:outstanding") in html
    # The benchmark's reports are listed too, and open for the same reader.
    for name in ("benchmark:home", "benchmark:profitability", "benchmark:utilisation"):
        assert f'href="{reverse(name)}"' in html
        assert client_for("alpha", "accountant").get(reverse(name)).status_code == 200


def test_unbilled_list_filters_and_its_csv_is_the_page(client_for, world):
    client = client_for("alpha", "accountant")
    url = reverse("reports:unbilled") + f"?customer={world['acme'].pk}&state=waiting"
    page = client.get(url)
    items = page.context["items"]
    chart = page.context["charts"][0]
    assert "<caption>Unbilled work by age, EUR</caption>" in page.content.decode()
    assert sum(chart.totals) == page.context["totals"].amounts["EUR"] == sum(item.amount for item in items)
    assert {item.customer_name for item in items} == {"Acme Ltd"} and {item.state for item in items} == {"waiting"}
    rows = _csv(client, url)
    assert [(r["Date"], r["Kind"], Decimal(r["Amount"])) for r in rows] == \
        [(item.date.isoformat(), item.kind_label, item.amount) for item in items]
    assert {r["Amount"] for r in rows} == {"180.00", "109.99"}  # plain decimals, no symbols or separators
    bad = client.get(reverse("reports:unbilled") + "?age=forever")
    assert bad.status_code == 400 and "Select a valid choice" in bad.content.decode()


def test_blocks_and_renewals_csv_equal_their_pages(client_for, world):
    client = client_for("alpha", "billing_admin")
    balances = client.get(reverse("reports:blocks")).context["balances"]
    rows = [r for r in _csv(client, reverse("reports:blocks")) if r["Kind"] == "Block"]
    assert [(r["Contract"], Decimal(r["Size"]), Decimal(r["Used"]), Decimal(r["Percent used"])) for r in rows] == \
        [(b.contract.name, Decimal(b.size) / 60, Decimal(b.used) / 60, b.percent_used) for b in balances]
    assert rows[0]["Left"] == "2.00"
    contracts = client.get(reverse("reports:renewals") + "?within=60").context["contracts"]
    rows = _csv(client, reverse("reports:renewals") + "?within=60")
    assert [(r["Contract"], r["End date"], int(r["Days left"])) for r in rows] == \
        [(c.name, c.end_date.isoformat(), c.days_left) for c in contracts] == [("Globex T&M", contracts[0].end_date.isoformat(), 30)]
    assert _csv(client, reverse("reports:renewals") + "?within=10") == []
    assert client.get(reverse("reports:renewals") + "?within=-3").status_code == 400


def test_aging_csv_equals_the_aging_page(client_for, world):
    client = client_for("alpha", "accountant")
    report = client.get(reverse("invoices:aging")).context["report"]
    rows = _csv(client, reverse("invoices:aging"))
    assert [(r["Customer"], [Decimal(r[label]) for label in report.labels()]) for r in rows] == \
        [(row.customer.legal_name, row.cells) for row in report.rows]


def test_reports_of_one_msp_show_nothing_of_another(client_for, world):
    beta = client_for("beta", "billing_admin")
    for name in ("unbilled", "revenue", "blocks", "renewals"):
        response = beta.get(reverse(f"reports:{name}"))
        assert response.status_code == 200
        html = response.content.decode()
        assert "Acme" not in html and "Globex" not in html
        assert all("Acme" not in r.get("Customer", "") for r in _csv(beta, reverse(f"reports:{name}")))
    # Alpha's customer id on beta's host is refused as a choice, not shown.
    assert beta.get(reverse("reports:unbilled") + f"?customer={world['acme'].pk}").status_code == 400
