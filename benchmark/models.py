"""Models of the benchmark app."""
