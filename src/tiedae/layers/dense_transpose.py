"""A decoder layer tied to an existing `Dense` layer's kernel."""

import keras
from keras import activations, constraints, initializers, ops, regularizers

from tiedae._validation import check_last_axis
from tiedae.layers._sharing import serialize_shared_layer


@keras.saving.register_keras_serializable(package="tiedae")
class DenseTranspose(keras.layers.Layer):
    """The tied decoder of a `Dense` layer: `activation(x @ dense.kernel.T + bias)`.

    The layer owns no kernel: it reads the kernel of the `Dense` layer it is
    bound to, so the two layers train one shared variable. It has its own bias
    (of size `dense`'s input dimension).

    The tie survives `model.save()` / `keras.models.load_model()`: the bound
    layer is serialized by reference and Keras's object-sharing scope gives
    back the very same `Dense` instance on load, so the reloaded model still
    holds one kernel variable. The bound `Dense` layer is tracked as a
    sub-layer, so a model that contains only this layer still trains and saves
    the kernel; its parameters are counted once in any model that contains
    both layers.

    Args:
        dense: The `keras.layers.Dense` layer whose kernel is used transposed.
            It must be built before this layer is built (in a model, call it
            first).
        activation: Activation function. Default: `None` (linear).
        use_bias: Whether the layer has its own bias vector.
        bias_initializer: Initializer for the bias vector.
        bias_regularizer: Regularizer for the bias vector.
        activity_regularizer: Regularizer for the layer's output.
        bias_constraint: Constraint for the bias vector.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        `(batch_size, ..., dense.units)`.

    Output shape:
        `(batch_size, ..., dense_input_dim)`.

    Example:

    >>> inputs = keras.Input(shape=(784,))
    >>> encoder = keras.layers.Dense(100, activation="sigmoid")
    >>> decoder = DenseTranspose(encoder, activation="sigmoid")
    >>> model = keras.Model(inputs, decoder(encoder(inputs)))
    >>> model.count_params()  # 784*100 + 100 + 784: one kernel
    79284
    """

    def __init__(
        self,
        dense,
        activation=None,
        use_bias=True,
        bias_initializer="zeros",
        bias_regularizer=None,
        activity_regularizer=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if not isinstance(dense, keras.layers.Dense):
            raise ValueError(
                "`dense` must be a `keras.layers.Dense` layer whose kernel this "
                f"layer uses transposed; received {type(dense).__name__}."
            )
        self.dense = dense
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.bias_initializer = initializers.get(bias_initializer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.bias_constraint = constraints.get(bias_constraint)
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: dense.units})

    @property
    def kernel(self):
        """The bound `Dense` layer's kernel variable (not a copy)."""
        return self.dense.kernel

    def build(self, input_shape):
        check_last_axis(input_shape, self.dense.units, self.name)
        if not self.dense.built:
            raise ValueError(
                f"Layer '{self.name}' is tied to Dense layer '{self.dense.name}', "
                "which is not built yet, so its kernel shape is unknown. Call the "
                "Dense layer before this one (encoder first, then decoder)."
            )
        self.output_dim = int(self.dense.kernel.shape[0])
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.output_dim,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.built = True

    def call(self, inputs):
        kernel = ops.cast(self.dense.kernel, self.compute_dtype)
        outputs = ops.matmul(ops.cast(inputs, self.compute_dtype), ops.transpose(kernel))
        if self.bias is not None:
            outputs = ops.add(outputs, ops.cast(self.bias, self.compute_dtype))
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (int(self.dense.kernel.shape[0]),)

    def get_config(self):
        base_config = super().get_config()
        config = {
            # Serialized by reference inside Keras's ObjectSharingScope (used by
            # model.save and load_model), so loading restores the same layer
            # whichever of the two comes first in the model.
            "dense": serialize_shared_layer(self.dense),
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        }
        return {**base_config, **config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["dense"] = keras.saving.deserialize_keras_object(config["dense"])
        return cls(**config)
