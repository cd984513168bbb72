"""The benchmark app's reports, for the reports index to list: (title, URL name, what it shows)."""

REPORT_LINKS = [
    ("Effective hourly rate", "benchmark:home", "Per closed contract period, by contract, customer, type and month, against the industry."),
    ("Profitability", "benchmark:profitability", "Revenue, labour and product cost, margin and effective rate per customer and contract."),
    ("Technician utilisation", "benchmark:utilisation", "Billable and non-billable hours per technician."),
]
