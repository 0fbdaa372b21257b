"""Benchmarks (not part of the product; run from the repository root)."""
