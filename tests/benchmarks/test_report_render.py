"""The report renders from stored results alone: a summary of every target, then figures."""

import json
from pathlib import Path
from types import SimpleNamespace

from benchmarks import report, run
from benchmarks._util import summarize
from benchmarks.gemm_floor import step_record
from benchmarks.report_steps import BIG

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ("throughput.png", "accuracy_vs_labels.png", "clustering.png")


def _header_fields(name, runs, **settings):
    state = {"load_average": 0.1, "busiest_processes": []}
    machine = {"cpu_model": "EPYC", "logical_cpus": 2, "isa_flags": ["avx2"], "ram_gib": 8,
               "os": "Linux", "python": "3.11", "versions": {}, "gpus": []}
    return {"section": name, "mode": "full", "settings": settings, "command": "c",
            "started_utc": "2026-12-06T00:00:00+00:00", "wall_seconds": 1.0, "machine": machine,
            "machine_start": state, "machine_end": state, "runs": runs}


def _step(precision, step_ms):
    args = SimpleNamespace(batch_size=256, steps=10, warmup=3, reps=3)
    return step_record(runner="jax", arch=BIG, precision=precision, variant="tied",
                       floor_library="jax", args=args, warmup_seconds=1.0,
                       step_seconds=[step_ms / 1e3] * 3, step_cpu=[2.0] * 3,
                       floor_seconds=[0.04] * 3, floor_cpu=[2.0] * 3, train_loss=0.3,
                       test_loss=0.3, params=1)


def small_stored():
    speed_run = {"name": "jax", "module": "benchmarks.speed", "args": [], "env": {},
                 "payload": {"results": [_step("float32", 50.0), _step("mixed_bfloat16", 30.0)]}}
    targets = [{"what": "100 labels, pretrained network >= 65%", "measured": 0.7, "target": 0.65,
                "met": True},
               {"what": "1,000 labels, pretrained network >= 83%", "measured": 0.8,
                "target": 0.83, "met": False}]
    raw = {"few_labels": {"100": {"SdA pretrained, fine-tuned": [0.7, 0.72],
                                  "same network, random init": [0.6, 0.62]}}}
    quality = {"name": "jax", "payload": {"description": "d", "tables": [], "notes": [],
                                          "targets": targets, "raw": raw}}
    return {"speed": _header_fields("speed", [speed_run]),
            "quality": _header_fields("quality", [quality], all_labels_n=60000),
            "pretrain": _header_fields("pretrain", [])}


def _summary(text):
    return text.split("## Summary", 1)[1].split("\n## ", 1)[0]


def test_small_results_give_a_summary_row_per_target_and_one_per_targetless_section(tmp_path):
    figures = report.write_report(small_stored(), tmp_path / "benchmarks.md", side={})
    summary = _summary((tmp_path / "benchmarks.md").read_text())
    assert "| [quality](#quality) | 100 labels, pretrained network >= 65% | 70.00% | **met** |" in summary
    assert ("| [quality](#quality) | 1,000 labels, pretrained network >= 83% | 80.00% | "
            "**missed** by 3.0 points |") in summary
    assert "| [speed](#speed) | float32 step <= 1.1x GEMM floor on the default backend (jax), " \
           f"{BIG} | step/floor 1.25 (range 1.25–1.25) | **missed** by 1.14x |" in summary
    assert "| [speed](#speed) | mixed_bfloat16 >= 10,000 samples/s" in summary
    assert "| [pretrain](#pretrain) | no target (measurements only) |" in summary
    assert "4 targets, 3 missed" in summary
    # Figures of the sections that are stored, linked from the report; none for clustering.
    assert [path.name for _, path in figures] == ["throughput.png", "accuracy_vs_labels.png"]
    for _, path in figures:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](figures/{path.name})" in summary


def test_render_only_from_the_stored_results_lists_every_target_and_draws_every_figure(tmp_path):
    out = tmp_path / "benchmarks.md"
    run.main(["--render-only", "--report", str(out)])
    summary = _summary(out.read_text())
    stored = json.loads((ROOT / "docs" / "benchmarks.json").read_text())
    side = report.side_results()
    assert {"recipe_selection", "sc_default"} <= set(side)
    rows = report.all_targets(stored, side)
    # Every stored section, with or without targets, has its rows.
    assert {name for name, _ in rows} == set(stored) | set(side)
    for name, t in rows:
        if t is None:
            assert f"| [{name}](#{name}) | no target (measurements only) |" in summary
        else:
            assert f"| [{name}](#{name}) | {report._short(t['what'])} | {t['value']} |" in summary
    # The targets that the children stored are each in the table, met or missed as stored.
    for name, section in stored.items():
        for payload in (r.get("payload", {}) for r in section["runs"]):
            for t in payload.get("targets", []):
                row = next(line for line in summary.splitlines()
                           if line.startswith(f"| [{name}](#{name}) | {t['what'].split(' (')[0]}"))
                assert row.endswith("| **met** |") == t["met"]
    for name in FIGURES:
        path = tmp_path / "figures" / name
        assert path.stat().st_size > 10_000 and f"](figures/{name})" in summary


def test_report_main_is_render_only(monkeypatch):
    calls = []
    monkeypatch.setattr(run, "main", calls.append)
    report.main()
    assert calls == [["--render-only"]]


def test_mapping_results_join_the_report_only_when_stored(tmp_path, monkeypatch):
    assert "mapping" not in report.side_results(tmp_path)  # no docs/mapping.json: no section
    (tmp_path / "mapping.json").write_text(json.dumps({"accuracy": 0.91}))
    fake = SimpleNamespace(
        render=lambda results: f"Mapped with accuracy {results['accuracy']:.2f}.\n",
        targets=lambda results: [{"target": "query accuracy", "value": results["accuracy"],
                                  "goal": ">= 0.90", "met": True}])
    monkeypatch.setattr(report, "_mapping", lambda: fake)
    side = report.side_results(tmp_path)
    assert side == {"mapping": {"accuracy": 0.91}}
    report.write_report(small_stored(), tmp_path / "benchmarks.md", side=side)
    text = (tmp_path / "benchmarks.md").read_text()
    assert "| [mapping](#mapping) | query accuracy (goal >= 0.90) | 0.910 | **met** |" in _summary(text)
    assert "## Single-cell reference mapping" in text and "Mapped with accuracy 0.91." in text


def test_rendering_imports_no_keras_backend():
    """`--render-only` reads stored results: no Keras, hence no TensorFlow start-up lines."""
    import subprocess
    import sys

    code = ("import sys, benchmarks.run, benchmarks.report, benchmarks.figures; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
