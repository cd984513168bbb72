from django.apps import AppConfig


class BenchmarkPublicConfig(AppConfig):
    """The benchmark's platform-wide tables (public schema): aggregates and the wage reference."""

    name = "benchmark.public"
    label = "benchmark_public"
    verbose_name = "Benchmark (platform)"
