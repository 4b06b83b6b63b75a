"""A convolutional autoencoder whose decoder is the transpose of its encoder."""

import numbers

import keras
from keras import ops

from tiedae._validation import check_layer_sizes
from tiedae.layers.tied_views import TiedDecoder, TiedEncoder
from tiedae.layers._weight_arguments import WeightArgumentsMixin


def _check_pair(value, name):
    """Return `value` (an int or a pair of ints) as a pair of positive ints."""
    items = (value, value) if isinstance(value, numbers.Integral) else value
    try:
        items = tuple(items)
    except TypeError:
        items = ()
    if len(items) != 2 or any(
        isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0 for v in items
    ):
        raise ValueError(
            f"`{name}` must be a positive integer or a pair of positive integers "
            f"(height, width); received {value!r}."
        )
    return tuple(int(v) for v in items)


def _axis_geometry(size, kernel, stride, padding):
    """How one spatial axis of length `size` goes through a conv and back.

    Returns `(out, pad_before, output_padding)`: the encoder's output length,
    the rows the encoder padded before the input (TensorFlow's "same"
    convention, which `keras.ops.conv` follows on every backend), and the
    `output_padding` that makes the "valid" transposed convolution at least
    `pad_before + size` long. Cropping `[pad_before, pad_before + size)` of it
    gives exactly the adjoint of the encoder's convolution.
    """
    if padding == "valid":
        out = (size - kernel) // stride + 1
        pad_before = 0
    else:
        out = -(-size // stride)
        pad_before = max((out - 1) * stride + kernel - size, 0) // 2
    natural = (out - 1) * stride + kernel
    # Always < stride (as transposed convolutions require).
    output_padding = max(pad_before + size - natural, 0)
    return out, pad_before, output_padding


@keras.saving.register_keras_serializable(package="tiedae")
class Conv2DLayerAutoencoder(WeightArgumentsMixin, keras.layers.Layer):
    """A stack of 2-D convolutions and the matching transposed convolutions, tied.

    For `filters=[f1, f2]` and images with `c` channels, the layer computes

    ```
    encoder:  z1 = a(conv(x,  K1) + b1)             c  -> f1 channels
              z2 = a(conv(z1, K2) + b2)             f1 -> f2 channels, the code
    decoder:  y1 = a(conv_transpose(z2, K2) + c2)   f2 -> f1 channels
              y  = g(conv_transpose(y1, K1) + c1)   f1 -> c channels
    ```

    with `a = activation` and `g = output_activation`. Each kernel `K_k`, of
    shape `(kernel_h, kernel_w, in_channels, out_channels)`, is one variable
    used by both halves: the transposed convolution is the exact adjoint
    (transpose) of the convolution, just as `W.T` is for a dense layer. The
    decoder biases `c_k` are separate variables.

    The reconstruction has the input's shape for every accepted combination of
    sizes, strides and padding: the decoder pads or crops each transposed
    convolution to the size of the corresponding encoder input (also for odd
    sizes, where `"same"` convolutions pad unevenly). The only refused inputs
    are those a convolution cannot take at all (`"valid"` padding with an
    image smaller than the kernel at some layer) and unknown spatial sizes.

    Args:
        filters: Non-empty list of positive integers, the number of output
            channels of each encoder convolution. The last one is the number
            of channels of the code.
        kernel_size: An int or a pair `(height, width)`, the kernel size of
            every convolution.
        strides: An int or a pair `(height, width)`, the stride of every
            convolution.
        padding: `"same"` or `"valid"` (case-insensitive).
        activation: Activation of every hidden layer, encoder and decoder.
            Default: `None` (linear).
        output_activation: Activation of the reconstruction. Defaults to
            `activation` (`"same"`); pass `"sigmoid"` for images in [0, 1].
        use_bias: Whether the convolutions have biases.
        kernel_initializer: Initializer for the tied kernels.
        bias_initializer: Initializer for the encoder and decoder biases.
        kernel_regularizer: Regularizer applied to each tied kernel (once).
        bias_regularizer: Regularizer applied to every bias vector.
        activity_regularizer: Regularizer applied to the layer's output.
        kernel_constraint: Constraint applied to each tied kernel.
        bias_constraint: Constraint applied to every bias vector.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        4-D tensor `(batch_size, height, width, channels)` (channels last)
        with known height, width and channels.

    Output shape:
        The same shape as the input: the reconstruction.

    Example:

    >>> inputs = keras.Input(shape=(28, 28, 1))
    >>> noisy = tiedae.MaskingNoise(0.25)(inputs)
    >>> autoencoder = Conv2DLayerAutoencoder(
    ...     [32, 64], kernel_size=3, strides=2, activation="relu",
    ...     output_activation="sigmoid")
    >>> model = keras.Model(inputs, autoencoder(noisy))
    >>> model.compile(optimizer="adam", loss="binary_crossentropy")
    >>> codes = autoencoder.encode(images)  # shape (batch_size, 7, 7, 64)
    """

    def __init__(
        self,
        filters,
        kernel_size=3,
        strides=1,
        padding="same",
        activation=None,
        output_activation="same",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.filters = check_layer_sizes(filters, "filters")
        self.kernel_size = _check_pair(kernel_size, "kernel_size")
        self.strides = _check_pair(strides, "strides")
        if not isinstance(padding, str) or padding.lower() not in ("same", "valid"):
            raise ValueError(f"`padding` must be 'same' or 'valid'; received {padding!r}.")
        self.padding = padding.lower()
        self._store_weight_arguments(
            activation, output_activation, use_bias, kernel_initializer, bias_initializer,
            kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint,
        )
        self.image_shape = None
        self.code_shape = None
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def _check_image_shape(self, shape):
        if shape is None or len(shape) != 4:
            raise ValueError(
                f"Layer '{self.name}' expects 4-D inputs (batch, height, width, "
                f"channels); received shape {None if shape is None else tuple(shape)}."
            )
        if any(d is None for d in shape[1:]):
            raise ValueError(
                f"Layer '{self.name}' needs known height, width and channels to make "
                f"its reconstruction exactly the input's size; received input shape "
                f"{tuple(shape)}."
            )

    def build(self, input_shape):
        self._check_image_shape(input_shape)
        self.image_shape = tuple(int(d) for d in input_shape[1:])
        # Per layer: input (h, w), output (h, w), pad_before (h, w), output_padding (h, w).
        self._geometry = []
        size = self.image_shape[:2]
        for k in range(len(self.filters)):
            axes = []
            for axis in range(2):
                kernel, stride = self.kernel_size[axis], self.strides[axis]
                if self.padding == "valid" and size[axis] < kernel:
                    raise ValueError(
                        f"Layer '{self.name}' cannot take input shape {tuple(input_shape)}: "
                        f"convolution {k} receives spatial size {size} but "
                        f"kernel_size={self.kernel_size} with padding='valid' needs at "
                        "least the kernel's size. Use padding='same', a smaller "
                        "kernel_size or strides, or fewer filters."
                    )
                axes.append(_axis_geometry(size[axis], kernel, stride, self.padding))
            out = tuple(a[0] for a in axes)
            self._geometry.append(
                (size, out, tuple(a[1] for a in axes), tuple(a[2] for a in axes))
            )
            size = out
        self.code_shape = size + (self.filters[-1],)

        channels = [self.image_shape[-1]] + self.filters
        self.kernels, self.encoder_biases, self.decoder_biases = [], [], []
        for k, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            self.kernels.append(
                self.add_weight(
                    name=f"kernel_{k}",
                    shape=self.kernel_size + (c_in, c_out),
                    initializer=self.kernel_initializer,
                    regularizer=self.kernel_regularizer,
                    constraint=self.kernel_constraint,
                )
            )
            if self.use_bias:
                self.encoder_biases.append(self._add_bias(f"encoder_bias_{k}", c_out))
                self.decoder_biases.append(self._add_bias(f"decoder_bias_{k}", c_in))
        self.input_spec = keras.layers.InputSpec(
            ndim=4, axes={1: self.image_shape[0], 2: self.image_shape[1], 3: self.image_shape[2]}
        )
        self.built = True

    def _check_shape(self, shape, expected, what):
        if len(shape) != 4 or tuple(shape[1:]) != tuple(expected):
            raise ValueError(
                f"Layer '{self.name}' was built for {what}s of shape "
                f"(batch, {', '.join(map(str, expected))}); received shape {tuple(shape)}."
            )

    def _bias(self, x, bias):
        return ops.add(x, ops.cast(bias, self.compute_dtype))

    def encode(self, inputs, training=None):
        """Map images `(batch, height, width, channels)` to codes `(batch, *code_shape)`."""
        self._check_built("encode")
        inputs = ops.convert_to_tensor(inputs)  # lists and NumPy arrays have no usable dtype
        self._check_shape(inputs.shape, self.image_shape, "input")
        h = ops.cast(inputs, self.compute_dtype)
        for k, kernel in enumerate(self.kernels):
            h = ops.conv(
                h, ops.cast(kernel, self.compute_dtype), strides=self.strides,
                padding=self.padding, data_format="channels_last",
            )
            if self.use_bias:
                h = self._bias(h, self.encoder_biases[k])
            h = self.activation(h)
        return h

    def decode(self, codes, training=None):
        """Map codes `(batch, *code_shape)` back to images of the input's shape."""
        self._check_built("decode")
        codes = ops.convert_to_tensor(codes)
        self._check_shape(codes.shape, self.code_shape, "code")
        h = ops.cast(codes, self.compute_dtype)
        for k in reversed(range(len(self.kernels))):
            size, _, pad_before, output_padding = self._geometry[k]
            h = ops.conv_transpose(
                h, ops.cast(self.kernels[k], self.compute_dtype), strides=self.strides,
                padding="valid", output_padding=output_padding, data_format="channels_last",
            )
            if tuple(h.shape[1:3]) != size:
                h = h[:, pad_before[0]: pad_before[0] + size[0],
                      pad_before[1]: pad_before[1] + size[1], :]
            if self.use_bias:
                h = self._bias(h, self.decoder_biases[k])
            h = self.output_activation(h) if k == 0 else self.activation(h)
        return h

    def call(self, inputs, training=None):
        return self.decode(self.encode(inputs, training=training), training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_code_shape(self, input_shape):
        return (input_shape[0],) + tuple(self.code_shape)

    def compute_decoded_shape(self, code_shape):
        return (code_shape[0],) + tuple(self.image_shape)

    def encoder_model(self, name=None):
        """A `keras.Model` from images to codes that shares this layer's variables."""
        self._check_built("encoder_model")
        inputs = keras.Input(shape=self.image_shape, dtype=self.dtype_policy.variable_dtype)
        return keras.Model(inputs, TiedEncoder(self)(inputs), name=name or f"{self.name}_encoder")

    def decoder_model(self, name=None):
        """A `keras.Model` from codes to reconstructions that shares this layer's variables."""
        self._check_built("decoder_model")
        codes = keras.Input(shape=self.code_shape, dtype=self.dtype_policy.variable_dtype)
        return keras.Model(codes, TiedDecoder(self)(codes), name=name or f"{self.name}_decoder")

    def get_config(self):
        base_config = super().get_config()
        config = {
            "filters": list(self.filters),
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            **self._weight_arguments_config(),
        }
        return {**base_config, **config}
