"""What a user would write instead: a minimal hand-written PyTorch tied autoencoder.

Kept deliberately plain and honest: one `nn.Module` holding one kernel per
layer (used transposed by the decoder), separate encoder and decoder biases,
sigmoid units, binary cross-entropy on the logits of the reconstruction,
`torch.optim.Adam`, eager mode, and `torch.autocast` for bfloat16. No
`torch.compile`, no custom kernels. The step is timed exactly like the Keras
models in `speed.py`, interleaved with the same GEMM floor (`TorchFloor`).
On a GPU (`--device cuda`, the default when PyTorch sees one) the training
images are moved to the GPU once, as a user would for a dataset this small.

    python -m benchmarks.torch_reference --json out.json
"""

import argparse
import contextlib
import itertools
import math
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks._util import cpu_seconds, load_average, write_final_json, write_json
from benchmarks.data import cycle_rows, load_fashion_mnist
from benchmarks.gemm_floor import (
    FLOOR_DTYPE,
    make_floor,
    parse_arch,
    step_record,
    step_summary,
    time_floor_repetition,
    torch_device,
    training_gemms,
)


class TiedAutoencoder(torch.nn.Module):
    def __init__(self, input_dim, layer_sizes):
        super().__init__()
        widths = [input_dim] + list(layer_sizes)
        self.kernels = torch.nn.ParameterList()
        self.encoder_biases = torch.nn.ParameterList()
        self.decoder_biases = torch.nn.ParameterList()
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            limit = math.sqrt(6.0 / (fan_in + fan_out))  # Glorot uniform, as Keras
            self.kernels.append(torch.nn.Parameter(torch.empty(fan_in, fan_out).uniform_(-limit, limit)))
            self.encoder_biases.append(torch.nn.Parameter(torch.zeros(fan_out)))
            self.decoder_biases.append(torch.nn.Parameter(torch.zeros(fan_in)))

    def forward(self, x):
        """Returns the logits of the reconstruction."""
        h = x
        for w, b in zip(self.kernels, self.encoder_biases):
            h = torch.sigmoid(torch.addmm(b, h, w))
        for k in reversed(range(len(self.kernels))):
            h = torch.addmm(self.decoder_biases[k], h, self.kernels[k].t())
            if k > 0:
                h = torch.sigmoid(h)
        return h


def train_steps(model, optimizer, batches, autocast):
    loss = None
    for x in batches:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            logits = model(x)
        loss = F.binary_cross_entropy_with_logits(logits.float(), x)
        loss.backward()
        optimizer.step()
    return float(loss.detach())


def measure(arch_text, precision, x_train, x_test, args):
    input_dim, layer_sizes = parse_arch(arch_text)
    torch.manual_seed(args.seed)
    device = args.device
    model = TiedAutoencoder(input_dim, layer_sizes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    if precision == "mixed_bfloat16":
        autocast = lambda: torch.autocast(device, dtype=torch.bfloat16)  # noqa: E731
    else:
        autocast = contextlib.nullcontext
    batch = args.batch_size
    x = torch.from_numpy(x_train).to(device)
    batches = [x[i * batch : (i + 1) * batch] for i in range(args.steps)]
    floor = make_floor("torch", training_gemms(input_dim, layer_sizes, batch),
                       FLOOR_DTYPE[precision], device=device)
    start = time.perf_counter()
    train_steps(model, optimizer, batches[: args.warmup], autocast)
    warmup_seconds = time.perf_counter() - start
    steps, floors, step_cpu, floor_cpu, losses = [], [], [], [], []
    for _ in range(args.reps):
        cpu, start = cpu_seconds(), time.perf_counter()
        losses.append(train_steps(model, optimizer, batches, autocast))
        wall = time.perf_counter() - start
        steps.append(wall / args.steps)
        step_cpu.append((cpu_seconds() - cpu) / wall)
        seconds, cores = time_floor_repetition(floor, args.steps)
        floors.append(seconds)
        floor_cpu.append(cores)
    x_test = torch.from_numpy(x_test).to(device)
    with torch.no_grad(), autocast():
        logits = model(x_test)
    test_loss = float(F.binary_cross_entropy_with_logits(logits.float(), x_test))
    return step_record(
        runner="torch-handwritten", arch=arch_text, precision=precision, variant="tied",
        floor_library="torch", args=args, warmup_seconds=warmup_seconds,
        step_seconds=steps, step_cpu=step_cpu, floor_seconds=floors, floor_cpu=floor_cpu,
        train_loss=losses[-1], test_loss=test_loss,
        params=sum(p.numel() for p in model.parameters()),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True)
    parser.add_argument("--archs", default="784-1000-1000-1000,784-500-250-100")
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    args = parser.parse_args(argv)
    args.device = args.device or torch_device()
    if args.device != "cpu" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: this PyTorch ({torch.__version__}) sees no "
                         "CUDA GPU. Use --device cpu, or run on a GPU machine.")
    (x_train, _), (x_test, _) = load_fashion_mnist()
    needed = max(args.steps, args.warmup) * args.batch_size
    x_train = cycle_rows(x_train, needed)
    gpu = torch.cuda.get_device_name(0) if args.device != "cpu" else None
    payload = {
        "backend": "torch-handwritten",
        "versions": {"torch": torch.__version__, "numpy": np.__version__,
                     "torch_threads": torch.get_num_threads(), "gpu": gpu,
                     "float32_matmul": torch.get_float32_matmul_precision()},
        "python": platform.python_version(),
        "load_average_start": load_average(),
        "results": [],
    }
    for arch, precision in itertools.product(args.archs.split(","), args.precisions.split(",")):
        r = measure(arch, precision, x_train, x_test, args)
        print(f"[speed torch-handwritten] {arch} {precision}: {step_summary(r)}, "
              f"test loss {r['test_loss']:.4f}", flush=True)
        payload["results"].append(r)
        write_json(args.json, payload)
    write_final_json(args.json, payload)


if __name__ == "__main__":
    main()
