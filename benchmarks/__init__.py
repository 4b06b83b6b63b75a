"""Benchmarks for tiedae: speed against the GEMM floor, quality on Fashion-MNIST.

Run `python -m benchmarks.run --help` (or `make bench`). Every backend is
measured in its own subprocess because Keras fixes its backend at import; the
orchestrator (`benchmarks.run`) collects their JSON and `benchmarks.report`
writes `docs/benchmarks.md`. Nothing here is imported by the library or tests,
except the pure helpers covered by `tests/benchmarks/`.
"""
