"""Speed and accuracy benchmarks: each prints a table and writes its figures to a file (`outputs/` by default).
Run them from the repository root as modules, e.g. `python -m benchmarks.bench_tracker`."""
