"""Offline references of the benchmarks: networks of the same shape as the
Nengo ones, trained in scikit-learn, not online in a simulator.

`offline_mlp` is scikit-learn's ``MLPClassifier`` trained to convergence:
what the shape can reach.
"""

import warnings

import numpy as np


def offline_mlp(X_tr, y_tr, X_te, y_te, hidden, seed):
    """Held-out accuracy of scikit-learn's ``MLPClassifier`` with hidden
    layers ``hidden`` (an int or a tuple of ints) of ReLUs, Adam, up to 500
    epochs, trained offline on the same images: what the shape can reach."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    sizes = (hidden,) if np.isscalar(hidden) else tuple(hidden)
    mlp = MLPClassifier(hidden_layer_sizes=sizes, max_iter=500, random_state=seed)
    with warnings.catch_warnings():
        # an MLP that has not quite converged is still a fair reference
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X_tr, y_tr)
    return float(mlp.score(X_te, y_te))
