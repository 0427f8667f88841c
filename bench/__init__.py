"""The benchmark harness: `python -m bench --size N` (see BENCHMARKS.md in the shared folder)."""
