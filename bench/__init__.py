"""Benchmarks: each ``bench_*.py`` module exposes ``run() -> dict`` of figures; ``python -m bench`` runs them."""
