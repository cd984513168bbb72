"""Benchmarks: `make bench` runs every ``bench/bench_*.py`` module's ``main()``.

Each benchmark prints its figures as ratios against a baseline measured in the same run
(these machines are shared and noisy; absolute seconds are only context).

Not the industry-benchmark feature: that is the ``benchmark/`` app.
"""
