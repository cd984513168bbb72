"""The industry-benchmark app (``benchmark/``); the performance benchmarks are ``bench/``."""
from django.apps import AppConfig


class BenchmarkConfig(AppConfig):
    name = "benchmark"
    verbose_name = "Industry benchmark"
