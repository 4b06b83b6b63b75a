"""Merging the raw results of seeds run in separate processes (pure Python, no training)."""

from benchmarks.seeded import merge_raw


def test_nested_lists_are_concatenated_key_by_key_and_scalars_replaced():
    into = {
        "pretrain_seconds": [100.0],
        "few_labels": {"100": {"pre": [0.70], "ctl": [0.60]}},
        "n_test": 10000,
        "backend": "jax",
    }
    other = {
        "pretrain_seconds": [120.0, 130.0],
        "few_labels": {"100": {"pre": [0.74], "ctl": [0.62]}, "1000": {"pre": [0.85]}},
        "n_test": 2000,
        "new_list": [1],
        "new_scalar": None,
    }
    result = merge_raw(into, other)
    assert result is into
    assert into == {
        "pretrain_seconds": [100.0, 120.0, 130.0],
        "few_labels": {"100": {"pre": [0.70, 0.74], "ctl": [0.60, 0.62]}, "1000": {"pre": [0.85]}},
        "n_test": 2000,
        "backend": "jax",
        "new_list": [1],
        "new_scalar": None,
    }


def test_merging_seeds_in_order_gives_one_list_per_key_and_leaves_the_parts_alone():
    seeds = [
        {"accuracy": {"pre": [(0.80, 0.81, 0.82)[s]]}, "seconds": [float(s)], "settings": {"lr": s}}
        for s in range(3)
    ]
    merged = {}
    for part in seeds:
        merge_raw(merged, part)
    assert merged == {
        "accuracy": {"pre": [0.80, 0.81, 0.82]},
        "seconds": [0.0, 1.0, 2.0],
        "settings": {"lr": 2},
    }
    # The merged lists and dicts are new objects: later changes to a part do not leak in,
    # and the parts themselves were not extended.
    seeds[0]["seconds"].append(99.0)
    seeds[0]["accuracy"]["pre"].append(0.0)
    assert merged["seconds"] == [0.0, 1.0, 2.0]
    assert merged["accuracy"]["pre"] == [0.80, 0.81, 0.82]
    assert seeds[1] == {"accuracy": {"pre": [0.81]}, "seconds": [1.0], "settings": {"lr": 1}}


def test_merging_nothing_changes_nothing():
    into = {"a": [1], "b": {"c": [2]}}
    assert merge_raw(into, {}) == {"a": [1], "b": {"c": [2]}}
    assert merge_raw({}, {"b": {}}) == {"b": {}}
    assert merge_raw(into, {"a": [], "b": {"c": []}}) == {"a": [1], "b": {"c": [2]}}
