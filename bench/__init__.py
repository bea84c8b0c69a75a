"""Benchmarks: run on purpose (``python -m bench.transitions``), never by the test command."""
