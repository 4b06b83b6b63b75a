"""Row names of the quality tables.

Shared by the sections that write the rows (`quality`, `semi_supervised`,
`deep_clustering`) and the report that reads them back (comparisons across sections,
the recipes table); kept free of Keras so that rendering the report imports no backend.
"""

# quality: supervised fine-tuning of the pretrained stack, and its random-init control.
FINE_TUNED = "SdA pretrained, fine-tuned"
RANDOM_INIT = "same network, random init"
# semi and semi_shifted: `fit_semi_supervised`, and its random-init control.
PRETRAINED = "SdA pretrained, semi-supervised fine-tuning"
CONTROL = "same network and training, random init"
# semi and semi_shifted: supervised fine-tuning with a named schedule
# (`settings["supervised_schedule"]`), and its random-init control.
SUPERVISED = "SdA pretrained, fine-tuned ({})"
SUPERVISED_CONTROL = "same network and schedule ({}), random init"

# quality and deep_clustering: k-means baselines (PCA's row names its number of components),
# and quality's k-means on the pretrained stack's code.
KMEANS_RAW = "k-means on raw pixels"
KMEANS_PCA = "k-means on PCA-{}"
KMEANS_SDA_CODE = "k-means on SdA code"
# deep_clustering: `DeepEmbeddedClustering`'s k-means and DEC clusters, N2D on its code
# (`autoencoder_code_`), and N2D's baseline.
AE_KMEANS = "autoencoder + k-means (tiedae, 10-d code)"
DEC = "DEC refinement of that code (tiedae)"
N2D = "UMAP of that code + Gaussian mixture (N2D)"
N2D_RAW = "UMAP of raw pixels + Gaussian mixture"
