"""Run the benchmarks and regenerate `docs/benchmarks.md` and its figures.

    python -m benchmarks.run [--quick] [--only SECTION] [--backends jax,tensorflow,torch]
    python -m benchmarks.run --render-only     # re-render from the stored results

Sections: speed, pretrain, quality, clustering, semi, semi_shifted, scale, startup (the CPU
sections, run by default); mapping (only when named: `python -m benchmarks.mapping`, which
stores `docs/mapping.json` itself); gpu, gpu_pretrain, gpu_clustering (only when named, on a
machine with a GPU: `python -m benchmarks.run --only gpu --only gpu_pretrain
--only gpu_clustering --backends jax,torch`).

Each measurement runs in a child process (one per Keras backend, plus the
hand-written PyTorch loop and the NumPy GEMM floor), which writes JSON. The
results of each section are stored in `docs/benchmarks.json` with the command,
mode, date and machine load of the run that produced them; `--only` replaces
just that section, and the report is rewritten from the whole file.
"""

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import report
from benchmarks._util import load_average

ROOT = Path(__file__).resolve().parent.parent
CPU_SECTIONS = report.CPU_SECTIONS
GPU_SECTIONS = ("gpu", "gpu_pretrain", "gpu_clustering")
SECTIONS = (*CPU_SECTIONS, "mapping", *GPU_SECTIONS)
# Sections that read no Fashion-MNIST.
WITHOUT_FASHION_MNIST = ("startup", "mapping")
BACKENDS = ("jax", "tensorflow", "torch")
BIG, SMALL = "784-1000-1000-1000", "784-500-250-100"
# DEC-keras's Fashion-MNIST choices (its run_exp.py): kernels and end-to-end optimizer.
DEC_KERAS_INIT = {"class_name": "VarianceScaling",
                  "config": {"scale": 1 / 3, "mode": "fan_in", "distribution": "uniform"}}
SGD_MOMENTUM = {"class_name": "SGD", "config": {"momentum": 0.9}}
CPU_CLUSTERING_RECIPE = "short CPU recipe: greedy pretraining, then Adam end to end"



def shifted_semi(semi, quality):
    """The semi section's stacks and labelled images, each with 1-pixel-shifted copies; the
    supervised rows fine-tune with the quality section's few-label schedule, so they are that
    section's few-label rows plus the copies."""
    return {**semi, "label_shifts": 1, "supervised_schedule": quality["few_labels_schedule"],
            "supervised_epochs": quality["few_label_epochs"]}


# Settings of a full run, per section.
FULL = {
    "speed": {"steps": 12, "reps": 7, "warmup": 3, "loss_steps": 234},
    "pretrain": {"n_train": 60000, "epochs": 15},
    "quality": {
        "seeds": 5,
        "n_pretrain": 60000,
        "n_test": 10000,
        "layer_sizes": [1000, 1000, 1000],
        "pretrain_epochs": 10,
        "sweep_pretrain_epochs": 5,
        "finetune_epochs": 30,
        "few_label_epochs": 100,
        "few_labels": [100, 1000],
        "all_labels_schedule": "adam, dropout 0.3, cosine decay",
        "few_labels_schedule": "adam",
        "all_labels_n": 60000,
        "sklearn_max_iter": 200,
        "kmeans_n_init": 10,
        "sweep_size": 8,
    },
    # `DeepEmbeddedClustering` on DEC's architecture with a recipe short enough for
    # 2 cores (the GPU section runs DEC-keras's long one), on the 60,000 training images.
    "clustering": {"seeds": 5, "n_images": 60000, "n_test": 10000, "recipe": CPU_CLUSTERING_RECIPE,
                   "layer_sizes": [500, 500, 2000, 10], "corruption_level": 0.2,
                   "pretrain_epochs": 10, "finetune_epochs": 10, "finetune_optimizer": "adam",
                   "finetune_learning_rate": 1e-3, "kernel_initializer": "glorot_uniform",
                   "n_clusters": 10, "kmeans_n_init": 10, "baseline_n_init": 10,
                   "dec_max_iter": 2000, "dec_update_interval": 140, "dec_tol": 0.001,
                   # N2D's published UMAP settings (umap_dim = clusters, min_dist 0).
                   "umap_neighbors": 20},
    # The quality section's stacks (same seeds, images and recipe).
    "semi": {"seeds": 5, "n_pretrain": 60000, "n_test": 10000,
             "layer_sizes": [1000, 1000, 1000], "pretrain_epochs": 10,
             "few_labels": [100, 1000], "semi_epochs": 5,
             "reconstruction_weight": 1.0, "labeled_fraction": 0.25,
             "supervised_schedule": "sgd momentum 0.9 (lr 0.01)", "supervised_epochs": 100},
    # The size: 2,000,000 x 1,000 float32 (8 GB on disk, in TMPDIR).
    "scale": {"rows": 2_000_000, "memory_rows": 200_000, "features": 1000,
              "layer_sizes": "256,64", "epochs": 2},
    # `tiedae --help`, a refused argument and a tiny run, each in a fresh process.
    "startup": {"repeats": 5},
    # A small batch (the CPU sections') and a large one; 8192^3 fills the GPU.
    "gpu": {"steps": 20, "reps": 5, "warmup": 3, "batch_sizes": [256, 8192],
            "roofline": 8192, "steps_per_execution": 10},
    # The pretrain section's job (the 3 x 1000 stack, 15 epochs per layer).
    "gpu_pretrain": {"n_train": 60000, "epochs": 15},
    # DEC-keras's Fashion-MNIST recipe (all 70,000 images, 300 epochs end to end with
    # SGD 1.0 and momentum 0.9, untied), see benchmarks/deep_clustering.py; the seeds
    # share the GPU side by side.
    "gpu_clustering": {"seeds": 5, "parallel_seeds": True, "time_limit_s": 480,
                       "n_images": 70000, "n_test": 10000,
                       "layer_sizes": [500, 500, 2000, 10], "corruption_level": 0.2,
                       "pretrain_epochs": 0, "finetune_epochs": 300,
                       "finetune_optimizer": SGD_MOMENTUM,
                       "kernel_initializer": DEC_KERAS_INIT,
                       "finetune_learning_rate": 1.0, "n_clusters": 10,
                       "kmeans_n_init": 20, "baseline_n_init": 10,
                       "greedy_variant_epochs": 10, "dec_max_iter": 20000,
                       "dec_update_interval": 140, "dec_tol": 0.001},
}
# "quick" checks the pipeline end to end in minutes on 2 cores: the full settings with these.
QUICK_CHANGES = {
    "speed": {"steps": 8, "reps": 5, "loss_steps": 100},
    "pretrain": {"n_train": 10000, "epochs": 2},
    "quality": {"seeds": 2, "n_pretrain": 10000, "n_test": 2000, "layer_sizes": [500, 500, 500],
                "pretrain_epochs": 2, "sweep_pretrain_epochs": 2, "finetune_epochs": 3,
                "few_label_epochs": 30, "all_labels_schedule": "adam, dropout 0.2, cosine decay",
                "all_labels_n": 10000, "sklearn_max_iter": 20, "kmeans_n_init": 3, "sweep_size": 2},
    "clustering": {"seeds": 2, "n_images": 10000, "n_test": 2000, "layer_sizes": [256, 256, 512, 10],
                   "pretrain_epochs": 2, "finetune_epochs": 2, "kmeans_n_init": 3,
                   "baseline_n_init": 3, "dec_max_iter": 200, "dec_update_interval": 50},
    "semi": {"seeds": 2, "n_pretrain": 10000, "n_test": 2000, "layer_sizes": [500, 500, 500],
             "pretrain_epochs": 2, "semi_epochs": 2, "supervised_epochs": 30},
    "scale": {"rows": 200_000, "memory_rows": 100_000},
    "startup": {"repeats": 3},
    "gpu": {"steps": 10, "reps": 3, "batch_sizes": [256, 4096], "roofline": 4096},
    "gpu_pretrain": {"n_train": 10000, "epochs": 2},
    "gpu_clustering": {"seeds": 2, "time_limit_s": 600, "n_images": 4000, "n_test": 2000,
                       "layer_sizes": [64, 64, 128, 10], "finetune_epochs": 3, "kmeans_n_init": 3,
                       "baseline_n_init": 2, "greedy_variant_epochs": 1, "dec_max_iter": 200,
                       "dec_update_interval": 20},
}
MODES = {"full": FULL, "quick": {name: {**settings, **QUICK_CHANGES.get(name, {})}
                                 for name, settings in FULL.items()}}
# Same stacks and labels as *semi*: only the augmentation differs.
for _settings in MODES.values():
    _settings["semi_shifted"] = shifted_semi(_settings["semi"], _settings["quality"])


def _top_processes(limit=6):
    """The busiest processes (name and %CPU only) when a section starts or ends."""
    try:
        out = subprocess.run(
            ["ps", "-eo", "pid=,pcpu=,comm=", "--sort=-pcpu"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    rows = []
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and int(parts[0]) != os.getpid():
            rows.append({"command": parts[2], "cpu_percent": float(parts[1])})
        if len(rows) >= limit:
            break
    return rows


def _machine_state():
    return {"load_average": load_average(), "busiest_processes": _top_processes()}


class Child:
    """One benchmark subprocess: a module, its arguments and extra environment."""

    def __init__(self, name, module, args, env=None, note=""):
        self.name, self.module, self.args = name, module, list(args)
        self.env = dict(env or {})
        self.note = note

    def run(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            log = Path(tmp) / "stderr.log"
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **self.env}
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p
            )
            cmd = [sys.executable, "-m", self.module, "--json", str(out), *self.args]
            print(f"--- {self.name}: {' '.join(self.args)} {self._env_text()}", flush=True)
            start = time.perf_counter()
            with open(log, "w") as err:
                proc = subprocess.run(cmd, cwd=ROOT, env=env, stderr=err)
            seconds = time.perf_counter() - start
            payload = json.loads(out.read_text()) if out.exists() else {}
            record = {
                "name": self.name,
                "module": self.module,
                "args": self.args,
                "env": self.env,
                "note": self.note,
                "seconds": round(seconds, 1),
                "returncode": proc.returncode,
                "payload": payload,
            }
            if proc.returncode != 0:
                tail = log.read_text().strip().splitlines()[-15:]
                record["error"] = "\n".join(tail)
                print(f"!!! {self.name} failed (exit {proc.returncode}):\n" + record["error"], flush=True)
            return record

    def _env_text(self):
        return " ".join(f"{k}={v}" for k, v in self.env.items())


def speed_children(settings, backends):
    common = [
        "--steps", str(settings["steps"]),
        "--reps", str(settings["reps"]),
        "--warmup", str(settings["warmup"]),
    ]
    both = f"{BIG},{SMALL}"
    children = [
        Child("numpy-floor", "benchmarks.gemm_floor",
              ["--library", "numpy", "--archs", both, "--reps", str(settings["reps"])],
              note="GEMM floor alone with NumPy's BLAS (OpenBLAS)"),
    ]
    for backend in backends:
        children.append(
            Child(backend, "benchmarks.speed",
                  [*common, "--archs", both, "--loss-steps", str(settings["loss_steps"])],
                  env={"KERAS_BACKEND": backend}, note="Keras defaults")
        )
    if "torch" in backends:
        children.append(
            Child("torch-handwritten", "benchmarks.torch_reference", [*common, "--archs", both],
                  note="hand-written PyTorch tied autoencoder (eager)")
        )
    # Investigations: the settings that moved the numbers (see docs/benchmarks.md).
    if "torch" in backends:
        passive = {"OMP_WAIT_POLICY": "PASSIVE"}
        children.append(
            Child("torch", "benchmarks.speed", [*common, "--archs", BIG],
                  env={"KERAS_BACKEND": "torch", **passive},
                  note="OpenMP threads sleep instead of spinning while waiting")
        )
        children.append(
            Child("torch-handwritten", "benchmarks.torch_reference", [*common, "--archs", BIG],
                  env=passive, note="OpenMP threads sleep instead of spinning while waiting")
        )
    if report.DEFAULT_BACKEND in backends:
        children.append(
            Child(report.DEFAULT_BACKEND, "benchmarks.speed",
                  [*common, "--archs", both, "--precisions", "float32",
                   "--variants", "tied,tied-sgd"],
                  env={"KERAS_BACKEND": report.DEFAULT_BACKEND},
                  note="Adam's share of the step: the tied model again with plain SGD")
        )
    if "tensorflow" in backends:
        children.append(
            Child("tensorflow", "benchmarks.speed",
                  [*common, "--archs", BIG, "--variants", "tied", "--jit-compile", "true"],
                  env={"KERAS_BACKEND": "tensorflow"}, note="XLA (jit_compile=True)")
        )
    return children


def gpu_children(settings, backends):
    """The 1000-wide stack on the GPU, per backend and batch size, plus the roofline."""
    common = ["--steps", str(settings["steps"]), "--reps", str(settings["reps"]),
              "--warmup", str(settings["warmup"]), "--archs", BIG]
    small, large = min(settings["batch_sizes"]), max(settings["batch_sizes"])
    children = []
    for backend in backends:
        for batch in settings["batch_sizes"]:
            extra = ["--roofline", str(settings["roofline"])] if batch == large else []
            children.append(Child(backend, "benchmarks.speed",
                                  [*common, "--batch-size", str(batch), "--require-gpu", *extra],
                                  env={"KERAS_BACKEND": backend}, note="Keras defaults"))
    if "torch" in backends:
        children.append(Child("torch-handwritten", "benchmarks.torch_reference",
                              [*common, "--batch-size", str(large), "--device", "cuda"],
                              note="hand-written PyTorch tied autoencoder, images on the GPU"))
    # Investigations: what the step spends beyond its matrix products.
    for backend in backends:
        children.append(Child(
            backend, "benchmarks.speed",
            [*common, "--batch-size", str(large), "--require-gpu",
             "--variants", "tied,tied-self-target"],
            env={"KERAS_BACKEND": backend},
            note="fit(x) with the input as the target: each batch is copied to the GPU once"))
    if report.DEFAULT_BACKEND in backends:
        children.append(Child(
            report.DEFAULT_BACKEND, "benchmarks.speed",
            [*common, "--batch-size", str(small), "--require-gpu", "--variants", "tied",
             "--steps-per-execution", str(settings["steps_per_execution"])],
            env={"KERAS_BACKEND": report.DEFAULT_BACKEND},
            note="several steps per compiled call (Keras's steps_per_execution)"))
    return children


def pretrain_children(settings, backends):
    """The default backend in float32, and each backend that `precision="auto"` would run in
    bfloat16 here, with its float32 run beside it (the 2% loss check is per layer)."""
    from tiedae.precision import cpu_bf16_support

    common = ["--n-train", str(settings["n_train"]), "--epochs", str(settings["epochs"])]
    runs = [(backends[0], "float32")]
    if cpu_bf16_support() != "none":
        for backend in ("torch", "tensorflow"):
            if backend in backends:
                runs += [(backend, "float32"), (backend, "bfloat16")]
    return [Child(backend, "benchmarks.pretrain", [*common, "--precision", precision],
                  env={"KERAS_BACKEND": backend}, note=f"precision {precision}")
            for backend, precision in dict.fromkeys(runs)]


def seeded_children(module):
    """One child on the first backend, for the seeded quality-like sections."""

    def children(settings, backends):
        return [Child(backends[0], module, ["--settings", json.dumps(settings)],
                      env={"KERAS_BACKEND": backends[0]})]

    return children


def deep_clustering_children(settings, backends):
    """DEC-keras's recipe, then the same after tiedae's greedy layer-wise pretraining."""
    greedy = {**settings, "pretrain_epochs": settings["greedy_variant_epochs"],
              "recipe": f"variant: {settings['greedy_variant_epochs']} greedy epochs per layer "
                        "first", "variant": True}
    env = {"KERAS_BACKEND": backends[0]}
    return [
        Child(backends[0], "benchmarks.deep_clustering", ["--settings", json.dumps(settings)],
              env=env, note="DEC-keras's recipe: no greedy pretraining"),
        Child(backends[0], "benchmarks.deep_clustering", ["--settings", json.dumps(greedy)],
              env=env, note=greedy["recipe"]),
    ]


def scale_children(settings, backends):
    args = []
    for key in ("rows", "memory_rows", "features", "layer_sizes", "epochs"):
        args += ["--" + key.replace("_", "-"), str(settings[key])]
    return [
        Child(backends[0], "benchmarks.out_of_core", args, env={"KERAS_BACKEND": backends[0]},
              note="streamed from a memory-mapped .npy vs the same rows in RAM")
    ]


def startup_children(settings, backends):
    return [Child(backends[0], "benchmarks.startup", ["--repeats", str(settings["repeats"]),
                                                      "--backend", backends[0]],
                  note="each call in a fresh process, as a user runs it")]


def run_mapping(quick):
    """The mapping benchmark stores its own results (docs/mapping.json), which the report reads."""
    command = [sys.executable, "-m", "benchmarks.mapping", *(["--quick"] if quick else []),
               "--out", str(ROOT / "docs" / "mapping.json")]
    print("--- mapping: " + " ".join(command[1:]), flush=True)
    if subprocess.run(command, cwd=ROOT).returncode:
        raise SystemExit("the mapping benchmark failed (see above); docs/mapping.json is unchanged")


CHILDREN = {
    "speed": speed_children,
    "pretrain": pretrain_children,
    "quality": seeded_children("benchmarks.quality"),
    "clustering": seeded_children("benchmarks.deep_clustering"),
    "semi": seeded_children("benchmarks.semi_supervised"),
    "semi_shifted": seeded_children("benchmarks.semi_supervised"),
    "scale": scale_children,
    "startup": startup_children,
    "gpu": gpu_children,
    "gpu_pretrain": pretrain_children,
    "gpu_clustering": deep_clustering_children,
}


def run_section(section, mode, backends, command):
    settings = MODES[mode][section]
    started = datetime.datetime.now(datetime.timezone.utc)
    state_start = _machine_state()
    runs = [child.run() for child in CHILDREN[section](settings, backends)]
    return {
        "section": section,
        "mode": mode,
        "settings": settings,
        "backends": list(backends),
        "command": command,
        "started_utc": started.isoformat(timespec="seconds"),
        "wall_seconds": round((datetime.datetime.now(datetime.timezone.utc) - started).total_seconds(), 1),
        "machine_start": state_start,
        "machine_end": _machine_state(),
        "machine": report.describe_machine(),
        "runs": runs,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small settings (minutes, not hours)")
    parser.add_argument(
        "--only", action="append", choices=SECTIONS,
        help="run only this section (repeatable); the others keep their stored results. "
        "Without it, every CPU section runs; mapping and gpu run only when named",
    )
    parser.add_argument("--render-only", action="store_true",
                        help="measure nothing: rewrite the report and its figures from the stored "
                        "results")
    parser.add_argument(
        "--backends", default=",".join(BACKENDS),
        help="comma-separated Keras backends; pretrain and quality use the first",
    )
    parser.add_argument("--results", default=str(ROOT / "docs" / "benchmarks.json"))
    parser.add_argument("--report", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown or not backends:
        parser.error(f"--backends must name some of {', '.join(BACKENDS)}; got {args.backends!r}")
    results_path = Path(args.results)
    stored = json.loads(results_path.read_text()) if results_path.exists() else {}
    if args.render_only:
        figures = report.write_report(stored, Path(args.report))
        print(f"wrote {args.report} and " + ", ".join(str(path) for _, path in figures))
        return
    sections = args.only or CPU_SECTIONS
    if set(sections) - set(WITHOUT_FASHION_MNIST):
        from benchmarks.data import DatasetMissingError, find_fashion_mnist

        try:
            find_fashion_mnist()
        except DatasetMissingError as exc:
            raise SystemExit(str(exc)) from None
    if set(GPU_SECTIONS) & set(sections) and not report.nvidia_gpus():
        raise SystemExit("The gpu sections need an NVIDIA GPU and nvidia-smi finds none on this "
                         "machine; the stored GPU results are kept. Run them on a GPU machine.")
    mode = "quick" if args.quick else "full"
    command = "python -m benchmarks.run " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    for section in sections:
        print(f"=== {section} ({mode}) ===", flush=True)
        if section == "mapping":
            run_mapping(args.quick)
        else:
            stored[section] = run_section(section, mode, backends, command.strip())
            results_path.parent.mkdir(parents=True, exist_ok=True)
            results_path.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
        report.write_report(stored, Path(args.report))
    print(f"wrote {args.report} and {results_path}")


if __name__ == "__main__":
    main()
