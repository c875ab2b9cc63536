"""kubetrail's benchmarks: `make bench` runs every `bench_*.py` module, prints a table and writes JSON."""
