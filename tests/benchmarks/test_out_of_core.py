"""The out-of-core benchmark's data generator and its report section (no timing)."""

import numpy as np

from benchmarks import report
from benchmarks.out_of_core import generate


def test_generated_file_has_the_shape_range_and_is_chunk_size_independent(tmp_path):
    small, large = tmp_path / "a.npy", tmp_path / "b.npy"
    generate(small, rows=1000, features=30, seed=3, chunk_rows=1000)
    generate(large, rows=1000, features=30, seed=3, chunk_rows=1000)
    x = np.load(small, mmap_mode="r")
    assert x.shape == (1000, 30) and x.dtype == np.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert float(np.std(x)) > 0.05  # not a constant matrix
    np.testing.assert_array_equal(x, np.load(large))
    assert not list(tmp_path.glob("*.partial"))  # written under a temporary name, then renamed


def _section(streamed_rss, ratios, rows=2_000_000):
    run = {"rows": rows, "features": 1000, "layer_sizes": [256, 64], "epochs": 2,
           "batch_size": 256, "backend": "jax", "pretrain_seconds": 100.0,
           "samples_per_second": [1000.0, 2000.0]}
    payload = {
        "file_gib": 7.45,
        "streamed": {**run, "peak_rss_mib": streamed_rss},
        "memory": {**run, "rows": 200_000, "peak_rss_mib": 2000.0},
        "rate_ratio": ratios,
        "rss_target_mib": 1536.0,
        "rate_target": 0.8,
        "meets_rss_target": streamed_rss < 1536.0,
        "meets_rate_target": min(ratios) >= 0.8,
    }
    state = {"load_average": 0.1, "busiest_processes": []}
    return {"section": "scale", "mode": "full", "settings": {}, "command": "c",
            "started_utc": "2026-11-23T00:00:00+00:00", "wall_seconds": 1.0,
            "machine_start": state, "machine_end": state, "machine": {"logical_cpus": 2},
            "runs": [{"name": "jax", "payload": payload}]}


def test_scale_report_states_each_target_verdict():
    text = "\n".join(report.scale_lines(_section(1300.0, [0.95, 0.9])))
    assert "1300 MiB -> **met**" in text and "0.95, 0.90 -> **met**" in text
    assert "not the issue's 2,000,000" not in text
    text = "\n".join(report.scale_lines(_section(1700.0, [0.95, 0.7], rows=200_000)))
    assert "1700 MiB -> **missed**" in text and "0.95, 0.70 -> **missed**" in text
    assert "not the issue's 2,000,000" in text
