"""The speed report's verdicts, from hand-made step records (no training, no timing)."""

from types import SimpleNamespace

from benchmarks import report
from benchmarks._util import summarize
from benchmarks.gemm_floor import step_record

SMALL = "784-500-250-100"


def _record(variant, step_ms, floor_ms=5.0, **extra):
    args = SimpleNamespace(batch_size=256, steps=10, warmup=3, reps=3)
    record = step_record(
        runner="jax", arch=SMALL, precision="float32", variant=variant, floor_library="jax",
        args=args, warmup_seconds=1.0, step_seconds=[step_ms / 1e3] * 3, step_cpu=[2.0] * 3,
        floor_seconds=[floor_ms / 1e3] * 3, floor_cpu=[2.0] * 3, train_loss=0.3,
        test_loss=0.3, params=1,
    )
    return {**record, **extra}


def _run(args, results):
    return {"name": "jax", "module": "benchmarks.speed", "args": args,
            "env": {"KERAS_BACKEND": "jax"}, "note": "", "payload": {"results": results}}


def _section(runs):
    machine = {"load_average": [0.0, 0.0, 0.0], "busiest_processes": []}
    return {"section": "speed", "mode": "full", "command": "python -m benchmarks.run",
            "started_utc": "2026-12-04 12:00", "wall_seconds": 1.0, "settings": {},
            "machine": {"logical_cpus": 2}, "machine_start": machine, "machine_end": machine,
            "runs": runs}


def test_target_reads_the_default_run_and_the_sgd_run_measures_adams_share():
    default = _run(["--archs", SMALL], [_record("tied", 6.0)])
    adam_vs_sgd = _run(
        ["--archs", SMALL, "--variants", "tied,tied-sgd"],
        [_record("tied", 6.5, adam_share_of_step=summarize([0.2, 0.25, 0.3])),
         _record("tied-sgd", 5.2)],
    )
    text = "\n".join(report.speed_lines(_section([default, adam_vs_sgd])))
    # The verdict uses the library-defaults run (1.20), not the investigation's tied row (1.30).
    assert f"(jax), {SMALL}: step/floor 1.20 (range 1.20–1.20) -> **missed**" in text
    assert "| jax Adam vs SGD | 784-500-250-100 | float32 | tied-sgd |" in text
    assert f"{SMALL}: Adam is 25% of the step [20%–30%]; with plain SGD, step/floor 1.04 " \
           "against Adam's 1.30" in text


def test_without_the_sgd_run_the_exploration_stands_in_for_adams_share():
    text = "\n".join(report.speed_lines(_section([_run(["--archs", SMALL], [_record("tied", 6.0)])])))
    assert "**missed**" in text and "Adam is" not in text
    assert report.SMALL_STACK_EXPLORATION in text
    adam_vs_sgd = _run(["--archs", SMALL, "--variants", "tied,tied-sgd"],
                       [_record("tied", 6.5, adam_share_of_step=summarize([0.2, 0.25, 0.3])),
                        _record("tied-sgd", 5.2)])
    measured = "\n".join(report.speed_lines(_section([_run(["--archs", SMALL],
                                                          [_record("tied", 6.0)]), adam_vs_sgd])))
    assert report.SMALL_STACK_EXPLORATION not in measured
