"""Wall time and peak memory of greedy layer-wise pretraining on Fashion-MNIST.

    KERAS_BACKEND=jax python -m benchmarks.pretrain --json out.json [--n-train 60000 --epochs 15]

A 3 x 1000 sigmoid stack with masking noise 0.1 / 0.2 / 0.3 (the Theano SdA
tutorial's corruption schedule), Adam, the library's default batch size. The
peak RSS is `resource.getrusage(RUSAGE_SELF).ru_maxrss` of this process.
"""

import argparse
import time

from benchmarks._util import load_average, peak_rss_mib, quiet_backends, write_json

quiet_backends()

import keras  # noqa: E402

from benchmarks.data import load_fashion_mnist  # noqa: E402
from benchmarks.timers import FitTimer  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True)
    parser.add_argument("--n-train", type=int, default=60000)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--layer-sizes", default="1000,1000,1000")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default=None, choices=["float32", "bfloat16", "auto"],
                        help="the stack's precision (default: the Keras policy, float32)")
    args = parser.parse_args(argv)

    from tiedae.pretraining import StackedDenoisingAutoencoder

    (x_train, _), _ = load_fashion_mnist()
    x = x_train[: args.n_train]
    layer_sizes = [int(v) for v in args.layer_sizes.split(",")]
    levels = [0.1, 0.2, 0.3][: len(layer_sizes)] + [0.3] * max(0, len(layer_sizes) - 3)
    payload = {
        "backend": keras.backend.backend(),
        "n_train": len(x),
        "epochs": args.epochs,
        "layer_sizes": layer_sizes,
        "corruption": "masking",
        "corruption_level": levels,
        "batch_size": args.batch_size,
        "data_mib": x.nbytes / 2**20,
        "load_average_start": load_average(),
        "rss_before_mib": peak_rss_mib(),
    }
    sda = StackedDenoisingAutoencoder(
        layer_sizes,
        activation="sigmoid",
        corruption="masking",
        corruption_level=levels,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        verbose=0,
        precision=args.precision,
    )
    timer = FitTimer()
    start = time.perf_counter()
    sda.pretrain(x, callbacks=[timer])
    payload["pretrain_seconds"] = time.perf_counter() - start
    payload["peak_rss_mib"] = peak_rss_mib()
    payload["precision"] = sda.precision_ or "float32"
    payload["layers"] = [
        {"seconds": seconds, "final_loss": history["loss"][-1], "loss": history["loss"],
         "loss_kind": loss}
        for seconds, history, loss in zip(timer.fit_seconds, sda.history_, sda.losses_)
    ]
    payload["load_average_end"] = load_average()
    write_json(args.json, payload)
    print(
        f"[pretrain {payload['backend']} {payload['precision']}] {len(x)} images x {args.epochs} epochs: "
        f"{payload['pretrain_seconds']:.1f} s, peak RSS {payload['peak_rss_mib']:.0f} MiB",
        flush=True,
    )


if __name__ == "__main__":
    main()
