"""Benchmarks against real processes (`make bench`); not part of the test gate."""
