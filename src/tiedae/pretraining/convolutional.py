"""Greedy layer-wise pretraining of a tied convolutional autoencoder.

The convolutional counterpart of `StackedDenoisingAutoencoder`: block `k` is
trained as a one-block tied convolutional denoising autoencoder
(`Conv2DLayerAutoencoder([filters[k]])` behind a corruption layer) whose input
is the corrupted clean feature map of the blocks below and whose target is
that clean feature map. The clean maps are computed once per block, in
batches. The trained kernels and biases are then copied, by index and
verified, into one deep `Conv2DLayerAutoencoder(filters)`.
"""

import keras
import numpy as np

from tiedae._validation import check_layer_sizes, check_seed
from tiedae.corruption import get_corruption
from tiedae.layers.conv_autoencoder import Conv2DLayerAutoencoder
from tiedae.pretraining.interrupt import StopOnDivergence
from tiedae.pretraining.reconstruction_model import ReconstructionModel
from tiedae.seeding import set_random_seed


def _per_block(value, n, name):
    values = list(value) if isinstance(value, (list, tuple)) else [value] * n
    if len(values) != n:
        raise ValueError(f"`{name}` has {len(values)} entries but `filters` has {n} blocks; pass one value or {n}.")
    return values


def _encode_in_batches(block, x, batch_size):
    return np.concatenate(
        [keras.ops.convert_to_numpy(block.encode(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
    )


def pretrain_conv_stack(
    x,
    filters,
    kernel_size=3,
    strides=2,
    padding="same",
    activation="relu",
    corruption="masking",
    corruption_level=0.2,
    epochs=5,
    batch_size=64,
    learning_rate=1e-3,
    seed=0,
    verbose=0,
):
    """Pretrain a tied convolutional autoencoder one block at a time.

    Args:
        x: Images, `(n, height, width, channels)` (channels_last).
        filters: Filters of each encoder block, e.g. `[32, 64]`.
        kernel_size, strides, padding: As for `Conv2DLayerAutoencoder` (all blocks).
        activation: Hidden activation of every block.
        corruption, corruption_level: Kind and level, one or one per block.
        epochs: Epochs per block, one or one per block.
        batch_size, learning_rate: Training settings.
        seed: Block `k` starts from `keras.utils.set_random_seed(seed + k)`.
        verbose: Passed to `fit`.

    Returns:
        `(autoencoder, histories)`: the built deep `Conv2DLayerAutoencoder`
        carrying the pretrained kernels and biases, and one loss history per block.
    """
    filters = check_layer_sizes(filters, "filters")
    seed = check_seed(seed) or 0
    x = np.asarray(x, dtype="float32")
    if x.ndim != 4:
        raise ValueError(f"`x` must be images of shape (n, height, width, channels); received shape {x.shape}.")
    n = len(filters)
    kinds = _per_block(corruption, n, "corruption")
    levels = _per_block(corruption_level, n, "corruption_level")
    epochs = _per_block(epochs, n, "epochs")
    shared = dict(kernel_size=kernel_size, strides=strides, padding=padding, activation=activation)

    blocks, histories, codes, reconstruction = [], [], x, []
    for k, width in enumerate(filters):
        set_random_seed(seed + k)
        # Each block reconstructs its own (clean) input: a linear output for
        # feature maps, a sigmoid for images in [0, 1].
        reconstruction.append("sigmoid" if codes.min() >= 0.0 and codes.max() <= 1.0 else "linear")
        block = Conv2DLayerAutoencoder([width], output_activation=reconstruction[k], name=f"conv_dae_{k}", **shared)
        inputs = keras.Input(codes.shape[1:])
        noise = get_corruption(kinds[k], levels[k], seed=seed + k)
        model = ReconstructionModel(inputs, block(noise(inputs) if noise is not None else inputs),
                                    name=f"greedy_layer_{k}")
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
        history = model.fit(codes, epochs=epochs[k], batch_size=batch_size, shuffle=True,
                            verbose=verbose, callbacks=[StopOnDivergence()])
        histories.append({key: [float(v) for v in values] for key, values in history.history.items()})
        blocks.append(block)
        if k + 1 < n:  # the next block's clean input, once, in batches
            codes = _encode_in_batches(block, codes, batch_size)

    deep = Conv2DLayerAutoencoder(filters, output_activation=reconstruction[0], **shared)
    deep.build((None, *x.shape[1:]))
    for k, block in enumerate(blocks):
        for target, source in ((deep.kernels[k], block.kernels[0]),
                               (deep.encoder_biases[k], block.encoder_biases[0]),
                               (deep.decoder_biases[k], block.decoder_biases[0])):
            value = keras.ops.convert_to_numpy(source)
            target.assign(value)
            if not np.array_equal(keras.ops.convert_to_numpy(target), value):
                raise RuntimeError(f"Copying block {k}'s weights did not reproduce them.")
    return deep, histories
