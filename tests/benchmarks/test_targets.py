"""The quality benchmarks' target verdicts, from hand-made results (no training, no timing)."""

import pytest

from benchmarks.quality import few_label_targets
from benchmarks.seeded import targets_met


def test_few_label_targets_compare_means_and_the_gap():
    few = {
        "100": {"pre": [0.70, 0.74], "ctl": [0.60, 0.62]},
        "1000": {"pre": [0.83, 0.85], "ctl": [0.80, 0.80]},
    }
    targets = targets_met(few_label_targets(few, "pre", "ctl", label=", semi"))
    by_what = {t["what"].split(" (")[0]: t for t in targets}
    assert by_what["100 labels, pretrained network, semi >= 65%"]["measured"] == pytest.approx(0.72)
    gap = by_what["100 labels, pretrained minus random init, semi >= 10 points"]
    assert gap["measured"] == pytest.approx(0.11) and gap["met"]
    assert "random init 61.00%" in gap["what"]
    thousand = by_what["1,000 labels, pretrained network, semi >= 83%"]
    assert thousand["measured"] == pytest.approx(0.84) and thousand["met"]


def test_missing_label_counts_give_no_targets_and_a_miss_is_flagged():
    assert few_label_targets({}, "pre", "ctl") == []
    [t] = targets_met(few_label_targets({"1000": {"pre": [0.8], "ctl": [0.7]}}, "pre", "ctl"))
    assert not t["met"] and t["measured"] == pytest.approx(0.8)


def test_semi_section_judges_each_schedule_against_its_own_control():
    from benchmarks import semi_supervised as semi

    schedule = "sgd momentum 0.9 (lr 0.01)"
    settings = {"supervised_schedule": schedule, "semi_epochs": 5}
    out = {"pretrain_seconds": [100.0, 120.0], "few_labels": {"100": {
        semi.PRETRAINED: [0.73], semi.CONTROL: [0.70],
        semi.SUPERVISED.format(schedule): [0.72],
        semi.SUPERVISED_CONTROL.format(schedule): [0.30],
    }}}
    by_what = {t["what"].split(" (")[0]: t for t in targets_met(semi.targets(out, settings))}
    semi_gap = by_what["100 labels, pretrained minus random init, semi-supervised >= 10 points"]
    sgd_gap = by_what["100 labels, pretrained minus random init, supervised fine-tuning >= 10 points"]
    assert semi_gap["measured"] == pytest.approx(0.03) and not semi_gap["met"]
    assert sgd_gap["measured"] == pytest.approx(0.42) and sgd_gap["met"]
    notes = semi.notes(out, settings)
    assert notes[0] == "Mean pretraining time per seed: 110 s."
    assert "70.00% (semi-supervised, Adam) and 30.00% (sgd" in notes[1]


def test_clustering_targets_name_their_recipe_and_the_variant_has_none():
    from benchmarks import deep_clustering
    from benchmarks.report import miss_reason

    out = {"clustering": {deep_clustering.AE_KMEANS: {"accuracy": [0.50, 0.54]},
                          deep_clustering.DEC: {"accuracy": [0.60, 0.66]}}}
    gpu = targets_met(deep_clustering.targets(out, {"pretrain_epochs": 0}))
    cpu = targets_met(deep_clustering.targets(out, {"pretrain_epochs": 10,
                                                    "recipe": "short CPU recipe: x"}))
    assert [t["measured"] for t in cpu] == pytest.approx([0.52, 0.63])
    assert [t["met"] for t in cpu] == [False, True]
    assert all("(DEC-keras protocol)" in t["what"] for t in gpu)
    assert all("(short CPU recipe: x)" in t["what"] for t in cpu)
    assert deep_clustering.targets(out, {"pretrain_epochs": 10, "variant": True}) == []
    # Each recipe's miss gets its own explanation; the GPU one quotes the run's own means.
    payload = {"tables": deep_clustering.tables(out, {"n_images": 10})}
    gpu_why, cpu_why = miss_reason(gpu[0]["what"], payload), miss_reason(cpu[0]["what"], payload)
    assert gpu_why and cpu_why and gpu_why != cpu_why
    assert "60.6%" in gpu_why and "GPU section" in cpu_why
    assert "tiedae's mean (52.00%) is below that spread" in gpu_why
    assert "is above the target (63.00%)" in gpu_why


def test_shifted_section_fine_tunes_on_semis_labelled_images_and_their_shifted_copies(monkeypatch):
    import numpy as np

    from benchmarks import semi_supervised as semi
    from benchmarks.run import MODES

    rng = np.random.default_rng(1)
    x_train = rng.random((3000, 784)).astype(np.float32)
    y_train = np.repeat(np.arange(10), 300)
    data = ((x_train, y_train), (x_train[:10], y_train[:10]))
    seen, schedules = [], []
    monkeypatch.setattr(semi, "pretrain_seed",
                        lambda seed, x, settings, out, log: (None, np.random.default_rng(seed),
                                                             None, x))
    monkeypatch.setattr(semi, "semi_accuracy",
                        lambda sda, pretrained, x, y, *rest: seen.append((x, y)) or 0.5)

    def supervised(sda, pretrained, x, y, x_test, y_test, epochs, batch_size, seed, schedule):
        schedules.append((schedule, epochs))
        return seen.append((x, y)) or 0.5

    monkeypatch.setattr(semi, "finetune_accuracy", supervised)
    base = {**MODES["quick"]["semi"], "supervised_schedule": None}
    shifted = MODES["quick"]["semi_shifted"]
    for settings in (base, shifted):
        semi.run_seed(0, data, settings, {"few_labels": {}}, log=lambda line: None)
    # 100 and 1,000 labels, pretrained and control (semi-supervised only); then the same with
    # four copies each, semi-supervised and supervised.
    assert [len(x) for x, _ in seen] == [100, 100, 1000, 1000] + [500] * 4 + [5000] * 4
    for (x_semi, y_semi), shifted_runs in ((seen[0], seen[4:8]), (seen[2], seen[8:12])):
        for x_shifted, y_shifted in shifted_runs:
            np.testing.assert_array_equal(x_shifted[:len(x_semi)], x_semi)
            np.testing.assert_array_equal(y_shifted, np.tile(y_semi, 5))
    # The supervised rows repeat the quality section's few-label schedule.
    quality = MODES["quick"]["quality"]
    assert set(schedules) == {(quality["few_labels_schedule"], quality["few_label_epochs"])}
    adam = shifted["supervised_schedule"]
    targets = semi.targets({"few_labels": {"1000": {
        semi.PRETRAINED: [0.84], semi.CONTROL: [0.8],
        semi.SUPERVISED.format(adam): [0.83], semi.SUPERVISED_CONTROL.format(adam): [0.8],
    }}}, shifted)
    what, supervised_what = [t["what"] for t in targets]
    assert "semi-supervised, shifted copies of the labelled images" in what
    assert "supervised fine-tuning, shifted copies of the labelled images" in supervised_what
    # A miss would get its own explanation, not the unshifted row's.
    from benchmarks.report import miss_reason

    plain = semi.targets({"few_labels": {"1000": {semi.PRETRAINED: [0.8], semi.CONTROL: [0.8]}}},
                         base)
    assert "copies" in miss_reason(what, {}) and (miss_reason(what, {})
                                                  != miss_reason(plain[0]["what"], {}))
    assert miss_reason(supervised_what, {}) == miss_reason(what, {})
    # The shifted rows' gap has its own explanation, not the 1,000-label one.
    gaps = semi.targets({"few_labels": {"100": {
        semi.PRETRAINED: [0.73], semi.CONTROL: [0.70],
        semi.SUPERVISED.format(adam): [0.72], semi.SUPERVISED_CONTROL.format(adam): [0.70],
    }}}, shifted)
    gap_reasons = {miss_reason(t["what"], {}) for t in gaps if "minus random init" in t["what"]}
    [gap_reason] = gap_reasons
    assert "control" in gap_reason and gap_reason != miss_reason(what, {})


def test_full_run_time_adds_the_stored_full_runs_of_every_cpu_section():
    from benchmarks.report import CPU_SECTIONS, _full_run_time

    stored = {name: {"mode": "full", "wall_seconds": 1800.0} for name in CPU_SECTIONS}
    assert _full_run_time(stored).startswith(f"about {len(CPU_SECTIONS) / 2:.1f} hours")
    stored["semi"]["mode"] = "quick"
    assert "not every section" in _full_run_time(stored)


def test_shifted_section_is_compared_seed_by_seed_with_semi_and_quality():
    from benchmarks.row_names import FINE_TUNED, RANDOM_INIT, SUPERVISED
    from benchmarks.report import shifted_against_unshifted

    def section(mode, rows, settings=None):
        return {"mode": mode, "settings": settings or {},
                "runs": [{"payload": {"raw": {"few_labels": {"1000": rows}}}}]}

    adam = {"few_labels_schedule": "adam", "few_label_epochs": 100}
    stored = {
        "semi": section("full", {"pre": [0.82, 0.83], "ctl": [0.80, 0.80]}),
        "quality": section("full", {FINE_TUNED: [0.81, 0.82], RANDOM_INIT: [0.79, 0.80],
                                    "sklearn LogisticRegression": [0.7, 0.7]}, adam),
        "semi_shifted": section("full", {"pre": [0.83, 0.85], "ctl": [0.82, 0.81],
                                         SUPERVISED.format("adam"): [0.83, 0.83]},
                                {"supervised_schedule": "adam", "supervised_epochs": 100}),
    }
    table = "\n".join(shifted_against_unshifted(stored))
    assert "| 1,000 | pre | *semi* | 82.50% | 84.00% | +1.50 (+1.00 to +2.00) |" in table
    assert "| 1,000 | ctl | *semi* | 80.00% | 81.50% | +1.50 (+1.00 to +2.00) |" in table
    assert (f"| 1,000 | {SUPERVISED.format('adam')} | *quality* | 81.50% | 83.00% | "
            "+1.50 (+1.00 to +2.00) |") in table
    # Another schedule or epoch count in the quality section is not the same training.
    stored["quality"]["settings"] = {**adam, "few_label_epochs": 30}
    assert f"| {SUPERVISED.format('adam')} |" not in "\n".join(shifted_against_unshifted(stored))
    # Runs of different modes (or a missing section) are not compared.
    stored["semi"]["mode"] = "quick"
    assert shifted_against_unshifted(stored) == []
    assert shifted_against_unshifted({"semi_shifted": stored["semi_shifted"]}) == []


class FakeUMAP:
    """Stands in for umap.UMAP (a bench-only dependency): records its arguments, and embeds
    by keeping the first `n_components` features."""

    calls = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        FakeUMAP.calls.append(kwargs)

    def fit_transform(self, x):
        self.kwargs["n_rows"] = len(x)
        return x[:, : self.kwargs["n_components"]]


def test_clustering_section_measures_n2d_on_the_code_before_refinement(monkeypatch):
    import sys
    import types

    import numpy as np
    from sklearn.datasets import make_blobs
    from sklearn.metrics import adjusted_rand_score

    import tiedae.estimators
    from benchmarks import deep_clustering
    from benchmarks.report import miss_reason
    from benchmarks.run import MODES

    code, y = make_blobs(300, n_features=10, centers=10, cluster_std=0.3, random_state=0)
    x = np.random.default_rng(0).random((300, 784)).astype(np.float32)

    class FakeDEC:
        def __init__(self, n_clusters, **kwargs):
            self.random_state = kwargs["random_state"]

        def fit(self, X):
            self.autoencoder_code_ = code.astype(np.float32)
            self.kmeans_labels_ = self.labels_ = y
            self.n_iter_, self.converged_ = 7, True
            self.finetune_history_ = {"loss": [0.1]}
            return self

    monkeypatch.setattr(tiedae.estimators, "DeepEmbeddedClustering", FakeDEC)
    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=FakeUMAP))
    FakeUMAP.calls.clear()
    settings = {**MODES["quick"]["clustering"], "n_images": 300}
    data = ((x, y), (x[:0], y[:0]))
    out = {"pretrain_seconds": [], "dec_steps": [], "dec_converged": [],
           "finetune_final_loss": [], "clustering": {}}
    deep_clustering.run_seed(3, data, settings, out, log=lambda line: None)
    # N2D embeds the autoencoder's code, its baseline the pixels, with N2D's settings.
    assert [call["n_rows"] for call in FakeUMAP.calls] == [300, 300]
    assert all(call == {"n_neighbors": 20, "min_dist": 0.0, "n_components": 10,
                        "random_state": 3, "n_rows": 300} for call in FakeUMAP.calls)
    # The mixture on the (here: identity) embedding of well-separated blobs finds them.
    n2d = out["clustering"][deep_clustering.N2D]["accuracy"]
    assert n2d == [pytest.approx(1.0)]
    labels = deep_clustering.umap_mixture_labels(code, settings, seed=0)
    assert adjusted_rand_score(y, labels) == pytest.approx(1.0)
    assert set(out["umap_seconds"]) == {deep_clustering.N2D, deep_clustering.N2D_RAW}
    # It is a target row with its own explanation, and a recipe without the setting skips it.
    [ae_target, _, n2d_target] = targets_met(deep_clustering.targets(out, settings))
    assert deep_clustering.N2D in n2d_target["what"] and n2d_target["met"]
    payload = {"tables": deep_clustering.tables(out, settings)}
    assert miss_reason(n2d_target["what"], payload) != miss_reason(ae_target["what"], payload)
    FakeUMAP.calls.clear()
    plain = {"pretrain_seconds": [], "dec_steps": [], "dec_converged": [],
             "finetune_final_loss": [], "clustering": {}}
    deep_clustering.run_seed(3, data, {k: v for k, v in settings.items()
                                       if k != "umap_neighbors"}, plain, log=lambda line: None)
    assert not FakeUMAP.calls and deep_clustering.N2D not in plain["clustering"]
    assert "N2D" not in deep_clustering.describe({**MODES["full"]["clustering"],
                                                  "umap_neighbors": None})
    assert "N2D" in deep_clustering.describe(MODES["full"]["clustering"])


def _clustering_run(scores):
    """A clustering run's payload from {row: (accuracy, NMI)}, one seed each."""
    from benchmarks import deep_clustering

    out = {"clustering": {row: {"accuracy": [acc], "NMI": [nmi]}
                          for row, (acc, nmi) in scores.items()}}
    settings = {"n_images": 10, "recipe": "short CPU recipe: x", "pretrain_epochs": 10}
    return {"tables": deep_clustering.tables(out, settings),
            "targets": targets_met(deep_clustering.targets(out, settings))}


def test_miss_explanations_quote_the_rendered_runs_numbers(monkeypatch):
    from benchmarks import report
    from benchmarks.row_names import AE_KMEANS, DEC, KMEANS_RAW, N2D, N2D_RAW

    scores = {AE_KMEANS: (0.50, 0.55), DEC: (0.58, 0.60), N2D: (0.55, 0.70),
              N2D_RAW: (0.61, 0.65), KMEANS_RAW: (0.47, 0.51)}
    payload = _clustering_run(scores)
    monkeypatch.setattr(report, "_header", lambda section, title: [])
    section = {"mode": "full", "section": "clustering", "runs": [{"payload": payload}]}
    text = "\n".join(report.quality_lines(section))
    assert ("N2D raises NMI above every other row (0.700, against 0.600 for DEC) but not "
            "accuracy (55.00%, against 58.00% for DEC), and the same UMAP and mixture on the raw "
            "pixels reach 61.00% accuracy (NMI 0.650): this recipe's short-trained code") in text
    # Other numbers, other words: the verdicts follow the run, not the text of an earlier one.
    scores[N2D] = (0.60, 0.62)
    why = report.miss_reason(f"{N2D}, clustering accuracy >= 62% (short CPU recipe: x)",
                             _clustering_run(scores))
    assert why.startswith("N2D reaches NMI 0.620 and accuracy 60.00% (DEC 0.600 and 58.00%), "
                          "and the same UMAP and mixture on the raw pixels reach 61.00% accuracy "
                          "(NMI 0.650). N2D's published runs")


def test_row_means_leave_out_rows_named_in_several_tables():
    from benchmarks.miss_reasons import _row_means

    payload = {"tables": [
        {"columns": ["test accuracy"], "rows": [{"method": "pre", "test accuracy": [0.7, 0.8]},
                                                {"method": "only here", "test accuracy": [0.5]}]},
        {"columns": ["test accuracy"], "rows": [{"method": "pre", "test accuracy": [0.9]}]},
    ]}
    assert _row_means(payload) == {("only here", "test accuracy"): pytest.approx(0.5)}


def test_quality_kmeans_and_semi_gap_explanations_read_their_run():
    from benchmarks import semi_supervised as semi
    from benchmarks.report import miss_reason
    from benchmarks.row_names import KMEANS_PCA, KMEANS_RAW, KMEANS_SDA_CODE

    clustering = {"columns": ["accuracy", "NMI"], "rows": [
        {"method": KMEANS_SDA_CODE, "accuracy": [0.52], "NMI": [0.55]},
        {"method": KMEANS_RAW, "accuracy": [0.48], "NMI": [0.51]},
        {"method": KMEANS_PCA.format(50), "accuracy": [0.49], "NMI": [0.51]}]}
    why = miss_reason("k-means on the code, clustering accuracy >= 62%", {"tables": [clustering]})
    assert "k-means on it scores 52.00%, against 49.00% for the best baseline (PCA-50)" in why
    # The semi section's gap explanation states the classical control's verdict of this run.
    sgd = "sgd momentum 0.9 (lr 0.01)"
    settings = {"supervised_schedule": sgd}
    for supervised_control, verdict in ((0.30, "is met: 42.0 points"),
                                        (0.68, "is missed too: 4.0 points")):
        targets = targets_met(semi.targets({"few_labels": {"100": {
            semi.PRETRAINED: [0.73], semi.CONTROL: [0.70], semi.SUPERVISED.format(sgd): [0.72],
            semi.SUPERVISED_CONTROL.format(sgd): [supervised_control]}}}, settings))
        [semi_gap] = [t for t in targets if "minus random init, semi-supervised" in t["what"]]
        why = miss_reason(semi_gap["what"], {"targets": targets})
        assert why.endswith(f"Against the classical SGD control (the supervised rows) the gap "
                            f"{verdict}.")


def _pretrain_section(bf16_seconds, machine):
    from benchmarks.report import pretrain_notes, pretrain_targets

    def payload(precision, seconds, rss):
        return {"backend": "torch", "precision": precision, "n_train": 60000, "peak_rss_mib": rss,
                "pretrain_seconds": seconds,
                "layers": [{"final_loss": 0.26}, {"final_loss": 0.43}, {"final_loss": 0.28}]}

    section = {"machine": machine, "runs": [{"payload": payload("float32", 180.0, 1500.0)},
                                            {"payload": payload("bfloat16", bf16_seconds, 1400.0)}]}
    targets = pretrain_targets(section)
    return {t["what"]: t for t in targets}, pretrain_notes(section, targets)


def test_the_amx_pretraining_target_is_judged_and_explained_on_amx_machines_only():
    amx = {"isa": ["avx512f", "amx_bf16"]}
    targets, notes = _pretrain_section(148.0, amx)
    amx_target = targets["bfloat16 pretraining <= 60 s on an AMX CPU (torch)"]
    assert not amx_target["met"] and amx_target["by"] == "88 s"
    assert targets["peak RSS of float32 pretraining <= 1,944 MiB (torch)"]["met"]
    assert len(notes) == 1 and "Why *bfloat16 pretraining <= 60 s" in notes[0]
    targets, notes = _pretrain_section(55.0, amx)
    assert targets["bfloat16 pretraining <= 60 s on an AMX CPU (torch)"]["met"] and notes == []
    targets, notes = _pretrain_section(148.0, {"isa": ["avx512f"]})
    assert not any("AMX" in what for what in targets) and notes == []
