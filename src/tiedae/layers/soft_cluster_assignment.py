"""Soft assignment of codes to cluster centres with a Student's t kernel (DEC)."""

import keras
from keras import initializers, ops

from tiedae._validation import check_last_axis, check_positive, check_positive_int


@keras.saving.register_keras_serializable(package="tiedae")
class SoftClusterAssignment(keras.layers.Layer):
    """The probability that each code belongs to each cluster centre.

    `q[i, j] = k(z_i, mu_j) / sum_j' k(z_i, mu_j')` with the Student's t kernel
    `k(z, mu) = (1 + ||z - mu||^2 / alpha) ** (-(alpha + 1) / 2)`, as in Deep
    Embedded Clustering (Xie, Girshick and Farhadi, 2016). The centres are the
    layer's one trainable weight, `clusters`, so training a model that ends in
    this layer moves the centres together with the encoder in front of it.

    Args:
        n_clusters: Positive integer, the number of cluster centres.
        alpha: Positive float, the degrees of freedom of the Student's t
            kernel (DEC uses 1).
        clusters_initializer: Initializer for the centres, e.g. a
            `keras.initializers.Constant` holding k-means centres.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        `(batch_size, code_dim)`.

    Output shape:
        `(batch_size, n_clusters)`; every row sums to 1.

    Example:

    >>> codes = keras.Input(shape=(10,))
    >>> centres = KMeans(4).fit(z).cluster_centers_
    >>> q = SoftClusterAssignment(4, clusters_initializer=keras.initializers.Constant(centres))
    >>> model = keras.Model(codes, q(codes))
    >>> model.predict(z).sum(axis=1)  # all ones
    """

    def __init__(self, n_clusters, alpha=1.0, clusters_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.n_clusters = check_positive_int(n_clusters, "n_clusters")
        self.alpha = float(check_positive(alpha, "alpha"))
        self.clusters_initializer = initializers.get(clusters_initializer)
        self.input_spec = keras.layers.InputSpec(ndim=2)

    def build(self, input_shape):
        check_last_axis(input_shape, None, self.name, what="code")
        if input_shape[-1] is None:
            raise ValueError(
                f"Layer '{self.name}' needs the code width (the last axis) to be known; "
                f"received shape {tuple(input_shape)}."
            )
        code_dim = int(input_shape[-1])
        self.clusters = self.add_weight(
            name="clusters",
            shape=(self.n_clusters, code_dim),
            initializer=self.clusters_initializer,
        )
        self.input_spec = keras.layers.InputSpec(ndim=2, axes={-1: code_dim})

    def call(self, inputs):
        inputs = ops.cast(inputs, self.compute_dtype)
        clusters = ops.cast(self.clusters, self.compute_dtype)
        # ||z - mu||^2 by broadcasting: (batch, 1, d) - (k, d) -> (batch, k).
        squared = ops.sum(ops.square(ops.expand_dims(inputs, 1) - clusters), axis=-1)
        kernel = ops.power(1.0 + squared / self.alpha, -(self.alpha + 1.0) / 2.0)
        return kernel / ops.sum(kernel, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n_clusters)

    def get_config(self):
        config = {
            "n_clusters": self.n_clusters,
            "alpha": self.alpha,
            "clusters_initializer": initializers.serialize(self.clusters_initializer),
        }
        return {**super().get_config(), **config}
