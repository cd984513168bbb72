"""The industry-benchmark app (``benchmark/``); the performance benchmarks are ``bench/``."""
from django.apps import AppConfig


class BenchmarkConfig(AppConfig):
    name = "benchmark"
    verbose_name = "Industry benchmark"

    def ready(self) -> None:
        from benchmark.reports import REPORT_LINKS
        from reports.registry import report_add

        for title, url_name, description in REPORT_LINKS:
            report_add(title, url_name, description)
