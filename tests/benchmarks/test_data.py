import numpy as np
import pytest

from benchmarks.data import shifted_copies


def rolled(grid, axis, step):
    """NumPy reference: roll, then clear the rows or columns that wrapped around."""
    moved = np.roll(grid, step, axis=axis)
    wrapped = [slice(None)] * 3
    wrapped[axis] = slice(None, step) if step > 0 else slice(step, None)
    moved[tuple(wrapped)] = 0
    return moved


@pytest.mark.parametrize("pixels", [1, 2])
def test_shifted_copies_match_rolled_images(pixels):
    rng = np.random.default_rng(0)
    images = rng.random((3, 28 * 28)).astype(np.float32)
    labels = np.array([4, 0, 9])
    x, y = shifted_copies(images, labels, pixels)
    assert x.shape == (15, 784) and x.dtype == np.float32
    np.testing.assert_array_equal(y, np.tile(labels, 5))
    grid = images.reshape(3, 28, 28)
    expected = [grid] + [rolled(grid, axis, step) for axis in (1, 2)
                         for step in (pixels, -pixels)]
    np.testing.assert_array_equal(x, np.concatenate(expected).reshape(-1, 784))
    # The first copy is the image moved down: its row r is the original's row r - pixels.
    np.testing.assert_array_equal(x[3].reshape(28, 28)[pixels:], grid[0, :-pixels])
