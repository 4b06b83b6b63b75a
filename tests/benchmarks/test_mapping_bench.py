"""The mapping benchmark: targets and the markdown section from stored results; a tiny run."""

import json

import pytest

from benchmarks import mapping


def method(accuracy, f1, map_, seconds=1.0, option="x"):
    mean = dict(accuracy=accuracy, macro_f1=f1, map=map_, map_unweighted=map_, seconds=seconds)
    return {"mean": mean, "per_seed": [mean], "option": option}


def results(pre_map=0.80, pca_map=0.60, random_map=0.75, unknown=0.6, drop=0.01):
    return {
        "dataset": {"description": "toy.", "searched": "nothing else.", "cells": 20, "genes": 5,
                    "reference_cells": 10, "query_cells": 10, "reference_validation_cells": 3},
        "seeds": 2, "retrieval_k": 100, "scanvi": "not installed here.",
        "methods": {mapping.PCA_NAME: method(0.7, 0.6, pca_map, 0.3, "20 components, k=15"),
                    mapping.LR_NAME: method(0.8, 0.7, None),
                    mapping.PRETRAINED: method(0.9, 0.8, pre_map, 12.0),
                    mapping.RANDOM: method(0.85, 0.75, random_map, 10.0)},
        "held_out": {"type": "CD19+ B", "threshold": 0.7, "query_cells": 4, "per_seed": [
            {"held_out_cells_called": {"Unknown": 3, "Dendritic": 1}}],
            "mean": {"unknown_fraction": unknown, "accuracy_drop": drop,
                     "accuracy_other_types_full_reference": 0.9,
                     "accuracy_other_types_held_out": 0.9 - drop,
                     "accuracy_other_types_full_reference_same_threshold": 0.88,
                     "unknown_fraction_other_types": 0.05,
                     "median_confidence_held_out_cells": 0.65}},
    }


def test_targets_met_when_every_margin_is_cleared():
    checked = mapping.targets(results())
    assert [t["met"] for t in checked] == [True, True, True, True]
    assert checked[0]["value"] == pytest.approx(0.80 / 0.60)
    assert checked[1]["value"] == pytest.approx(0.05)
    assert set(checked[0]) == {"target", "value", "goal", "met"}


def test_each_target_misses_on_its_own_side_of_the_goal():
    # 0.62 / 0.50 = 1.24 < 1.26; random init ahead; 0.4 Unknown; a 3-point drop.
    checked = mapping.targets(results(pre_map=0.62, pca_map=0.50, random_map=0.63, unknown=0.4, drop=0.03))
    assert [t["met"] for t in checked] == [False, False, False, False]
    at_goal = mapping.targets(results(unknown=0.5, drop=0.02))
    assert at_goal[2]["met"] and at_goal[3]["met"]  # the goals are inclusive


def test_missing_values_are_not_met():
    stored = results()
    del stored["methods"][mapping.PCA_NAME]
    stored["held_out"]["mean"] = None
    checked = mapping.targets(stored)
    assert [t["met"] for t in checked] == [False, True, False, False]
    assert checked[0]["value"] is None


def test_render_tables_methods_and_explains_each_miss():
    text = mapping.render(results(random_map=0.9, unknown=0.3))
    assert "| PCA + kNN (scanpy ingest) | 20 components, k=15 | 0.700 | 0.600 | 0.600 | 0.3 |" in text
    assert f"| {mapping.LR_NAME} | x | 0.800 | 0.700 | n/a | 1.0 |" in text
    assert f"| {mapping.SCANVI_NAME} | not run | n/a | n/a | n/a | n/a |" in text
    assert "scANVI: not installed here." in text
    missed = [line for line in text.splitlines() if line.startswith("- Missed")]
    assert len(missed) == 2
    assert "random init" in missed[0] and "'Dendritic'" in missed[1]
    assert text.count("| no |") == 2 and text.count("| yes |") == 2


def test_a_tiny_run_on_synthetic_cells(tmp_path):
    tiny = {"tiny": dict(layer_sizes=(8,), epochs=2, finetune_epochs=5, patience=2, batch_size=32)}
    methods = {mapping.PCA_NAME: (mapping.pca_knn, {"5": 5, "10": 10}),
               mapping.LR_NAME: (mapping.logistic, {"C=1": 1.0}),
               mapping.PRETRAINED: (mapping.tiedae_method(True), tiny),
               mapping.RANDOM: (mapping.tiedae_method(False), None)}
    stored = mapping.run(mapping.synthetic(n_per_type=20, n_genes=24), seeds=1, methods=methods,
                         log=lambda *a, **k: None)
    stored = json.loads(json.dumps(stored))  # what --out stores
    assert set(stored["methods"]) == set(methods)
    assert stored["methods"][mapping.RANDOM]["option"] == "tiny"
    assert stored["methods"][mapping.PCA_NAME]["mean"]["accuracy"] > 0.9  # separable types
    assert stored["held_out"]["query_cells"] == 10
    assert stored["selection"]["threshold"] in mapping.THRESHOLDS
    assert [t["met"] for t in stored["targets"]] == [t["met"] for t in mapping.targets(stored)]
    assert "## Reference mapping" in mapping.render(stored)
