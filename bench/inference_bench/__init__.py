"""The inference benchmark's parts (`bench/bench_inference.py` is the command)."""
