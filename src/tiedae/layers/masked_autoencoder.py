"""A tied autoencoder whose first layers have a fixed connectivity (a 0/1 adjacency)."""

import hashlib
import warnings
import weakref

import keras
import numpy as np
import scipy.sparse
from keras import ops

from tiedae._validation import check_last_axis, check_layer_sizes, check_rate
from tiedae.layers.dense_autoencoder import l2_normalize_safe
from tiedae.layers.tied_views import TiedDecoder, TiedEncoder
from tiedae.layers._weight_arguments import WeightArgumentsMixin


# Masks of the layers alive in this process, by digest: a layer re-created from
# a config in the same process (`keras.models.clone_model`, `from_config`) gets
# its mask at once instead of waiting for weights.
_KNOWN_MASKS = weakref.WeakValueDictionary()


def _digest(shape, bits):
    return hashlib.sha256(np.asarray(shape, np.int64).tobytes() + bits.tobytes()).hexdigest()


class _MaskSpec:
    """One adjacency: its shape, number of connections, digest and bits packed 8 per byte.

    Bit `j` of byte `i` (little-endian bit order) is entry `8 * i + j` of the
    row-major flattened `(inputs, units)` matrix. `bits` is `None` for a spec
    read from a config whose mask is unknown here: the bits then come with the
    saved weights, which are checked against `sha256`.
    """

    def __init__(self, shape, nnz, sha256=None, bits=None):
        self.shape = (int(shape[0]), int(shape[1]))
        self.nnz = int(nnz)
        if bits is not None:
            sha256 = _digest(self.shape, bits)
            bits = _KNOWN_MASKS.setdefault(sha256, bits)
        elif sha256 is not None:
            bits = _KNOWN_MASKS.get(sha256)
        self.sha256 = sha256
        self.bits = bits

    @property
    def num_bytes(self):
        return (self.shape[0] * self.shape[1] + 7) // 8

    def to_config(self):
        return {"shape": list(self.shape), "nnz": self.nnz, "sha256": self.sha256}


def _pack_adjacency(matrix, name):
    """Validate one 0/1 matrix (array-like or scipy.sparse) and pack it into a `_MaskSpec`."""
    if hasattr(matrix, "adjacency") and hasattr(matrix, "set_names"):
        raise ValueError(
            f"`{name}` received the whole result of `gmt_adjacency`/`gene_set_adjacency`; "
            "pass its `.adjacency` (its `set_names` name the layer's units)."
        )
    if scipy.sparse.issparse(matrix):
        coo = scipy.sparse.coo_matrix(matrix, copy=True)  # duplicates summed below
        coo.sum_duplicates()
        values = coo.data
        shape = coo.shape
    else:
        try:
            array = np.asarray(matrix)
        except Exception as error:  # ragged lists and other non-arrays
            raise ValueError(
                f"`{name}` must be a 2-D 0/1 array or scipy.sparse matrix; "
                f"received {type(matrix).__name__} ({error})."
            ) from None
        if array.ndim != 2:
            raise ValueError(
                f"`{name}` must be 2-D (inputs, units); received an array of shape {array.shape}."
            )
        if array.dtype != bool and not np.issubdtype(array.dtype, np.number):
            raise ValueError(
                f"`{name}` must contain only 0 and 1; received dtype {array.dtype}."
            )
        values = array
        shape = array.shape
    bad = (values != 0) & (values != 1)  # NaN counts as bad
    if np.any(bad):
        raise ValueError(
            f"`{name}` must contain only 0 and 1 (a connection mask); found the "
            f"value {np.asarray(values)[bad].flat[0]!r}."
        )
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"`{name}` must have at least one row and one column; received shape {shape}.")
    if scipy.sparse.issparse(matrix):
        keep = values != 0
        flat = coo.row[keep].astype(np.int64) * shape[1] + coo.col[keep].astype(np.int64)
        bits = np.zeros((shape[0] * shape[1] + 7) // 8, dtype=np.uint8)
        np.bitwise_or.at(bits, flat >> 3, np.left_shift(1, flat & 7).astype(np.uint8))
        nnz = int(flat.size)
    else:
        dense = values != 0
        bits = np.packbits(dense.ravel(), bitorder="little")
        nnz = int(np.count_nonzero(dense))
    if nnz == 0:
        raise ValueError(f"`{name}` has no non-zero entry, so it connects nothing; received shape {shape}.")
    return _MaskSpec(shape, nnz, bits=bits)


def _spec_from_config(entry, name):
    try:
        return _MaskSpec(entry["shape"], entry["nnz"], entry.get("sha256"))
    except (KeyError, TypeError, IndexError, ValueError):
        raise ValueError(
            f"`{name}` given as a dict must be {{'shape': [inputs, units], 'nnz': n, "
            "'sha256': digest}} "
            f"(the serialized form); received {entry!r}."
        ) from None


def _parse_adjacency(adjacency):
    """Return a list of `_MaskSpec`, one per masked layer, with chained shapes checked."""
    if isinstance(adjacency, (list, tuple)):
        if len(adjacency) == 0:
            raise ValueError(
                "`adjacency` must be a 0/1 matrix of shape (inputs, units) or a "
                "non-empty list of such matrices; received an empty list."
            )
        # A list of matrices (one per masked layer), unless it is one matrix
        # written as nested lists.
        if all(isinstance(a, dict) or getattr(a, "ndim", None) == 2 for a in adjacency):
            names = [f"adjacency[{i}]" for i in range(len(adjacency))]
            items = list(adjacency)
        else:
            names, items = ["adjacency"], [adjacency]
    else:
        names, items = ["adjacency"], [adjacency]
    specs = [
        _spec_from_config(item, name) if isinstance(item, dict) else _pack_adjacency(item, name)
        for name, item in zip(names, items)
    ]
    for k in range(1, len(specs)):
        if specs[k].shape[0] != specs[k - 1].shape[1]:
            raise ValueError(
                f"`{names[k]}` has shape {specs[k].shape}, so it expects "
                f"{specs[k].shape[0]} inputs, but `{names[k - 1]}` (shape "
                f"{specs[k - 1].shape}) produces {specs[k - 1].shape[1]} units. "
                "Each adjacency's rows must be the previous one's columns."
            )
    return specs


# Row `b` holds the 8 bits of the byte value `b`, lowest first.
_BYTE_BITS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1, bitorder="little")


def _unpack_bits(bits, shape, dtype):
    """Dense `(inputs, units)` 0/1 tensor from packed bits, with `keras.ops` only.

    One gather from a 256 x 8 table, in the target dtype: no integer
    intermediates as large as the mask (this runs in every forward pass).
    """
    count = shape[0] * shape[1]
    table = ops.convert_to_tensor(_BYTE_BITS, dtype=dtype)
    flat = ops.reshape(ops.take(table, ops.cast(bits, "int32"), axis=0), (-1,))
    if 8 * int(bits.shape[0]) != count:
        flat = flat[:count]
    return ops.reshape(flat, shape)


def _unpack_bits_numpy(bits, shape):
    """Dense `(inputs, units)` uint8 0/1 NumPy array from packed bits."""
    count = shape[0] * shape[1]
    return np.unpackbits(bits, count=count, bitorder="little").reshape(shape)


def _connected_fan_scale(initializer, mask):
    """Per-entry factors that give a variance-scaling draw the variance of the kept fans.

    `VarianceScaling` (glorot, he, lecun) sets the variance from the dense
    fans: inputs per unit and units per input. Under a sparse mask (a gene set
    of 50 genes among 20,000) the kept connections are far fewer, and the
    dense-fan variance would leave each unit's input almost silent. Rescaling
    entry (i, j) by sqrt(n_dense / n_kept), with n as the initializer's mode
    computes it from unit j's and input i's own connection counts, gives every
    unit the variance a dense layer of its real fan-in would have.
    """
    mask = mask.astype(np.float32)
    fan_in_dense, fan_out_dense = mask.shape
    fan_in = np.maximum(mask.sum(axis=0, keepdims=True), 1.0)  # inputs kept per unit
    fan_out = np.maximum(mask.sum(axis=1, keepdims=True), 1.0)  # units kept per input
    if initializer.mode == "fan_in":
        return np.sqrt(fan_in_dense / fan_in)
    if initializer.mode == "fan_out":
        return np.sqrt(fan_out_dense / fan_out)
    return np.sqrt((fan_in_dense + fan_out_dense) / (fan_in + fan_out))  # fan_avg


class _MaskedKernelInitializer:
    """The user's kernel initializer with the masked-out entries set to zero.

    A variance-scaling initializer counts only the connections the mask keeps
    (see `_connected_fan_scale`); any other initializer is used as it is.
    """

    def __init__(self, initializer, spec):
        self.initializer = initializer
        self.spec = spec

    def __call__(self, shape, dtype=None):
        values = self.initializer(shape, dtype=dtype)
        if self.spec.bits is None:  # bits arrive with the saved weights
            return values
        mask = _unpack_bits_numpy(self.spec.bits, self.spec.shape)
        if isinstance(self.initializer, keras.initializers.VarianceScaling):
            factors = _connected_fan_scale(self.initializer, mask) * mask
            return ops.multiply(values, ops.cast(factors, values.dtype))
        return ops.multiply(values, ops.cast(mask, values.dtype))


class _MaskedRegularizer:
    """Regularizes the effective (masked) kernel, so masked entries get no gradient."""

    def __init__(self, regularizer, layer, index):
        self.regularizer = regularizer
        self.layer = layer
        self.index = index

    def __call__(self, kernel):
        mask = self.layer.connection_mask(self.index, dtype=kernel.dtype)
        return self.regularizer(ops.multiply(kernel, mask))


class _MaskedConstraint:
    """Re-zeroes masked-out entries after every optimizer step.

    Zero initial values and zero gradients already keep them at zero under
    element-wise optimizers (SGD, Adam(W), RMSprop, ...); this also covers
    optimizers that mix entries of a matrix (e.g. Muon). It reads the host copy
    of the bits, not the mask variable: during JAX training the optimizer step
    cannot see non-trainable variables.
    """

    def __init__(self, constraint, layer, index):
        self.constraint = constraint
        self.layer = layer
        self.index = index

    def __call__(self, kernel):
        if self.constraint is not None:
            kernel = self.constraint(kernel)
        bits = self.layer._host_bits[self.index]
        if bits is None:
            return kernel
        spec = self.layer._specs[self.index]
        return ops.multiply(kernel, _unpack_bits(ops.convert_to_tensor(bits), spec.shape, kernel.dtype))


@keras.saving.register_keras_serializable(package="tiedae")
class MaskedLayerAutoencoder(WeightArgumentsMixin, keras.layers.Layer):
    """A tied autoencoder whose first layer(s) only connect where an adjacency says so.

    Each masked layer `k` has a dense kernel `W_k` of shape `(inputs, units)`
    and a fixed 0/1 adjacency `A_k` of the same shape (for instance genes x
    pathways, or genes x transcription factors). The encoder uses `W_k * A_k`
    and the decoder its transpose, so a unit only ever sees, and only ever
    reconstructs, the inputs it is connected to. Optional fully connected tied
    layers (`layer_sizes`) follow the masked ones. For `adjacency=[A1, A2]`
    and `layer_sizes=[h]`:

    ```
    encoder:  z1 = a(x  @ (W1 * A1) + b1)
              z2 = a(z1 @ (W2 * A2) + b2)
              z3 = a(z2 @ W3 + b3)                 the code, width h
    decoder:  y2 = a(z3 @ W3.T + c3)
              y1 = a(y2 @ (W2 * A2).T + c2)
              y  = g(y1 @ (W1 * A1).T + c1)        the reconstruction
    ```

    Masked-out weights are exactly zero in every forward pass (the kernel is
    multiplied by the mask), and the stored kernel entries stay exactly zero:
    they start at zero, receive no gradient (kernel regularizers act on the
    masked kernel) and are re-zeroed after every optimizer step (a constraint,
    composed with `kernel_constraint`). So `kernels[k]` can be read directly,
    e.g. as gene loadings.

    The adjacency is stored as a non-trainable `uint8` weight, one bit per
    entry (a 20,000 x 1,000 mask takes 2.5 MB in the weights file), and
    `get_config()` records only its shape, number of non-zeros and SHA-256
    digest. A layer created from a config gets its mask at once if a layer
    with that mask exists in the same process (e.g. `keras.models.clone_model`),
    and otherwise when the weights are loaded (`keras.models.load_model`,
    `load_weights` or `set_weights`), which are checked against the digest.
    Calling such a layer eagerly before its mask is loaded raises an error.

    Args:
        adjacency: The connectivity of the first masked layer, a 0/1 (or bool)
            NumPy array or `scipy.sparse` matrix of shape `(inputs, units)`;
            or a list of them, one per masked layer, each with as many rows as
            the previous one has columns.
        layer_sizes: Optional list of widths of fully connected tied layers
            after the masked ones. The last width is the code size; without
            `layer_sizes`, the last adjacency's column count is.
        activation: Activation of every hidden layer, encoder and decoder.
            Default: `None` (linear).
        output_activation: Activation of the reconstruction. Defaults to
            `activation` (`"same"`).
        use_bias: Whether the layers have biases. Encoder and decoder biases
            are separate variables.
        kernel_initializer: Initializer for the kernels (masked entries are
            then set to zero). A variance-scaling initializer (the default
            `"glorot_uniform"`, `"he_normal"`, ...) of a masked layer counts
            only the kept connections: each entry gets the variance a dense
            layer with its unit's and its input's real connection counts
            would give, so small gene sets are not initialised near zero.
        bias_initializer: Initializer for the biases.
        kernel_regularizer: Regularizer applied to each (masked) kernel once.
        bias_regularizer: Regularizer applied to every bias vector.
        activity_regularizer: Regularizer applied to the layer's output.
        kernel_constraint: Constraint applied to each kernel (before masking).
        bias_constraint: Constraint applied to every bias vector.
        dropout: Float in [0, 1), dropout on every hidden representation on its
            way into the next layer during training (as in
            `DenseLayerAutoencoder`); `encode()` returns the code before dropout.
        l2_normalize: If `True`, the code is scaled to unit L2 norm.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        N-D tensor with shape `(batch_size, ..., inputs)`, N >= 2, where
        `inputs` is the number of rows of the (first) adjacency.

    Output shape:
        The same shape as the input: the reconstruction.

    Example:

    >>> adjacency, set_names, report = tiedae.gmt_adjacency("pathways.gmt", genes)
    >>> inputs = keras.Input(shape=(len(genes),))
    >>> autoencoder = MaskedLayerAutoencoder(adjacency, layer_sizes=[32], activation="relu")
    >>> model = keras.Model(inputs, autoencoder(inputs))
    >>> encoder = autoencoder.encoder_model()  # genes -> pathway-level code
    >>> autoencoder.get_adjacency(0)  # the mask back, as a scipy.sparse CSR matrix
    """

    def __init__(
        self,
        adjacency,
        layer_sizes=None,
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
        self._specs = _parse_adjacency(adjacency)
        # Host copies of the bits (for the constraint); None until known.
        self._host_bits = [spec.bits for spec in self._specs]
        self._mask_pending = any(bits is None for bits in self._host_bits)
        if layer_sizes is None or (isinstance(layer_sizes, (list, tuple)) and len(layer_sizes) == 0):
            self.layer_sizes = []
        else:
            self.layer_sizes = check_layer_sizes(layer_sizes)
        self._store_weight_arguments(
            activation, output_activation, use_bias, kernel_initializer, bias_initializer,
            kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint,
        )
        self.dropout = check_rate(dropout, "dropout")
        self.l2_normalize = bool(l2_normalize)
        self.input_dim = self._specs[0].shape[0]
        self.dropout_layer = (
            keras.layers.Dropout(self.dropout) if self.dropout > 0 else None
        )
        # The feature count is checked in build() with a message naming `adjacency`.
        self.input_spec = keras.layers.InputSpec(min_ndim=2)
        self.supports_masking = False

    @property
    def adjacency_shapes(self):
        """Shapes `(inputs, units)` of the adjacencies, one per masked layer."""
        return [spec.shape for spec in self._specs]

    @property
    def num_masked_layers(self):
        """How many layers have a fixed connectivity (the length of `adjacency`)."""
        return len(self._specs)

    @property
    def encoder_widths(self):
        """Width of every encoder layer, masked then fully connected; the last is the code size."""
        return [spec.shape[1] for spec in self._specs] + list(self.layer_sizes)

    @property
    def code_size(self):
        """Width of the code (the last encoder layer)."""
        return self.encoder_widths[-1]

    def _check_features(self, shape):
        check_last_axis(shape, None, self.name)
        features = shape[-1]
        if features is None or int(features) != self.input_dim:
            raise ValueError(
                f"`adjacency` has shape {self._specs[0].shape} ({self.input_dim} "
                f"inputs x {self._specs[0].shape[1]} units), so layer '{self.name}' "
                f"expects inputs with {self.input_dim} features on the last axis, "
                f"but received input shape {tuple(shape)}."
            )

    def build(self, input_shape):
        self._check_features(input_shape)
        self.mask_bits = []
        for k, spec in enumerate(self._specs):
            initializer = "zeros" if spec.bits is None else _constant(spec.bits)
            self.mask_bits.append(
                self.add_weight(
                    name=f"mask_bits_{k}",
                    shape=(spec.num_bytes,),
                    dtype="uint8",
                    initializer=initializer,
                    trainable=False,
                )
            )
        widths = [self.input_dim] + self.encoder_widths
        self.kernels, self.encoder_biases, self.decoder_biases = [], [], []
        for k, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            masked = k < len(self._specs)
            initializer, regularizer, constraint = (
                self.kernel_initializer,
                self.kernel_regularizer,
                self.kernel_constraint,
            )
            if masked:
                initializer = _MaskedKernelInitializer(initializer, self._specs[k])
                if regularizer is not None:
                    regularizer = _MaskedRegularizer(regularizer, self, k)
                constraint = _MaskedConstraint(constraint, self, k)
            self.kernels.append(
                self.add_weight(
                    name=f"kernel_{k}",
                    shape=(fan_in, fan_out),
                    initializer=initializer,
                    regularizer=regularizer,
                    constraint=constraint,
                )
            )
            if self.use_bias:
                self.encoder_biases.append(self._add_bias(f"encoder_bias_{k}", fan_out))
                self.decoder_biases.append(self._add_bias(f"decoder_bias_{k}", fan_in))
        self.built = True

    def load_own_variables(self, store):
        super().load_own_variables(store)
        for k, spec in enumerate(self._specs):
            loaded = np.asarray(ops.convert_to_numpy(self.mask_bits[k]), dtype=np.uint8)
            loaded_spec = _MaskSpec(spec.shape, _popcount(loaded), bits=loaded)
            matches = (
                loaded_spec.sha256 == spec.sha256
                if spec.sha256 is not None
                else loaded_spec.nnz == spec.nnz
            )
            if not matches and self._host_bits[k] is None:
                raise ValueError(
                    f"Layer '{self.name}': the mask loaded for adjacency {k} "
                    f"({loaded_spec.nnz} connections) is not the one recorded in the "
                    f"layer's config ({spec.nnz} connections, sha256 {spec.sha256}). "
                    "The weights do not belong to this model."
                )
            if not matches:
                warnings.warn(
                    f"Layer '{self.name}': the mask loaded for adjacency {k} differs "
                    "from the adjacency the layer was constructed with; the loaded "
                    "mask (which matches the loaded kernels) is used.",
                    stacklevel=2,
                )
            self._specs[k] = loaded_spec
            self._host_bits[k] = loaded_spec.bits
        self._mask_pending = False

    def _ensure_mask(self):
        """Refuse to run a layer created from a config whose mask was never loaded."""
        if not self._mask_pending:
            return
        try:
            loaded = [
                np.asarray(ops.convert_to_numpy(v), dtype=np.uint8) for v in self.mask_bits
            ]
        except Exception:  # traced (jit, tf.function): values cannot be read here
            return
        if not all(np.any(bits) for bits in loaded):
            raise ValueError(
                f"Layer '{self.name}' was created from a config, which records only "
                "the adjacency's shape and digest, and its mask is not known in this "
                "process; the mask comes with the weights. Load them "
                "(`keras.models.load_model`, `model.load_weights` or "
                "`model.set_weights`) before using the layer."
            )
        self._specs = [
            _MaskSpec(spec.shape, _popcount(bits), bits=bits)
            for spec, bits in zip(self._specs, loaded)
        ]
        self._host_bits = [spec.bits for spec in self._specs]
        self._mask_pending = False

    def connection_mask(self, index=0, dtype=None):
        """The dense 0/1 mask of masked layer `index` as a tensor of shape `(inputs, units)`."""
        self._check_built("connection_mask")
        spec = self._specs[index]
        return _unpack_bits(self.mask_bits[index], spec.shape, dtype or self.compute_dtype)

    def get_adjacency(self, index=0):
        """The adjacency of masked layer `index`, read back from the layer, as a CSR matrix."""
        self._check_built("get_adjacency")
        spec = self._specs[index]
        bits = np.asarray(ops.convert_to_numpy(self.mask_bits[index]), dtype=np.uint8)
        return scipy.sparse.csr_matrix(_unpack_bits_numpy(bits, spec.shape).astype(np.float32))

    def _effective_kernels(self):
        """The kernels in the compute dtype, masked ones multiplied by their mask."""
        kernels = [ops.cast(kernel, self.compute_dtype) for kernel in self.kernels]
        for k in range(len(self._specs)):
            kernels[k] = ops.multiply(kernels[k], self.connection_mask(k))
        return kernels

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
        """Map inputs of shape `(..., inputs)` to codes `(..., code_size)`."""
        self._check_built("encode")
        self._ensure_mask()
        return self._encode(inputs, self._effective_kernels(), training)

    def decode(self, codes, training=None):
        """Map codes of shape `(..., code_size)` back to `(..., inputs)`."""
        self._check_built("decode")
        self._ensure_mask()
        return self._decode(codes, self._effective_kernels(), training)

    def call(self, inputs, training=None):
        self._ensure_mask()
        kernels = self._effective_kernels()  # masks unpacked once for both halves
        return self._decode(self._encode(inputs, kernels, training), kernels, training)

    def _encode(self, inputs, kernels, training):
        inputs = ops.convert_to_tensor(inputs)  # lists and NumPy arrays have no usable dtype
        self._check_features(inputs.shape)
        h = ops.cast(inputs, self.compute_dtype)
        last = len(kernels) - 1
        for k, kernel in enumerate(kernels):
            if k > 0:
                h = self._dropped(h, training)
            bias = self.encoder_biases[k] if self.use_bias else None
            h = self.activation(self._affine(h, kernel, bias))
            if k == last and self.l2_normalize:
                h = l2_normalize_safe(h)
        return h

    def _decode(self, codes, kernels, training):
        codes = ops.convert_to_tensor(codes)
        check_last_axis(codes.shape, self.code_size, self.name, what="code")
        h = ops.cast(codes, self.compute_dtype)
        for k in reversed(range(len(kernels))):
            h = self._dropped(h, training)
            bias = self.decoder_biases[k] if self.use_bias else None
            h = self._affine(h, ops.transpose(kernels[k]), bias)
            h = self.output_activation(h) if k == 0 else self.activation(h)
        return h

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_code_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.code_size,)

    def compute_decoded_shape(self, code_shape):
        return tuple(code_shape[:-1]) + (self.input_dim,)

    def encoder_model(self, name=None):
        """A `keras.Model` from inputs to codes that shares this layer's variables."""
        self._check_built("encoder_model")
        inputs = keras.Input(shape=(self.input_dim,), dtype=self.dtype_policy.variable_dtype)
        return keras.Model(inputs, TiedEncoder(self)(inputs), name=name or f"{self.name}_encoder")

    def decoder_model(self, name=None):
        """A `keras.Model` from codes to reconstructions that shares this layer's variables."""
        self._check_built("decoder_model")
        codes = keras.Input(shape=(self.code_size,), dtype=self.dtype_policy.variable_dtype)
        return keras.Model(codes, TiedDecoder(self)(codes), name=name or f"{self.name}_decoder")

    def get_config(self):
        base_config = super().get_config()
        config = {
            # Only shapes and counts: the mask itself is a weight.
            "adjacency": [spec.to_config() for spec in self._specs],
            "layer_sizes": list(self.layer_sizes),
            **self._weight_arguments_config(),
            "dropout": self.dropout,
            "l2_normalize": self.l2_normalize,
        }
        return {**base_config, **config}


def _popcount(bits):
    return int(np.unpackbits(bits).sum())


def _constant(values):
    def initializer(shape, dtype=None):
        return ops.convert_to_tensor(values, dtype=dtype)

    return initializer


#: The ancestor package's name for this layer.
SparseLayerAutoencoder = MaskedLayerAutoencoder
