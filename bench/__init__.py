"""Benchmarks: each prints its figures as JSON and writes them into BENCHMARKS.md."""
