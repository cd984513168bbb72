"""The industry-benchmark feature: an MSP's own figures (effective hourly rate, profitability,
technician utilisation) for its reports and its dashboard card.

Not to be confused with ``bench/`` at the top of the repository: that folder holds the
performance benchmarks of the code (``make bench``) and is no Django app. See
docs/decisions.md "Two benchmark folders".
"""
