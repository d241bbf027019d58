"""Neuron derivatives :math:`G'(J)` in TensorFlow.

Each built-in `nengo_fa.neurons.Derivative` names its TensorFlow form
(`~nengo_fa.neurons.Derivative.tensorflow_form`): a family here and its
parameters. The formulas are those of `nengo_fa.neurons`, operation for
operation.
"""

import numpy as np
import tensorflow as tf
from nengo.exceptions import BuildError

from nengo_fa import neurons as fa_neurons


def tensorflow_derivative(derivative, neuron_type):
    """The TensorFlow form of a rule's derivative: ``(family, params)``.

    Parameters
    ----------
    derivative : callable
        The operator's derivative (a `nengo_fa.neurons.Derivative` for the
        built-in neuron types).
    neuron_type : NeuronType
        The hidden ensemble's neuron type, for the error message.

    Returns
    -------
    family : str
        A key of `FAMILIES`: ``"relu"``, ``"logistic"`` (`nengo.Sigmoid` and
        `nengo.Tanh`) or ``"lif"``.
    params : dict
        Scalar parameters of the family.

    Raises
    ------
    nengo.exceptions.BuildError
        For a user derivative and for neuron types whose derivative is Python
        code (tabulated, or registered by the user).
    """
    name = type(neuron_type).__name__
    if isinstance(derivative, fa_neurons.UserDerivative):
        raise BuildError(
            f"A nengo_fa rule on {name} neurons has a user 'derivative' function "
            f"({derivative.function!r}); NengoDL cannot run Python derivatives. "
            "Leave 'derivative' unset to use the built-in derivative of a "
            "supported neuron type."
        )
    form = getattr(derivative, "tensorflow_form", None)
    if form is None:
        raise BuildError(
            f"nengo_fa's NengoDL builder has no TensorFlow derivative for neuron "
            f"type '{name}' (the reference simulator uses a tabulated or "
            "user-registered Python derivative for it). Supported: RectifiedLinear, "
            "SpikingRectifiedLinear, Sigmoid, Tanh, LIF, LIFRate, AdaptiveLIF, "
            "AdaptiveLIFRate, nengo_extras' SoftLIFRate, and RegularSpiking, "
            "PoissonSpiking or StochasticSpiking around one of these."
        )
    return form


def derivative_family(neuron_type, derivative=None):
    """`tensorflow_derivative` of the derivative nengo_fa builds for
    ``neuron_type`` (and a rule's ``derivative`` function, if given)."""
    built = fa_neurons.make_derivative(neuron_type, np.ones(1), np.zeros(1), derivative)
    return tensorflow_derivative(built, neuron_type)


def _relu(J, scale):
    # np.heaviside(J, 0): 1 where J > 0, else 0
    return tf.where(J > 0, scale, tf.zeros_like(J))


def _logistic(J, scale, slope):
    e = tf.exp(-slope * tf.abs(J))
    return scale * (e / tf.square(e + 1.0))


def _lif(J, scale, tau_rc, tau_ref, sigma):
    """`nengo_fa.neurons.smoothed_lif_derivative`, operation for operation."""
    dtype = J.dtype
    log_sigma = tf.math.log(sigma)
    y_tail = fa_neurons.LIF_TAIL - tf.maximum(log_sigma, 0.0)
    clip = tf.constant(min(fa_neurons.J_CLIP, dtype.max), dtype=dtype)
    y = (tf.clip_by_value(J, -clip, clip) - 1.0) / sigma
    tail = y < y_tail

    # main branch: j = sigma softplus(y); 1 / sigmoid(y) = 1 + exp(-y)
    a = tf.maximum(y, y_tail)
    j = (tf.math.log1p(tf.exp(-tf.abs(a))) + tf.maximum(a, 0.0)) * sigma
    inv_sigmoid = tf.exp(-a) + 1.0
    c = tf.math.log1p(tf.math.reciprocal(j)) * tau_rc + tau_ref
    main = scale / (tf.square(c) * inv_sigmoid * j * (j + 1.0))

    # tail, y < y_tail: j = sigma exp(y)
    c_tail = (-tf.minimum(y, y_tail) - log_sigma) * tau_rc + tau_ref
    tail_value = scale / (tf.square(c_tail) * sigma)
    return tf.where(tail, tail_value, main)


#: The TensorFlow derivative of each family, ``f(J, **params)``.
FAMILIES = {"relu": _relu, "logistic": _logistic, "lif": _lif}
