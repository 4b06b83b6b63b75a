"""precision=: what the machine offers for bfloat16, what "auto" picks, and bfloat16 training."""

import keras
import numpy as np
import pytest

from tiedae import StackedDenoisingAutoencoder
from tiedae import precision as precision_module
from tiedae.precision import cpu_bf16_support, resolve_precision


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 {flags}\n\nprocessor\t: 1\nflags\t: fpu\n")
    return str(path)


@pytest.mark.parametrize("flags, expected", [
    ("avx512f avx512_bf16 amx_tile amx_bf16", "amx"),
    ("avx512f avx512_bf16", "avx512_bf16"),
    ("avx2 fma", "none"),
])
def test_cpu_support_from_flags(tmp_path, flags, expected):
    assert cpu_bf16_support(_cpuinfo(tmp_path, flags)) == expected


def test_missing_cpuinfo_means_no_support(tmp_path):
    assert cpu_bf16_support(str(tmp_path / "absent")) == "none"


def test_auto_picks_bfloat16_only_on_an_engine_the_backend_uses(monkeypatch):
    monkeypatch.delenv("TIEDAE_BF16_ENGINE")
    monkeypatch.setattr(precision_module, "gpu_bf16_support", lambda backend=None: None)
    monkeypatch.setattr(precision_module, "cpu_bf16_support", lambda: "amx")
    # XLA's CPU products use no AMX: JAX stays in float32 on an AMX CPU.
    assert resolve_precision("auto", "jax") == "float32"
    assert resolve_precision("auto", "torch") == "bfloat16"
    assert resolve_precision("auto", "tensorflow") == "bfloat16"
    monkeypatch.setattr(precision_module, "cpu_bf16_support", lambda: "avx512_bf16")
    assert resolve_precision("auto", "tensorflow") == "bfloat16"
    assert resolve_precision("auto", "jax") == "float32"
    monkeypatch.setattr(precision_module, "cpu_bf16_support", lambda: "none")
    assert resolve_precision("auto", "torch") == "float32"
    monkeypatch.setattr(precision_module, "gpu_bf16_support", lambda backend=None: "H100")
    assert resolve_precision("auto", "jax") == "bfloat16"
    monkeypatch.setenv("TIEDAE_BF16_ENGINE", "none")
    assert resolve_precision("auto", "jax") == "float32"


def test_unknown_precision_is_refused_in_one_sentence():
    with pytest.raises(ValueError, match=r"`precision` must be one of 'auto', 'float32', 'bfloat16'"):
        StackedDenoisingAutoencoder([4], precision="fp16")


def test_bfloat16_the_backend_cannot_run_is_refused(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no bfloat16 kernel")

    monkeypatch.setattr(keras.ops, "matmul", broken)
    with pytest.raises(ValueError, match=r"cannot run on the .* backend here .*Use precision='float32'"):
        resolve_precision("bfloat16")


def _low_rank(rng, n=256, d=24):
    return (1 / (1 + np.exp(-(rng.normal(size=(n, 3)) @ rng.normal(size=(3, d)))))).astype("float32")


def test_bfloat16_stack_trains_in_bfloat16_and_keeps_float32_weights(rng):
    x = _low_rank(rng)
    kwargs = dict(layer_sizes=[12, 6], epochs=3, finetune_epochs=2, seed=3, verbose=0,
                  learning_rate=0.01)
    f32 = StackedDenoisingAutoencoder(**kwargs, precision="float32").pretrain(x)
    bf16 = StackedDenoisingAutoencoder(**kwargs, precision="bfloat16").pretrain(x)
    assert f32.precision_ == "float32" and bf16.precision_ == "bfloat16"
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in bf16.autoencoder_.weights)
    assert bf16.transform(x[:5]).dtype == np.float32
    # Same seed, same data: the losses agree to bfloat16's precision but are not identical,
    # which they would be had the products stayed in float32.
    for a, b in zip(f32.history_ + [f32.finetune_history_], bf16.history_ + [bf16.finetune_history_]):
        np.testing.assert_allclose(b["loss"], a["loss"], rtol=0.02)
    assert any(a["loss"] != b["loss"] for a, b in zip(f32.history_, bf16.history_))
    # Fine-tuning trained a bfloat16 twin and handed its weights back.
    assert bf16.finetune_history_["loss"][-1] < bf16.finetune_history_["loss"][0]
    np.testing.assert_allclose(bf16.reconstruct(x[:32]), f32.reconstruct(x[:32]), atol=0.05)


def test_precision_round_trips_through_save_and_resume(rng, tmp_path):
    x = _low_rank(rng, n=128)
    stack = StackedDenoisingAutoencoder([8, 4], epochs=2, seed=1, verbose=0, precision="bfloat16")
    stack.pretrain(x, run_dir=tmp_path / "run")
    stack.save(tmp_path / "s.keras")
    loaded = StackedDenoisingAutoencoder.load(tmp_path / "s.keras")
    assert loaded.precision == "bfloat16" and loaded.precision_ == "bfloat16"
    np.testing.assert_array_equal(loaded.transform(x), stack.transform(x))
    again = StackedDenoisingAutoencoder([8, 4], epochs=2, seed=1, verbose=0, precision="bfloat16")
    again.pretrain(x, run_dir=tmp_path / "run", resume=True)  # every layer from the checkpoint
    np.testing.assert_array_equal(again.transform(x), stack.transform(x))


@pytest.mark.parametrize("name", ["PretrainedMLPClassifier", "TiedAutoencoderTransformer"])
def test_estimators_pass_precision_to_their_stack(rng, name):
    import tiedae

    estimator_class = getattr(tiedae, name)
    x = _low_rank(rng, n=96)
    y = (x[:, 0] > np.median(x[:, 0])).astype(int)
    kwargs = dict(layer_sizes=(6,), pretrain_epochs=1, random_state=0, precision="bfloat16")
    if name == "PretrainedMLPClassifier":
        kwargs["epochs"] = 1
    fitted = estimator_class(**kwargs).fit(x, y)
    assert fitted.get_params()["precision"] == "bfloat16" and fitted.sda_.precision_ == "bfloat16"
    with pytest.raises(ValueError, match="`precision` must be one of"):
        estimator_class(**{**kwargs, "precision": "half"}).fit(x, y)
