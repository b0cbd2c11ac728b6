"""Benchmark harnesses against the EWS simulator (see benchmarks/RESULTS.md)."""
