"""A whole symmetric tied-weight autoencoder held in one Keras layer."""

import keras
from keras import ops

from tiedae._validation import check_last_axis, check_layer_sizes, check_rate
from tiedae.layers.tied_views import TiedDecoder, TiedEncoder
from tiedae.layers._weight_arguments import WeightArgumentsMixin


def l2_normalize_safe(x, epsilon=1e-12):
    """Unit-norm rows along the last axis; rows that are all zero stay zero.

    `x / max(||x||, sqrt(epsilon))` has a finite value and gradient at `x = 0`,
    unlike `x / ||x||` (the ancestor divided by the normalised code instead).
    """
    # The norm is taken in float32 so that epsilon does not underflow in float16.
    x32 = ops.cast(x, "float32")
    squared_norm = ops.sum(ops.square(x32), axis=-1, keepdims=True)
    return ops.cast(x32 * ops.rsqrt(ops.maximum(squared_norm, epsilon)), x.dtype)


@keras.saving.register_keras_serializable(package="tiedae")
class DenseLayerAutoencoder(WeightArgumentsMixin, keras.layers.Layer):
    """A symmetric autoencoder whose decoder reuses the encoder's kernels.

    Constructed like `keras.layers.Dense`, with `layer_sizes` (the encoder
    widths) in place of `units`. For an input with `d` features and
    `layer_sizes=[h1, h2, h3]` the layer computes

    ```
    encoder:  z1 = a(x  @ W1 + b1)      (d  -> h1)
              z2 = a(z1 @ W2 + b2)      (h1 -> h2)
              z3 = a(z2 @ W3 + b3)      (h2 -> h3)   the code
    decoder:  y2 = a(z3 @ W3.T + c3)    (h3 -> h2)
              y1 = a(y2 @ W2.T + c2)    (h2 -> h1)
              y  = g(y1 @ W1.T + c1)    (h1 -> d)    the reconstruction
    ```

    with `a = activation` and `g = output_activation`. Each `W_k` is one
    variable used twice (never copied), so the layer holds exactly
    `d*h1 + h1*h2 + h2*h3` kernel parameters; the decoder biases `c_k` are
    variables of their own.

    Args:
        layer_sizes: Non-empty list of positive integers, the encoder widths.
            The last entry is the size of the code.
        activation: Activation of every hidden layer, encoder and decoder.
            Default: `None` (linear).
        output_activation: Activation of the reconstruction. Defaults to
            `activation`; pass `"sigmoid"` for inputs in [0, 1] or `"linear"`
            for unbounded inputs.
        use_bias: Whether the encoder and decoder layers have biases.
        kernel_initializer: Initializer for the tied kernels.
        bias_initializer: Initializer for the encoder and decoder biases.
        kernel_regularizer: Regularizer applied to each tied kernel (once).
        bias_regularizer: Regularizer applied to every bias vector.
        activity_regularizer: Regularizer applied to the layer's output.
        kernel_constraint: Constraint applied to each tied kernel.
        bias_constraint: Constraint applied to every bias vector.
        dropout: Float in [0, 1). During training, the fraction of units of
            every hidden representation (the code included) dropped on its way
            into the next layer. `encode()` returns the code before dropout, so
            the code never depends on it at inference.
        l2_normalize: If `True`, the code is scaled to unit L2 norm (a zero code
            stays zero).
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        N-D tensor with shape `(batch_size, ..., input_dim)`, N >= 2.

    Output shape:
        The same shape as the input: the reconstruction.

    Example:

    >>> inputs = keras.Input(shape=(1000,))
    >>> autoencoder = DenseLayerAutoencoder([100, 50, 20], activation="tanh")
    >>> model = keras.Model(inputs, autoencoder(inputs))
    >>> model.compile(optimizer="adam", loss="mse")
    >>> code = autoencoder.encode(x)  # shape (batch_size, 20)
    >>> encoder = autoencoder.encoder_model()  # a Model sharing the weights
    """

    def __init__(
        self,
        layer_sizes,
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
        dropout=0.0,
        l2_normalize=False,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.layer_sizes = check_layer_sizes(layer_sizes)
        self._store_weight_arguments(
            activation, output_activation, use_bias, kernel_initializer, bias_initializer,
            kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint,
        )
        self.dropout = check_rate(dropout, "dropout")
        self.l2_normalize = bool(l2_normalize)
        self.input_dim = None
        self.dropout_layer = (
            keras.layers.Dropout(self.dropout) if self.dropout > 0 else None
        )
        self.input_spec = keras.layers.InputSpec(min_ndim=2)
        self.supports_masking = False

    @property
    def code_size(self):
        """Width of the code (the last encoder layer)."""
        return self.layer_sizes[-1]

    def build(self, input_shape):
        check_last_axis(input_shape, None, self.name)
        if input_shape[-1] is None:
            raise ValueError(
                f"Layer '{self.name}' needs a known number of input features "
                f"(the last axis); received input shape {tuple(input_shape)}."
            )
        self.input_dim = int(input_shape[-1])
        widths = [self.input_dim] + self.layer_sizes
        self.kernels, self.encoder_biases, self.decoder_biases = [], [], []
        for k, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            self.kernels.append(
                self.add_weight(
                    name=f"kernel_{k}",
                    shape=(fan_in, fan_out),
                    initializer=self.kernel_initializer,
                    regularizer=self.kernel_regularizer,
                    constraint=self.kernel_constraint,
                )
            )
            if self.use_bias:
                self.encoder_biases.append(self._add_bias(f"encoder_bias_{k}", fan_out))
                self.decoder_biases.append(self._add_bias(f"decoder_bias_{k}", fan_in))
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: self.input_dim})
        self.built = True

    def _kernel(self, k, kernels=None):
        """Kernel k in the compute dtype; `kernels`: those already cast for this call."""
        if kernels is not None:
            return kernels[k]
        return ops.cast(self.kernels[k], self.compute_dtype)

    def _compute_kernels(self):
        # Under mixed precision the tied kernel is cast once per call, not once per use
        # (encoder and decoder): half the casts, and half their gradient copies.
        return [ops.cast(kernel, self.compute_dtype) for kernel in self.kernels]

    def _encoder_activation(self, k):
        return self.activation

    def _decoder_activation(self, k):
        """Decoder layer k maps code k back to code k - 1 (the input for k = 0)."""
        return self.output_activation if k == 0 else self.activation

    def _affine(self, x, kernel, bias):
        y = ops.matmul(x, kernel)
        if bias is not None:
            y = ops.add(y, ops.cast(bias, self.compute_dtype))
        return y

    def _dropped(self, x, training):
        if self.dropout_layer is None:
            return x
        return self.dropout_layer(x, training=training)

    def encode(self, inputs, training=None):
        """Map inputs of shape `(..., input_dim)` to codes `(..., layer_sizes[-1])`.

        Dropout (if any) acts between hidden layers during training only and
        never on the returned code.
        """
        self._check_built("encode")
        return self._encode(inputs, training)

    def _encode(self, inputs, training=None, kernels=None):
        inputs = ops.convert_to_tensor(inputs)  # lists and NumPy arrays have no usable dtype
        check_last_axis(inputs.shape, self.input_dim, self.name)
        h = ops.cast(inputs, self.compute_dtype)
        last = len(self.kernels) - 1
        for k in range(len(self.kernels)):
            if k > 0:
                h = self._dropped(h, training)
            bias = self.encoder_biases[k] if self.use_bias else None
            h = self._encoder_activation(k)(self._affine(h, self._kernel(k, kernels), bias))
            if k == last and self.l2_normalize:
                h = l2_normalize_safe(h)
        return h

    def decode(self, codes, training=None):
        """Map codes of shape `(..., layer_sizes[-1])` back to `(..., input_dim)`."""
        self._check_built("decode")
        return self._decode(codes, training)

    def _decode(self, codes, training=None, kernels=None):
        codes = ops.convert_to_tensor(codes)
        check_last_axis(codes.shape, self.code_size, self.name, what="code")
        h = ops.cast(codes, self.compute_dtype)
        for k in reversed(range(len(self.kernels))):
            h = self._dropped(h, training)
            bias = self.decoder_biases[k] if self.use_bias else None
            h = self._decoder_activation(k)(
                self._affine(h, ops.transpose(self._kernel(k, kernels)), bias))
        return h

    def call(self, inputs, training=None):
        kernels = self._compute_kernels()
        return self._decode(self._encode(inputs, training, kernels), training, kernels)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_code_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.code_size,)

    def encoder_model(self, name=None):
        """A `keras.Model` from inputs to codes that shares this layer's variables."""
        self._check_built("encoder_model")
        inputs = keras.Input(shape=(self.input_dim,), dtype=self.dtype_policy.variable_dtype)
        view = TiedEncoder(self)
        return keras.Model(inputs, view(inputs), name=name or f"{self.name}_encoder")

    def decoder_model(self, name=None):
        """A `keras.Model` from codes to reconstructions that shares this layer's variables."""
        self._check_built("decoder_model")
        codes = keras.Input(shape=(self.code_size,), dtype=self.dtype_policy.variable_dtype)
        view = TiedDecoder(self)
        return keras.Model(codes, view(codes), name=name or f"{self.name}_decoder")

    def get_config(self):
        base_config = super().get_config()
        config = {
            "layer_sizes": list(self.layer_sizes),
            **self._weight_arguments_config(),
            "dropout": self.dropout,
            "l2_normalize": self.l2_normalize,
        }
        return {**base_config, **config}
