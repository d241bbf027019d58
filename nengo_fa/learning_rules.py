r"""Learning rules that train a hidden ensemble from an output error.

The rules here are declarations only: parameters, validation and documentation.
Their build functions and operators live in `nengo_fa.builder`.
"""

from nengo.base import NengoObject
from nengo.connection import Connection
from nengo.dists import DistOrArrayParam, Gaussian
from nengo.ensemble import Ensemble, Neurons
from nengo.exceptions import ValidationError
from nengo.learning_rules import LearningRuleType
from nengo.params import Default, IntParam, NumberParam, Parameter


class DerivativeParam(Parameter):
    """A callable ``f(J)`` giving the neuron response derivative, or None."""

    def coerce(self, instance, derivative):  # pylint: disable=arguments-renamed
        if derivative is not None and not callable(derivative):
            raise ValidationError(
                f"must be a callable f(J) returning dG/dJ (got {derivative!r})",
                attr=self.name,
                obj=instance,
            )
        return super().coerce(instance, derivative)


class DownstreamParam(Parameter):
    """A `nengo.Connection` leaving a neural population."""

    def coerce(self, instance, conn):  # pylint: disable=arguments-renamed
        self.check_type(instance, conn, Connection)
        if not isinstance(conn.pre_obj, (Ensemble, Neurons)):
            raise ValidationError(
                "must be a connection leaving the hidden ensemble or its neurons "
                f"(got a connection from {conn.pre_obj!r})",
                attr=self.name,
                obj=instance,
            )
        return super().coerce(instance, conn)


class HiddenLayerRule(LearningRuleType):
    r"""Base class of the rules that learn a hidden ensemble's encoders.

    Subclasses differ only in where the feedback matrix :math:`F` comes from;
    everything else (the local error, the updates, their normalisation) is
    shared and documented here.

    A rule goes on a connection *into* the hidden ensemble. It receives the
    output error :math:`e = y - y^*` (actual minus target, exactly as
    `nengo.PES`) through a connection to ``conn.learning_rule``, and updates
    the ensemble's encoders, gains and biases every time step.

    Parameters
    ----------
    learning_rate : float, optional
        Rate :math:`\kappa_E` for the encoder directions (1/s, normalised as
        described under Notes). 0 freezes them.
    gain_learning_rate : float, optional
        Rate :math:`\kappa_g` for the gains. 0 freezes them. When it equals
        ``learning_rate``, the scaled encoders follow plain gradient descent.
    bias_learning_rate : float, optional
        Rate :math:`\kappa_b` for the biases. 0 freezes them.
    derivative : callable, optional
        ``f(J)`` returning :math:`G'(J)`, the derivative of the neurons' rate
        response with respect to input current, elementwise. By default it is
        looked up in `nengo_fa.neurons` for the ensemble's neuron type.

    Notes
    -----
    For a hidden ensemble with unit encoders :math:`E`, gains :math:`g`,
    biases :math:`b` and radius :math:`r`, Nengo computes the input current
    :math:`J = S x + b` with scaled encoders :math:`S = \mathrm{diag}(g/r) E`
    and :math:`x` the ensemble's total decoded input. The local error is

    .. math:: \delta = (F e) \odot G'(J)

    and the gradients of :math:`L = \frac{1}{2}|e|^2` (taking :math:`F = D^T`)
    are :math:`\partial L/\partial S = \delta x^T`,
    :math:`\partial L/\partial b = \delta` and
    :math:`\partial L/\partial g_i = \delta_i (E_i \cdot x) / r`.

    The updates are these gradients times one positive scalar per ensemble,
    chosen so that the same default rates work for any ensemble size, gain,
    radius, neuron type and feedback scale:

    .. math::

       \Delta b &= -\kappa_b \, \Delta t \, \hat g \, \hat\delta \\
       \Delta g_i &= -\kappa_g \, \Delta t \, \hat g \, \hat\delta_i
                     (E_i \cdot x) / r \\
       \Delta E_i &\propto -\kappa_E \, \Delta t \, \frac{\hat g}{g_i r}
                     \hat\delta_i (x - (E_i \cdot x) E_i)

    with :math:`\hat\delta = (F e) \odot G'(J) / (\nu \bar{G'})`, where

    * :math:`\nu = \|F\|_F / \sqrt{n}` is the root-mean-square row norm of the
      feedback matrix (recomputed every step when :math:`F` changes),
    * :math:`\bar{G'}` is the mean of :math:`G'` over the active part of the
      neurons' tuning curves on :math:`[-r, r]` (1 for rectified linear
      neurons), computed at build time,
    * :math:`\hat g` is the mean build-time gain.

    The direction update is a step along the sphere, renormalised exactly, so
    that a gain rate of 0 keeps gains fixed. Gains are kept at or above
    ``nengo_fa.builder.MIN_GAIN_FRACTION`` (0.001) times :math:`\hat g`, since a
    zero gain would lose the encoder's direction. With
    :math:`\kappa_g = \kappa_E = \kappa`, to first order in :math:`\Delta t`,
    :math:`\Delta S = -\kappa \Delta t \, \hat g \, \hat\delta x^T / r^2`:
    gradient descent on the scaled encoders. One unit of rate changes each
    neuron's current by about :math:`\kappa \Delta t \, \hat g |F e| / \nu`,
    i.e. by a fraction :math:`\kappa \Delta t` of its range per unit of
    normalised error, whatever the ensemble.

    Updates computed on one step are applied at the start of the next, as for
    Nengo's own rules. The error, the local error and all parameters are
    probeable (see ``probeable``). ``encoders`` and ``scaled_encoders`` both
    probe the live scaled encoders :math:`S` (the signal Nengo multiplies the
    input by); divide row :math:`i` by :math:`g_i / r` for unit encoders.

    If the error contains NaN or inf, the simulation stops with a
    `nengo.exceptions.SimulationError` before any parameter is changed.
    """

    modifies = "encoders"
    probeable = ("error", "delta", "encoders", "scaled_encoders", "gain", "bias")

    learning_rate = NumberParam("learning_rate", low=0, readonly=True, default=1.0)
    gain_learning_rate = NumberParam(
        "gain_learning_rate", low=0, readonly=True, default=1.0
    )
    bias_learning_rate = NumberParam(
        "bias_learning_rate", low=0, readonly=True, default=1.0
    )
    derivative = DerivativeParam(
        "derivative", default=None, optional=True, readonly=True
    )

    def __init__(
        self,
        learning_rate=Default,
        gain_learning_rate=Default,
        bias_learning_rate=Default,
        derivative=Default,
        size_in=0,
    ):
        super().__init__(learning_rate=learning_rate, size_in=size_in)
        self.gain_learning_rate = gain_learning_rate
        self.bias_learning_rate = bias_learning_rate
        self.derivative = derivative


class FeedbackAlignment(HiddenLayerRule):
    r"""Feedback alignment: the error reaches the hidden layer through a fixed
    random matrix.

    The hidden ensemble's encoders, gains and biases are trained with the
    local error :math:`\delta = (B e) \odot G'(J)`, where :math:`B`
    (``n_neurons x error_size``) is random and fixed, instead of the transpose
    of the downstream weights that backpropagation would need. The forward
    weights come to align with :math:`B`, so that :math:`B e` becomes a useful
    descent direction [1]_. See `.HiddenLayerRule` for the updates and their
    normalisation.

    Parameters
    ----------
    error_size : int or NengoObject
        Dimensionality of the error signal. A Nengo object (e.g. the output
        node the error is computed from) can be given instead; its
        ``size_out`` is used.
    feedback : Distribution or (n_neurons, error_size) array_like, optional
        The feedback matrix :math:`B`, or the distribution it is sampled from
        at build time (with a seed derived from the connection's seed, so it
        follows the model seed). Its overall scale does not matter: the update
        is normalised by the RMS row norm of :math:`B`.
    learning_rate : float, optional
        Rate for the encoder directions. 0 freezes them.
    gain_learning_rate : float, optional
        Rate for the gains. 0 freezes them.
    bias_learning_rate : float, optional
        Rate for the biases. 0 freezes them.
    derivative : callable, optional
        ``f(J)`` returning :math:`G'(J)`; by default looked up for the
        ensemble's neuron type in `nengo_fa.neurons`.

    Attributes
    ----------
    error_size : int
        Dimensionality of the error signal.
    feedback : Distribution or ndarray
        The feedback matrix, or its distribution.

    See Also
    --------
    BackProp

    Notes
    -----
    Probeable: ``"error"``, ``"delta"`` (per-neuron :math:`\delta`),
    ``"encoders"``/``"scaled_encoders"``, ``"gain"``, ``"bias"`` and
    ``"feedback"``. The sampled matrix is also in
    ``sim.data[conn.learning_rule].feedback``.

    References
    ----------
    .. [1] Lillicrap, T. P., Cownden, D., Tweed, D. B., & Akerman, C. J.
       (2016). Random synaptic feedback weights support error backpropagation
       for deep learning. Nature Communications, 7, 13276.

    Examples
    --------
    .. testcode::

       with nengo.Network(seed=0) as model:
           stim = nengo.Node(lambda t: [np.sin(np.pi * t), np.cos(np.pi * t)])
           hidden = nengo.Ensemble(20, 2, neuron_type=nengo.RectifiedLinear())
           out = nengo.Node(size_in=1)
           readout = nengo.Connection(
               hidden, out, function=lambda x: 0, learning_rule_type=nengo.PES()
           )
           layer1 = nengo.Connection(
               stim, hidden,
               learning_rule_type=nengo_fa.FeedbackAlignment(error_size=out),
           )
           error = nengo.Node(size_in=1)
           nengo.Connection(out, error)
           nengo.Connection(stim, error, function=lambda x: -x[0] * x[1])
           nengo.Connection(error, readout.learning_rule)
           nengo.Connection(error, layer1.learning_rule)
    """

    probeable = HiddenLayerRule.probeable + ("feedback",)

    error_size = IntParam("error_size", low=1, readonly=True)
    feedback = DistOrArrayParam(
        "feedback",
        default=Gaussian(mean=0, std=1),
        sample_shape=("*", "error_size"),
        readonly=True,
    )

    _param_init_order = ["error_size"]

    def __init__(
        self,
        error_size,
        feedback=Default,
        learning_rate=Default,
        gain_learning_rate=Default,
        bias_learning_rate=Default,
        derivative=Default,
    ):
        if isinstance(error_size, NengoObject):
            error_size = error_size.size_out
        self.error_size = error_size  # validated first: size_in depends on it
        super().__init__(
            learning_rate=learning_rate,
            gain_learning_rate=gain_learning_rate,
            bias_learning_rate=bias_learning_rate,
            derivative=derivative,
            size_in=error_size,
        )
        self.feedback = feedback


class BackProp(HiddenLayerRule):
    r"""Backpropagation through the live weights of a downstream connection.

    The local error of the hidden ensemble is
    :math:`\delta = (W^T e) \odot G'(J)`, where :math:`W` (``size_out x
    n_neurons``) is the *current* value of ``downstream``'s decoders (or
    weights): when ``downstream`` learns, e.g. with `nengo.PES`, the feedback
    follows it step by step. This is the exact gradient of
    :math:`\frac{1}{2}|e|^2` [1]_, delayed by one time step, and serves as the
    reference that the biologically plausible rules are measured against.
    See `.HiddenLayerRule` for the updates and their normalisation.

    Parameters
    ----------
    downstream : Connection
        The connection leaving the hidden ensemble (or its neurons) whose
        output the error is measured on. It must start at the ensemble this
        rule's connection goes into, have a `nengo.Dense` or no transform and
        no weight solver. It can be created before or after this rule's
        connection.
    learning_rate : float, optional
        Rate for the encoder directions. 0 freezes them.
    gain_learning_rate : float, optional
        Rate for the gains. 0 freezes them.
    bias_learning_rate : float, optional
        Rate for the biases. 0 freezes them.
    derivative : callable, optional
        ``f(J)`` returning :math:`G'(J)`; by default looked up for the
        ensemble's neuron type in `nengo_fa.neurons`.

    Attributes
    ----------
    downstream : Connection
        The connection whose weights carry the error back.

    See Also
    --------
    FeedbackAlignment

    Notes
    -----
    The error has ``downstream.size_out`` dimensions. Probeable:
    ``"error"``, ``"delta"``, ``"encoders"``/``"scaled_encoders"``,
    ``"gain"`` and ``"bias"``. Because the update is normalised by the RMS
    norm of :math:`W`, it does nothing while :math:`W = 0` (e.g. a readout
    that starts with ``function=lambda x: 0``) and takes full-size steps as
    soon as the readout has any structure.

    References
    ----------
    .. [1] Rumelhart, D. E., Hinton, G. E., & Williams, R. J. (1986).
       Learning representations by back-propagating errors. Nature, 323,
       533-536.
    """

    downstream = DownstreamParam("downstream", readonly=True)

    def __init__(
        self,
        downstream,
        learning_rate=Default,
        gain_learning_rate=Default,
        bias_learning_rate=Default,
        derivative=Default,
    ):
        self.downstream = downstream
        super().__init__(
            learning_rate=learning_rate,
            gain_learning_rate=gain_learning_rate,
            bias_learning_rate=bias_learning_rate,
            derivative=derivative,
            size_in=downstream.size_out,
        )
