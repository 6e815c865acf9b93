"""Speed and memory benchmarks: scripts run as ``python bench/NAME.py`` (see bench/run_all.py)."""
