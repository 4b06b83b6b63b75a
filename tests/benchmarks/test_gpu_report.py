"""The GPU section of the report, from hand-made records (no GPU, no timing)."""

from types import SimpleNamespace

import numpy as np

from benchmarks import report
from benchmarks._util import summarize
from benchmarks.data import cycle_rows
from benchmarks.gemm_floor import step_flops, step_record

BIG = "784-1000-1000-1000"


def _record(variant, step_ms, batch=8192, precision="float32", floor_ms=1.0, runner="jax", **extra):
    args = SimpleNamespace(batch_size=batch, steps=20, warmup=3, reps=3)
    record = step_record(
        runner=runner, arch=BIG, precision=precision, variant=variant, floor_library="jax",
        args=args, warmup_seconds=1.0, step_seconds=[step_ms / 1e3] * 3, step_cpu=[1.0] * 3,
        floor_seconds=[floor_ms / 1e3] * 3, floor_cpu=[1.0] * 3, train_loss=0.3,
        test_loss=0.3, params=1,
    )
    return {**record, **extra}


def _run(name, args, results, roofline=(), module="benchmarks.speed"):
    versions = {"keras": "3", "jax": "0.1", "float32_matmul": "None"}
    return {"name": name, "module": module, "args": args, "env": {"KERAS_BACKEND": name},
            "note": "", "returncode": 0,
            "payload": {"results": results, "roofline": list(roofline), "versions": versions}}


def _section(runs):
    machine = {"load_average": 0.0, "busiest_processes": []}
    return {"section": "gpu", "mode": "full", "command": "python -m benchmarks.run --only gpu",
            "started_utc": "2026-12-04T15:00:00+00:00", "wall_seconds": 1.0, "settings": {},
            "machine": {"logical_cpus": 16, "cpu_model": "Xeon", "ram_gib": 125.0,
                        "gpus": ["NVIDIA H200, 143771 MiB, 580"]},
            "machine_start": machine, "machine_end": machine, "runs": runs}


def test_roofline_share_self_target_and_tied_summary():
    flops = step_flops(784, [1000, 1000, 1000], 8192)
    # A step at 2 ms achieves flops / 2 ms; the roofline is set to exactly 4x that rate.
    roof = {"library": "jax", "dtype": "float32", "n": 8192, "seconds": summarize([1e-3] * 3),
            "tflops": 4 * flops / 2e-3 / 1e12}
    default = _run("jax", ["--batch-size", "8192"], [
        _record("tied", 2.0, tied_over_untied_step_time=summarize([1.05, 1.04, 1.06])),
        _record("untied", 1.9),
    ], roofline=[roof])
    copies = _run("jax", ["--batch-size", "8192", "--variants", "tied,tied-self-target"], [
        _record("tied", 2.0, self_target_over_tied_step_time=summarize([0.8, 0.8, 0.8])),
        _record("tied-self-target", 1.6),
    ])
    text = "\n".join(report.gpu_lines(_section([default, copies])))
    assert "- Machine: Xeon, 16 logical CPUs, ISA n/a; GPU NVIDIA H200, 143771 MiB, 580." in text
    assert "= 25.0% of jax's float32 roofline" in text
    # 20% of a 2 ms step is the second copy of the batch.
    assert "step time 0.80 [0.80–0.80] of the `fit(x, x)` step (paired, same process): " \
           "about 0.4 ms per step" in text
    assert "tied at least as fast in 0 of 1 backend/batch/precision cells; slower in jax " \
           "batch 8192 float32 1.05x [1.04–1.06]" in text
    # The same cell timed in two processes gives the noise level of unpaired comparisons.
    assert "took 2.0 ms and 2.0 ms in two processes (0% apart)" in text


def test_no_gpu_rows_says_so_and_the_machines_list_names_each_sections_machine():
    failed = {**_run("jax", ["--require-gpu"], []), "returncode": 1, "error": "sees no GPU"}
    text = "\n".join(report.gpu_lines(_section([failed])))
    assert "**Run failed**: jax (exit 1)" in text and "No GPU step was measured" in text
    cpu = {"cpu_model": "EPYC", "logical_cpus": 2, "isa_flags": ["avx2"], "ram_gib": 24,
           "os": "Linux", "python": "3.11", "versions": {}}
    gpu = {**cpu, "cpu_model": "Xeon", "logical_cpus": 16, "gpus": ["NVIDIA H200"]}
    stored = {"speed": {"machine": cpu}, "semi": {"machine": cpu}, "gpu": {"machine": gpu}}
    lines = report.machine_lines(stored)
    assert "Compare speed numbers only within a section." in lines[2]
    assert lines[4].startswith("- **speed, semi**: CPU EPYC, 2 logical CPUs, ISA avx2; no GPU;")
    assert lines[5].startswith("- **gpu**: CPU Xeon, 16 logical CPUs, ISA avx2; GPU NVIDIA H200;")
    one = report.machine_lines({"speed": {"machine": cpu}})
    assert "different machines" not in "\n".join(one)


def test_cycle_rows_repeats_rows_in_order_only_when_needed():
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    assert cycle_rows(x, 3) is x
    np.testing.assert_array_equal(cycle_rows(x, 5), np.concatenate([x, x[:2]]))
