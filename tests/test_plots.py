import matplotlib.image
import numpy as np
from sklearn.decomposition import PCA

from tiedae import plots


def _png_shape(path):
    return matplotlib.image.imread(path).shape


def test_infer_image_shape():
    assert plots.infer_image_shape(784) == (28, 28)
    assert plots.infer_image_shape(64) == (8, 8)
    assert plots.infer_image_shape(50) is None
    assert plots.infer_image_shape(1) is None


def test_embedding_2d_is_pca_and_pads_small_codes(rng):
    codes = rng.normal(size=(50, 5))
    expected = PCA(n_components=2, random_state=0).fit_transform(codes)
    np.testing.assert_allclose(plots.embedding_2d(codes), expected)
    one = rng.normal(size=(4, 1))
    np.testing.assert_array_equal(plots.embedding_2d(one), np.hstack([one, np.zeros((4, 1))]))


def test_each_plot_writes_a_png_image(tmp_path, rng):
    x = rng.random((12, 64))
    written = [
        plots.plot_loss_curves([{"loss": [1, 0.5], "val_loss": [1.1, 0.6]}, {"loss": [0.3]}], tmp_path / "l.png"),
        plots.plot_filters(rng.normal(size=(64, 20)), (8, 8), tmp_path / "f.png"),
        plots.plot_reconstructions(x, x * 0.9, tmp_path / "r.png", image_shape=(8, 8)),
        plots.plot_reconstructions(x, x * 0.9, tmp_path / "r1d.png"),
        plots.plot_embedding(rng.normal(size=(30, 4)), tmp_path / "e.png", labels=np.arange(30) % 3),
    ]
    for path in written:
        height, width, channels = _png_shape(path)
        assert height > 100 and width > 100 and channels in (3, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.png", "f.png", "l.png", "r.png", "r1d.png"]
