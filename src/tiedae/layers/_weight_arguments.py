"""The Dense-like arguments every tied autoencoder layer takes, stored and serialized once."""

from keras import activations, constraints, initializers, regularizers


class WeightArgumentsMixin:
    """Stores and serializes `activation`, `output_activation`, `use_bias` and the
    initializers, regularizers and constraints of the tied kernels and the biases;
    creates bias variables with them."""

    def _store_weight_arguments(
        self,
        activation,
        output_activation,
        use_bias,
        kernel_initializer,
        bias_initializer,
        kernel_regularizer,
        bias_regularizer,
        kernel_constraint,
        bias_constraint,
    ):
        self.activation = activations.get(activation)
        # "same" (the default) follows `activation`; stored unresolved so that
        # get_config keeps the user's intent.
        self._output_activation_arg = output_activation
        self.output_activation = (
            self.activation if output_activation == "same" else activations.get(output_activation)
        )
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def _weight_arguments_config(self):
        output_activation = self._output_activation_arg
        if output_activation != "same":
            output_activation = activations.serialize(self.output_activation)
        return {
            "activation": activations.serialize(self.activation),
            "output_activation": output_activation,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        }

    def _add_bias(self, name, size):
        return self.add_weight(
            name=name,
            shape=(size,),
            initializer=self.bias_initializer,
            regularizer=self.bias_regularizer,
            constraint=self.bias_constraint,
        )

    def _check_built(self, method):
        if not self.built:
            raise ValueError(
                f"Layer '{self.name}' is not built yet, so `{method}()` has no "
                "weights to use. Call the layer on data (or `build(input_shape)`) first."
            )
