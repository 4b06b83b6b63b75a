"""End-to-end runs of the `tiedae` command, in-process on the current backend."""

import csv
import json

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from tiedae import runs
from tiedae.cli import build_parser, main
from tiedae.pretraining import StackedDenoisingAutoencoder

TINY = ["--layers", "12,6", "--epochs", "2", "--batch-size", "64", "--quiet", "--seed", "3"]


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    X = (data.data[:240] / 16.0).astype(np.float32)
    return X, data.target[:240]


def write_format(tmp_path, fmt, X, y):
    """Write X (and y) in one of the input formats; return (path, extra CLI args)."""
    if fmt == "npy":
        np.save(tmp_path / "x.npy", X)
        np.save(tmp_path / "y.npy", y)
        return tmp_path / "x.npy", ["--labels", str(tmp_path / "y.npy")]
    if fmt == "npz":
        np.savez(tmp_path / "x.npz", X=X, y=y)
        return tmp_path / "x.npz", []
    sep = "," if fmt == "csv" else "\t"
    lines = [sep.join([f"px{i}" for i in range(X.shape[1])] + ["digit"])]
    lines += [sep.join([repr(float(v)) for v in row] + [str(label)]) for row, label in zip(X, y)]
    path = tmp_path / f"x.{fmt}"
    path.write_text("\n".join(lines) + "\n")
    return path, ["--label-column", "digit"]


@pytest.mark.parametrize("fmt", ["npy", "npz", "csv", "tsv"])
def test_pretrain_writes_a_complete_run_directory(tmp_path, digits, fmt, capsys):
    X, y = digits
    data, label_args = write_format(tmp_path, fmt, X, y)
    run_dir = tmp_path / "run"
    assert main(["pretrain", str(data), "--run-dir", str(run_dir), *label_args, *TINY]) == 0

    stack = StackedDenoisingAutoencoder.load(run_dir / runs.PRETRAINED_MODEL)
    embedding = np.load(run_dir / runs.EMBEDDING)
    np.testing.assert_allclose(embedding, stack.transform(X), rtol=1e-5, atol=1e-6)
    assert embedding.shape == (len(X), 6)

    with open(run_dir / runs.CONFIG, "rb") as handle:
        config = tomllib.load(handle)["pretrain"]
    assert config["layers"] == [12, 6] and config["epochs"] == 2 and config["seed"] == 3
    assert config["finetune_denoising"] is True and stack.finetune_denoising is True

    with open(run_dir / runs.HISTORY) as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["stage"], r["epoch"]) for r in rows] == [
        ("layer_1", "1"), ("layer_1", "2"), ("layer_2", "1"), ("layer_2", "2")
    ]
    assert all(float(r["loss"]) > 0 and float(r["val_loss"]) > 0 for r in rows)

    metrics = json.loads((run_dir / runs.METRICS).read_text())["pretrain"]
    assert metrics["n_samples"] == len(X) and metrics["n_features"] == 64
    assert metrics["backend"] == keras.backend.backend()
    assert [layer["width"] for layer in metrics["layers"]] == [12, 6]

    pngs = sorted(p.name for p in (run_dir / runs.PLOTS).iterdir())
    assert pngs == ["embedding.png", "filters.png", "loss_curves.png", "reconstructions.png"]
    summary = capsys.readouterr().out
    assert "tiedae pretrain" in summary and str(run_dir) in summary


def test_config_file_is_used_and_flags_override_it(tmp_path, digits):
    X, _ = digits
    np.save(tmp_path / "x.npy", X)
    (tmp_path / "cfg.toml").write_text('[pretrain]\nlayers = [10, 5]\nepochs = 1\ncorruption = "gaussian"\ncorruption_level = 0.05\n'
                                      'finetune_epochs = 1\nfinetune_denoising = true\n')
    run_dir = tmp_path / "run"
    code = main(["pretrain", str(tmp_path / "x.npy"), "--run-dir", str(run_dir), "--config",
                 str(tmp_path / "cfg.toml"), "--layers", "9,4", "--no-finetune-denoising", "--quiet"])
    assert code == 0
    with open(run_dir / runs.CONFIG, "rb") as handle:
        config = tomllib.load(handle)["pretrain"]
    assert config["layers"] == [9, 4] and config["finetune_denoising"] is False  # the flags win
    stack = StackedDenoisingAutoencoder.load(run_dir / runs.PRETRAINED_MODEL)
    assert stack.finetune_denoising is False and len(stack.finetune_history_["loss"]) == 1
    assert config["corruption"] == "gaussian" and config["corruption_level"] == 0.05  # from the file
    assert np.load(run_dir / runs.EMBEDDING).shape == (len(X), 4)


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory, digits):
    X, y = digits
    folder = tmp_path_factory.mktemp("cli")
    np.savez(folder / "d.npz", X=X, y=y)
    run_dir = folder / "run"
    assert main(["pretrain", str(folder / "d.npz"), "--run-dir", str(run_dir), *TINY]) == 0
    return folder / "d.npz", run_dir


def test_embed_matches_the_library(tmp_path, digits, pretrained_run):
    X, _ = digits
    data, run_dir = pretrained_run
    out = tmp_path / "codes.npy"
    assert main(["embed", str(data), "--run-dir", str(run_dir), "--output", str(out)]) == 0
    stack = StackedDenoisingAutoencoder.load(run_dir / runs.PRETRAINED_MODEL)
    np.testing.assert_allclose(np.load(out), stack.transform(X), rtol=1e-5, atol=1e-6)


def test_finetune_with_one_seed_gives_one_model(tmp_path, pretrained_run):
    """--seed fixes the classifier too (its new layers, dropout, batch order), not only the splits."""
    data, run_dir = pretrained_run
    weights = []
    for _ in range(2):
        assert main(["finetune", str(data), "--run-dir", str(run_dir), "--epochs", "2",
                     "--seed", "3", "--quiet"]) == 0
        model = keras.models.load_model(run_dir / runs.FINETUNED_MODEL)
        weights.append([keras.ops.convert_to_numpy(w) for w in model.weights])
    for first, second in zip(*weights):
        np.testing.assert_array_equal(first, second)


def test_finetune_then_evaluate(digits, pretrained_run):
    X, y = digits
    data, run_dir = pretrained_run
    assert main(["finetune", str(data), "--run-dir", str(run_dir), "--epochs", "3", "--compare", "--quiet"]) == 0
    metrics = json.loads((run_dir / runs.METRICS).read_text())
    finetune = metrics["finetune"]
    assert finetune["classes"] == list(range(10))
    assert finetune["n_train_labels"] + finetune["n_test"] == len(X)
    for name in ("pretrained", "random_init"):
        assert 0.0 <= finetune[name]["test_accuracy"] <= 1.0

    model = keras.models.load_model(run_dir / runs.FINETUNED_MODEL)
    expected = float(np.mean(np.argmax(model.predict(X, verbose=0), axis=-1) == y))
    assert main(["evaluate", str(data), "--run-dir", str(run_dir)]) == 0
    evaluation = json.loads((run_dir / runs.METRICS).read_text())["evaluate"]
    assert evaluation["accuracy"] == pytest.approx(expected)
    stack = StackedDenoisingAutoencoder.load(run_dir / runs.PRETRAINED_MODEL)
    assert evaluation["reconstruction_mse"] == pytest.approx(
        float(np.mean((stack.reconstruct(X) - X) ** 2)), rel=1e-5
    )


def test_demo_reports_both_accuracies(tmp_path, monkeypatch, capsys):
    from tiedae.cli import demo

    monkeypatch.setattr(demo, "DEMO_CONFIG", dict(demo.DEMO_CONFIG, layers=[16, 8], corruption_level=0.2, epochs=1))
    monkeypatch.setattr(demo, "FINETUNE_EPOCHS", 2)
    monkeypatch.setattr(demo, "REPEATS", 2)
    assert main(["demo", "--run-dir", str(tmp_path / "demo"), "--quiet"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / "demo" / runs.METRICS).read_text())["demo"]
    assert metrics["finished"] is True
    assert metrics["n_labelled"] == pytest.approx(0.1 * 0.7 * 1797, abs=2)
    for name in ("pretrained", "random_init"):
        values = metrics["test_accuracies"][name]
        assert len(values) == 2 and all(0.0 <= v <= 1.0 for v in values)
        assert metrics[f"test_accuracy_{name}"] == pytest.approx(np.mean(values))
        assert f"{100 * np.mean(values):.2f}% (std {100 * np.std(values):.2f})" in out
    assert str(tmp_path / "demo") in out


@pytest.mark.parametrize("command", ["pretrain", "finetune", "embed", "evaluate", "demo"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert "--run-dir" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["pretrain", "{tmp}/missing.npy", "--run-dir", "{tmp}/run"], "does not exist"),
        (["pretrain", "{tmp}/x.npy", "--run-dir", "{tmp}/run", "--layers", "8,0"], "'layers' must be positive"),
        (["pretrain", "{tmp}/x.npy", "--run-dir", "{tmp}/run", "--corruption", "blur"], "unknown value 'blur'"),
        (["pretrain", "{tmp}/x.npy", "--run-dir", "{tmp}/run", "--epochs", "many"], "'epochs' must be an integer"),
        (["embed", "{tmp}/x.npy", "--run-dir", "{tmp}/run"], "not a tiedae run directory"),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path, argv, message, capsys):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((20, 4)).astype(np.float32))
    code = main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "run" / runs.PRETRAINED_MODEL).exists()


def test_ctrl_c_during_pretraining_says_how_to_resume(tmp_path, digits, monkeypatch, capsys):
    import signal

    from tiedae.pretraining import PretrainingCheckpoint
    from tiedae.pretraining.interrupt import StopOnInterrupt

    X, _ = digits
    np.save(tmp_path / "x.npy", X)
    original = StopOnInterrupt.on_train_batch_end

    def ctrl_c_in_layer_2(self, batch, logs=None):
        if self.model.name == "greedy_layer_1" and batch == 0:
            signal.raise_signal(signal.SIGINT)
        return original(self, batch, logs)

    monkeypatch.setattr(StopOnInterrupt, "on_train_batch_end", ctrl_c_in_layer_2)
    argv = ["pretrain", str(tmp_path / "x.npy"), "--run-dir", str(tmp_path / "run"), *TINY]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "interrupted; 1 of 2 layers are saved" in err and "--resume" in err
    assert PretrainingCheckpoint(tmp_path / "run").read_manifest()["completed_layers"] == 1

    monkeypatch.setattr(StopOnInterrupt, "on_train_batch_end", original)
    assert main([*argv, "--resume"]) == 0
    assert np.load(tmp_path / "run" / runs.EMBEDDING).shape == (len(X), 6)


def test_evaluate_matches_labels_by_value_and_refuses_unknown_ones(tmp_path, digits, pretrained_run, capsys):
    X, y = digits
    data, run_dir = pretrained_run
    np.save(tmp_path / "float.npy", y.astype(np.float64))  # 0.0 .. 9.0
    np.save(tmp_path / "int.npy", y.astype(np.int64))
    assert main(["finetune", str(data), "--run-dir", str(run_dir), "--labels", str(tmp_path / "float.npy"),
                 "--epochs", "20", "--learning-rate", "0.01", "--quiet"]) == 0
    model = keras.models.load_model(run_dir / runs.FINETUNED_MODEL)
    expected = float(np.mean(np.argmax(model.predict(X, verbose=0), axis=-1) == y))
    assert expected > 0.2  # comparing as text (1.0 vs 1) gave 0
    assert main(["evaluate", str(data), "--run-dir", str(run_dir), "--labels", str(tmp_path / "int.npy")]) == 0
    assert json.loads((run_dir / runs.METRICS).read_text())["evaluate"]["accuracy"] == pytest.approx(expected)

    # Labels that share no class with the classifier's: an error, not 0%.
    np.save(tmp_path / "shifted.npy", y + 100)
    before = (run_dir / runs.METRICS).read_text()
    capsys.readouterr()
    assert main(["evaluate", str(data), "--run-dir", str(run_dir), "--labels", str(tmp_path / "shifted.npy")]) == 2
    err = capsys.readouterr().err
    assert "none of the labels is one of the 10 classes the classifier was trained on" in err
    assert (run_dir / runs.METRICS).read_text() == before
    # Some unknown: a warning, and they count as wrong.
    partly = y.copy()
    partly[:40] = 100
    np.save(tmp_path / "partly.npy", partly)
    assert main(["evaluate", str(data), "--run-dir", str(run_dir), "--labels", str(tmp_path / "partly.npy")]) == 0
    assert "warning: 40 of 240 labels are none of the classes" in capsys.readouterr().err
    predicted = np.argmax(model.predict(X, verbose=0), axis=-1)
    accuracy = json.loads((run_dir / runs.METRICS).read_text())["evaluate"]["accuracy"]
    assert accuracy == pytest.approx(float(np.mean((predicted == y)[40:])) * 200 / 240)


def test_fresh_pretraining_drops_the_old_classifier_and_diverging_finetune_keeps_it(tmp_path, digits, capsys):
    X, y = digits
    np.savez(tmp_path / "d.npz", X=X, y=y)
    data, run_dir = str(tmp_path / "d.npz"), tmp_path / "run"
    assert main(["pretrain", data, "--run-dir", str(run_dir), *TINY]) == 0
    assert main(["finetune", data, "--run-dir", str(run_dir), "--epochs", "1", "--quiet"]) == 0
    model_bytes = (run_dir / runs.FINETUNED_MODEL).read_bytes()
    metrics = (run_dir / runs.METRICS).read_text()

    # A learning rate that sends the weights to infinity: refused after training, nothing replaced.
    capsys.readouterr()
    assert main(["finetune", data, "--run-dir", str(run_dir), "--epochs", "1", "--quiet",
                 "--learning-rate", "1e38"]) == 2
    err = capsys.readouterr().err
    assert "fine-tuning (pretrained) diverged: the loss became nan" in err and err.count("\n") == 1
    assert (run_dir / runs.FINETUNED_MODEL).read_bytes() == model_bytes
    assert (run_dir / runs.METRICS).read_text() == metrics

    assert main(["evaluate", data, "--run-dir", str(run_dir)]) == 0
    assert set(json.loads((run_dir / runs.METRICS).read_text())) == {"pretrain", "finetune", "evaluate"}
    assert main(["pretrain", data, "--run-dir", str(run_dir), *TINY, "--overwrite"]) == 0
    assert not (run_dir / runs.FINETUNED_MODEL).exists()
    assert set(json.loads((run_dir / runs.METRICS).read_text())) == {"pretrain"}
    assert main(["evaluate", data, "--run-dir", str(run_dir)]) == 0  # labels, but no stale classifier
    assert "accuracy" not in json.loads((run_dir / runs.METRICS).read_text())["evaluate"]


def test_demo_reruns_into_its_own_folder_and_overwrites_only_when_asked(tmp_path, monkeypatch, capsys):
    from tiedae.cli import demo

    def stop(*args, **kwargs):  # past the run-directory check: the demo would start training
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "build_stack", stop)
    run_dir = tmp_path / "demo"
    assert main(["demo", "--run-dir", str(run_dir), "--quiet"]) == 130
    assert main(["demo", "--run-dir", str(run_dir), "--quiet"]) == 130  # an interrupted demo runs again
    assert json.loads((run_dir / runs.METRICS).read_text())["demo"] == {"finished": False}
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    assert main(["demo", "--run-dir", str(tmp_path / "mine"), "--quiet"]) == 2
    assert "not a tiedae run; choose another --run-dir or pass --overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]
    assert main(["demo", "--run-dir", str(tmp_path / "mine"), "--quiet", "--overwrite"]) == 130
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"


def test_help_shows_defaults_and_single_percent_signs(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "10% of the labels" in text and "%%" not in text
    with pytest.raises(SystemExit):
        build_parser().parse_args(["finetune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in ("(default: 300)", "(default: 128)", "(default: 0.003)", "(default: 0)",
                    "(default: on from 300 labelled training rows, two or more per class)"):
        assert default in text, default
