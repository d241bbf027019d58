"""Offline references of the benchmarks: networks of the same shape as the
Nengo ones, trained in numpy or scikit-learn, not online in a simulator.

`PredictiveCoding` (Whittington & Bogacz 2017) and `ForwardForward` (Hinton
2022) are written here from the papers' equations; `SklearnMLP` is
scikit-learn's ``MLPClassifier`` trained a minibatch at a time, and
`offline_mlp` the same trained to convergence: what the shape can reach.
Each `Offline` reference takes one pass over the images it is given
(``train``), in minibatches of `BATCH`, so that a benchmark can test it after
every block of images, and predicts classes 0-9 (``predict``).

References
    Whittington, J. C. R., & Bogacz, R. (2017). An approximation of the error
    backpropagation algorithm in a predictive coding network with local
    Hebbian synaptic plasticity. Neural Computation, 29(5), 1229-1262.
    Hinton, G. (2022). The forward-forward algorithm: some preliminary
    investigations. arXiv:2212.13345.
    Kingma, D. P., & Ba, J. (2015). Adam: a method for stochastic
    optimization. ICLR.
"""

import warnings

import numpy as np

BATCH = 10  # images per minibatch


def _he(rng, n_out, n_in):
    """Initial weights for rectified-linear units (He et al. 2015)."""
    return rng.normal(0, np.sqrt(2.0 / n_in), size=(n_out, n_in))


class Offline:
    """An offline reference: one pass over the given images in minibatches of
    ``BATCH`` (`train`), then `predict`; ``nbytes``: its parameters and
    optimiser state."""

    def train(self, X, y):
        for i in range(0, len(y), BATCH):
            self.step(X[i : i + BATCH], y[i : i + BATCH])

    @property
    def nbytes(self):
        return sum(a.nbytes for a in self.state())


class PredictiveCoding(Offline):
    r"""A predictive coding network (Whittington & Bogacz 2017), ReLU hidden
    layers and a linear output, trained with the output clamped to the
    one-hot label.

    Value nodes :math:`x_l` predict the next layer,
    :math:`\mu_{l+1} = W_l f(x_l) + b_l` (:math:`f` the identity on the
    input, ReLU on hidden layers), with errors
    :math:`\varepsilon_{l+1} = x_{l+1} - \mu_{l+1}`. Per minibatch: the
    hidden nodes start at the feedforward values and relax for ``n_iter``
    steps of ``step`` along
    :math:`-\varepsilon_l + f'(x_l) \odot W_l^T \varepsilon_{l+1}`, then
    every layer takes the local step
    :math:`\Delta W_l = \eta \, \varepsilon_{l+1} f(x_l)^T` (at equilibrium,
    approximately the backpropagation gradient). Predictions are the
    feedforward pass. The rates were chosen once, on the 8 x 8 digits (one
    layer of 64, seed 0), and are used for every network: ``step`` and
    ``n_iter`` as in the paper's experiments; ``learning_rate`` (per
    minibatch mean) the largest of 0.1, 0.2 and 0.5, the smaller ones
    having learned little in one pass.
    """

    def __init__(self, layers, d, seed, learning_rate=0.5, n_iter=20, step=0.1):
        rng = np.random.RandomState(seed)
        sizes = (d,) + tuple(layers) + (10,)
        self.W = [_he(rng, b, a) for a, b in zip(sizes[:-1], sizes[1:])]
        self.b = [np.zeros(b) for b in sizes[1:]]
        self.learning_rate, self.n_iter, self.step_size = learning_rate, n_iter, step

    def state(self):
        return self.W + self.b

    @staticmethod
    def f(layer, x):
        return x if layer == 0 else np.maximum(x, 0)

    def forward(self, X):
        xs = [X]
        for layer, (W, b) in enumerate(zip(self.W, self.b)):
            xs.append(self.f(layer, xs[-1]) @ W.T + b)
        return xs

    def errors(self, xs):
        return [
            xs[k + 1] - (self.f(k, xs[k]) @ W.T + b)
            for k, (W, b) in enumerate(zip(self.W, self.b))
        ]

    def step(self, X, y):
        xs = self.forward(X)
        xs[-1] = np.eye(10)[y]
        for _ in range(self.n_iter):
            eps = self.errors(xs)
            for k in range(1, len(self.W)):
                xs[k] += self.step_size * (
                    -eps[k - 1] + (xs[k] > 0) * (eps[k] @ self.W[k])
                )
        for k, e in enumerate(self.errors(xs)):
            self.W[k] += self.learning_rate * e.T @ self.f(k, xs[k]) / len(y)
            self.b[k] += self.learning_rate * e.mean(axis=0)

    def predict(self, X):
        return self.forward(X)[-1].argmax(axis=1)


class ForwardForward(Offline):
    r"""The forward-forward algorithm (Hinton 2022), ReLU layers.

    The label is appended to the image as a one-hot vector. Each layer is
    trained on its own to give a high *goodness*
    :math:`G = \mathrm{mean}(h^2)` to the image with its label (positive)
    and a low one to the image with a random wrong label (negative):
    minimise :math:`\mathrm{softplus}(\theta - G_+) +
    \mathrm{softplus}(G_- - \theta)`, :math:`\theta = 2`, with Adam. Each
    layer passes the *direction* of its activity (unit length) to the next.
    The predicted class is the label with the highest goodness summed over
    layers. The threshold and Adam's rate were chosen once, on the 8 x 8
    digits (one layer of 64, seed 0), from 0.003, 0.01 and 0.03: the
    largest learned fastest in one pass.
    """

    def __init__(self, layers, d, seed, learning_rate=0.03, threshold=2.0):
        self.rng = np.random.RandomState(seed)
        sizes = (d + 10,) + tuple(layers)
        self.W = [_he(self.rng, b, a) for a, b in zip(sizes[:-1], sizes[1:])]
        self.b = [np.zeros(b) for b in sizes[1:]]
        self.adam = [Adam(p, learning_rate) for p in self.W + self.b]
        self.threshold = threshold

    def state(self):
        return self.W + self.b + [a for adam in self.adam for a in adam.state()]

    def layers(self, X, labels):
        """The activities of every layer for images ``X`` with ``labels``."""
        z = np.hstack([X, np.eye(10)[labels]])
        hs = []
        for W, b in zip(self.W, self.b):
            hs.append((z, np.maximum(z @ W.T + b, 0)))
            z = hs[-1][1] / (np.linalg.norm(hs[-1][1], axis=1, keepdims=True) + 1e-8)
        return hs

    def step(self, X, y):
        wrong = (y + self.rng.randint(1, 10, size=len(y))) % 10
        grads = [np.zeros_like(p) for p in self.W + self.b]
        n_layers = len(self.W)
        for labels, sign in ((y, -1.0), (wrong, 1.0)):
            for k, (z, h) in enumerate(self.layers(X, labels)):
                G = np.mean(h**2, axis=1)
                # d/dG of softplus(theta - G) (positive), softplus(G - theta)
                dG = sign / (1 + np.exp(-sign * (G - self.threshold)))
                dpre = dG[:, None] * 2 * h / h.shape[1]  # h = 0 where pre < 0
                grads[k] += dpre.T @ z / len(y)
                grads[n_layers + k] += dpre.mean(axis=0)
        for adam, g in zip(self.adam, grads):
            adam.step(g)

    def predict(self, X):
        goodness = np.zeros((len(X), 10))
        for c in range(10):
            for _, h in self.layers(X, np.full(len(X), c)):
                goodness[:, c] += np.mean(h**2, axis=1)
        return goodness.argmax(axis=1)


class Adam:
    """Adam (Kingma & Ba 2015) on one parameter array, in place."""

    def __init__(self, param, learning_rate, beta1=0.9, beta2=0.999, eps=1e-8):
        self.param, self.learning_rate = param, learning_rate
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m, self.v, self.t = np.zeros_like(param), np.zeros_like(param), 0

    def state(self):
        return [self.m, self.v]

    def step(self, grad):
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad**2
        m = self.m / (1 - self.beta1**self.t)
        v = self.v / (1 - self.beta2**self.t)
        self.param -= self.learning_rate * m / (np.sqrt(v) + self.eps)


class SklearnMLP(Offline):
    """scikit-learn's ``MLPClassifier`` (ReLU, softmax output, Adam at its
    default rate 1e-3), trained with ``partial_fit``: one pass, minibatches
    of ``BATCH``."""

    def __init__(self, layers, d, seed):
        from sklearn.neural_network import MLPClassifier

        self.mlp = MLPClassifier(
            hidden_layer_sizes=tuple(layers), batch_size=BATCH, random_state=seed
        )

    def train(self, X, y):
        self.mlp.partial_fit(X, y, classes=np.arange(10))

    def predict(self, X):
        return self.mlp.predict(X)

    def state(self):
        params = self.mlp.coefs_ + self.mlp.intercepts_
        return params * 3  # and Adam's two moments of each


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
