"""Build functions and operators for the reference simulator.

Everything here is registered with `nengo.builder.Builder` when `nengo_fa` is
imported. Only nengo_fa's own types are registered, so models that do not use
nengo_fa build exactly as before.
"""

import collections

import numpy as np
from nengo.builder import Builder, Operator, Signal
from nengo.builder.operator import Copy, Reset
from nengo.ensemble import Ensemble, Neurons
from nengo.exceptions import BuildError, SimulationError
from nengo.neurons import Direct
from nengo.transforms import Dense, NoTransform

from nengo_fa.learning_rules import BackProp, FeedbackAlignment, HiddenLayerRule
from nengo_fa.neurons import make_derivative

#: Gains are kept at or above this fraction of the mean build-time gain.
MIN_GAIN_FRACTION = 1e-3

BuiltHiddenLayerRule = collections.namedtuple(
    "BuiltHiddenLayerRule", ("feedback", "gain_scale", "derivative_scale")
)
BuiltHiddenLayerRule.__doc__ = """Build-time information about a `.HiddenLayerRule`.

Available as ``sim.data[conn.learning_rule]``.

Attributes
----------
feedback : ndarray or None
    The fixed feedback matrix :math:`F` (``n_neurons x error_size``), or None
    when the feedback is read live from another connection (`.BackProp`).
gain_scale : float
    :math:`\\hat g`, the mean build-time gain of the hidden ensemble.
derivative_scale : float
    :math:`\\bar{G'}`, the mean derivative of the active neurons over the
    ensemble's radius.
"""


class SimHiddenLayerRule(Operator):
    r"""Compute the updates of a hidden ensemble from a fed-back error.

    Implements, with the notation of `.HiddenLayerRule`,

    .. math::

       \delta &= (F e) \odot G'(J) \\
       u &= \Delta t \, \hat g \, \delta / (\nu \bar{G'})

    then the bias, gain and encoder updates

    .. math::

       \Delta b &= -\kappa_b u \\
       \Delta g_i &= -\kappa_g u_i p_i / r \\
       \Delta S_i &= (\alpha_i - 1) S_i + \beta_i x^T

    where :math:`p_i = E_i \cdot x = S_i \cdot x \, r / g_i`,
    :math:`a_i = \kappa_E u_i / (r g_i)`, and :math:`\alpha_i, \beta_i`
    are chosen so that the new scaled encoder is exactly
    :math:`(g_i + \Delta g_i) / r` times the renormalised direction
    :math:`(1 + a_i p_i) E_i - a_i x`.

    Parameters
    ----------
    error : Signal
        The error :math:`e`, shape ``(d_out,)``.
    feedback : Signal
        :math:`F`, shape ``(n, d_out)``, or :math:`F^T` (shape
        ``(d_out, n)``) when ``transpose_feedback`` is True.
    current : Signal
        The neurons' input current :math:`J`, shape ``(n,)``.
    x : Signal
        The ensemble's decoded input :math:`x`, shape ``(d,)``.
    scaled_encoders : Signal
        :math:`S`, shape ``(n, d)``.
    gain : Signal
        The gains :math:`g`, shape ``(n,)``.
    delta : Signal
        Output: the local error :math:`\delta`, shape ``(n,)``.
    encoders_delta, gain_delta, bias_delta : Signal
        Output: the updates of :math:`S`, :math:`g` and :math:`b`, applied
        on the next step by ``Copy(..., inc=True)``.
    derivative : callable
        ``derivative(J, out)`` writes :math:`G'(J)` into ``out``.
    radius : float
        The ensemble's radius :math:`r`.
    gain_scale : float
        :math:`\hat g`.
    derivative_scale : float
        :math:`\bar{G'}`.
    learning_rate, gain_learning_rate, bias_learning_rate : float
        :math:`\kappa_E, \kappa_g, \kappa_b`.
    transpose_feedback : bool
        Whether ``feedback`` holds :math:`F^T`.
    tag : str, optional
        A label associated with the operator, for debugging purposes.

    Notes
    -----
    1. sets ``[]``
    2. incs ``[]``
    3. reads ``[error, feedback, current, x, scaled_encoders, gain]``
    4. updates ``[delta, encoders_delta, gain_delta, bias_delta]``
    """

    def __init__(
        self,
        error,
        feedback,
        current,
        x,
        scaled_encoders,
        gain,
        delta,
        encoders_delta,
        gain_delta,
        bias_delta,
        derivative,
        radius,
        gain_scale,
        derivative_scale,
        learning_rate,
        gain_learning_rate,
        bias_learning_rate,
        transpose_feedback=False,
        tag=None,
    ):
        super().__init__(tag=tag)
        self.derivative = derivative
        self.radius = radius
        self.gain_scale = gain_scale
        self.derivative_scale = derivative_scale
        self.learning_rate = learning_rate
        self.gain_learning_rate = gain_learning_rate
        self.bias_learning_rate = bias_learning_rate
        self.transpose_feedback = transpose_feedback

        self.sets = []
        self.incs = []
        self.reads = [error, feedback, current, x, scaled_encoders, gain]
        self.updates = [delta, encoders_delta, gain_delta, bias_delta]

    @property
    def error(self):
        return self.reads[0]

    @property
    def feedback(self):
        return self.reads[1]

    @property
    def current(self):
        return self.reads[2]

    @property
    def x(self):
        return self.reads[3]

    @property
    def scaled_encoders(self):
        return self.reads[4]

    @property
    def gain(self):
        return self.reads[5]

    @property
    def delta(self):
        return self.updates[0]

    @property
    def encoders_delta(self):
        return self.updates[1]

    @property
    def gain_delta(self):
        return self.updates[2]

    @property
    def bias_delta(self):
        return self.updates[3]

    @property
    def _descstr(self):
        return f"error={self.error}, feedback={self.feedback} -> {self.delta}"

    def make_step(self, signals, dt, rng):
        error = signals[self.error]
        feedback = signals[self.feedback]
        current = signals[self.current]
        x = signals[self.x]
        S = signals[self.scaled_encoders]
        gain = signals[self.gain]
        delta = signals[self.delta]
        encoders_delta = signals[self.encoders_delta]
        gain_delta = signals[self.gain_delta]
        bias_delta = signals[self.bias_delta]

        F = feedback.T if self.transpose_feedback else feedback
        n = S.shape[0]
        r = self.radius
        kE = self.learning_rate
        kg = self.gain_learning_rate
        kb = self.bias_learning_rate
        learn_encoders = kE > 0 or kg > 0
        # with fixed feedback the RMS row norm never changes: compute it once
        fixed_nu = None if self.transpose_feedback else _rms_row_norm(feedback, n)
        base_scale = dt * self.gain_scale / self.derivative_scale
        # a gain of 0 would lose the encoder's direction: keep gains positive
        min_gain = MIN_GAIN_FRACTION * self.gain_scale

        derivative = self.derivative
        finite = np.empty(error.shape, dtype=bool)
        fe = np.empty(n)
        u = np.empty(n)
        p = np.empty(n)
        a = np.empty(n)
        g = np.empty(n)
        g_new = np.empty(n)
        nrm = np.empty(n)
        alpha = np.empty((n, 1))
        beta = np.empty((n, 1))
        scratch = np.empty_like(S)

        def step_simhiddenlayerrule():
            np.isfinite(error, out=finite)
            if not finite.all():
                raise SimulationError(
                    f"{self.tag or 'nengo_fa rule'}: the error contains NaN or inf; "
                    "stopping before it reaches the encoders, gains and biases."
                )

            nu = _rms_row_norm(feedback, n) if fixed_nu is None else fixed_nu
            np.dot(F, error, out=fe)
            derivative(current, delta)
            np.multiply(delta, fe, out=delta)
            if nu == 0:
                # no feedback yet (e.g. a readout that starts at zero)
                encoders_delta[...] = 0
                gain_delta[...] = 0
                bias_delta[...] = 0
                return
            np.multiply(delta, base_scale / nu, out=u)
            np.multiply(u, -kb, out=bias_delta)

            if not learn_encoders:
                return

            # p = E x, the projection of x on each unit encoder
            np.maximum(gain, min_gain, out=g)
            np.dot(S, x, out=p)
            np.multiply(p, r, out=p)
            np.divide(p, g, out=p)

            # gain step
            np.multiply(u, p, out=g_new)
            np.multiply(g_new, -kg / r, out=g_new)
            np.add(g_new, g, out=g_new)
            np.maximum(g_new, min_gain, out=g_new)
            np.subtract(g_new, g, out=gain_delta)

            # direction step on the unit sphere, renormalised exactly
            np.multiply(u, kE / r, out=a)
            np.divide(a, g, out=a)
            # nrm = sqrt(1 + a^2 (|x|^2 - p^2)), without overflow for large a
            np.multiply(p, p, out=nrm)
            np.subtract(np.dot(x, x), nrm, out=nrm)
            np.maximum(nrm, 0, out=nrm)
            np.sqrt(nrm, out=nrm)
            np.multiply(nrm, a, out=nrm)
            np.hypot(nrm, 1, out=nrm)

            # S_new = alpha * S + beta x^T
            alpha0 = alpha[:, 0]
            np.multiply(a, p, out=alpha0)
            alpha0 += 1
            alpha0 *= g_new
            alpha0 /= g
            alpha0 /= nrm
            alpha0 -= 1
            beta0 = beta[:, 0]
            np.divide(a, nrm, out=beta0)
            beta0 *= g_new
            beta0 *= -1.0 / r

            np.multiply(beta, x, out=encoders_delta)
            np.multiply(alpha, S, out=scratch)
            np.add(encoders_delta, scratch, out=encoders_delta)

        return step_simhiddenlayerrule


def _rms_row_norm(F, n):
    """``||F||_F / sqrt(n)``: the RMS row norm of F, or of F^T, with n rows."""
    flat = F.reshape(-1)  # a view for the contiguous arrays signals hold
    return np.sqrt(np.dot(flat, flat) / n)


def _derivative_scale(neuron_type, derivative, gain, bias):
    """Mean of G'(J) over the active part of the tuning curves on [-1, 1]."""
    xs = np.linspace(-1, 1, 101)
    rates = neuron_type.rates(xs, gain, bias)
    slopes = np.empty_like(rates)
    for i, xi in enumerate(xs):
        derivative(gain * xi + bias, slopes[i])
    active = (rates > 0) & np.isfinite(slopes)
    scale = np.mean(slopes[active]) if np.any(active) else 0.0
    return float(scale) if scale > 0 else 1.0


def _when_built(model, obj, callback):
    """Call ``callback()`` once ``obj`` has been built into ``model``.

    Lets a rule depend on another connection whatever order they were created
    in, without building that connection out of turn.
    """
    if model.has_built(obj):
        callback()
        return

    previous = model.build_callback
    called = [False]

    def build_callback(built_obj):
        if previous is not None:
            previous(built_obj)
        if built_obj is obj and not called[0]:
            called[0] = True
            callback()

    model.build_callback = build_callback


def _ensemble_gain_signal(model, ens):
    """The ensemble's gains as a learnable signal, shared by all its rules."""
    if "gain" not in model.sig[ens]:
        S = model.sig[ens]["encoders"].initial_value
        gain = ens.radius * np.linalg.norm(S, axis=1)
        model.sig[ens]["gain"] = Signal(gain, name=f"{ens}.gain")
    return model.sig[ens]["gain"]


@Builder.register(HiddenLayerRule)
def build_hidden_layer_rule(model, rule_type, rule):
    """Builds a `.HiddenLayerRule` (`.FeedbackAlignment`, `.BackProp`).

    Creates the error signal (``model.sig[rule]["in"]``), a learnable gain
    signal for the ensemble (shared between rules on the same ensemble) and
    per-rule update signals, makes the ensemble's bias writable, and adds a
    `.SimHiddenLayerRule` operator plus ``Copy(..., inc=True)`` operators that
    apply its updates on the next step. For `.BackProp`, the operator is added
    once the downstream connection has been built.

    Parameters
    ----------
    model : Model
        The model to build into.
    rule_type : HiddenLayerRule
        Learning rule type to build.
    rule : LearningRule
        The learning rule object corresponding to the rule type.

    Notes
    -----
    Sets ``model.params[rule]`` to a `.BuiltHiddenLayerRule`.
    """
    conn = rule.connection
    ens = conn.post_obj
    if not isinstance(ens, Ensemble):  # Nengo's own validation should catch this
        raise BuildError(
            f"{type(rule_type).__name__} on {conn}: 'post' must be an Ensemble "
            f"(got {type(ens).__name__})"
        )
    if isinstance(ens.neuron_type, Direct):
        raise BuildError(
            f"{type(rule_type).__name__} on {conn}: {ens} has Direct neurons, so "
            "it has no encoders, gains or biases to learn. Use a neuron type."
        )

    built_ens = model.params[ens]
    n = ens.n_neurons
    encoders = model.sig[ens]["encoders"]
    bias = model.sig[ens.neurons]["bias"]
    bias.readonly = False  # before the simulator allocates it
    gain = _ensemble_gain_signal(model, ens)

    error = Signal(shape=rule.size_in, name=f"{type(rule_type).__name__}:error")
    model.add_op(Reset(error))
    model.sig[rule]["in"] = error  # error connection will attach here

    derivative = make_derivative(
        ens.neuron_type, built_ens.gain, built_ens.bias, rule_type.derivative
    )
    gain_scale = float(np.mean(np.abs(gain.initial_value)))
    gain_scale = gain_scale if gain_scale > 0 else 1.0
    derivative_scale = _derivative_scale(
        ens.neuron_type, derivative, built_ens.gain, built_ens.bias
    )

    # nengo's build_learning_rule made an (n, d) delta that it adds to the
    # encoders; the per-neuron local error takes over the name "delta"
    encoders_delta = model.sig[rule]["delta"]
    delta = Signal(shape=n, name=f"{type(rule_type).__name__}:delta")
    gain_delta = Signal(shape=n, name=f"{type(rule_type).__name__}:gain_delta")
    bias_delta = Signal(shape=n, name=f"{type(rule_type).__name__}:bias_delta")
    model.add_op(Copy(gain_delta, gain, inc=True, tag="gain += delta"))
    model.add_op(Copy(bias_delta, bias, inc=True, tag="bias += delta"))

    def add_operator(feedback, transpose_feedback):
        model.add_op(
            SimHiddenLayerRule(
                error=error,
                feedback=feedback,
                current=model.sig[ens.neurons]["in"],
                x=model.sig[ens]["in"],
                scaled_encoders=encoders,
                gain=gain,
                delta=delta,
                encoders_delta=encoders_delta,
                gain_delta=gain_delta,
                bias_delta=bias_delta,
                derivative=derivative,
                radius=ens.radius,
                gain_scale=gain_scale,
                derivative_scale=derivative_scale,
                learning_rate=rule_type.learning_rate,
                gain_learning_rate=rule_type.gain_learning_rate,
                bias_learning_rate=rule_type.bias_learning_rate,
                transpose_feedback=transpose_feedback,
                tag=f"{type(rule_type).__name__} on {conn}",
            )
        )

    feedback = None
    if isinstance(rule_type, FeedbackAlignment):
        feedback = _build_fixed_feedback(model, rule_type, rule, n)
        add_operator(model.sig[rule]["feedback"], transpose_feedback=False)
    elif isinstance(rule_type, BackProp):
        _build_backprop_feedback(model, rule_type, rule, ens, add_operator)
    else:
        raise BuildError(f"No feedback source for {type(rule_type).__name__}")

    model.sig[rule]["error"] = error
    model.sig[rule]["delta"] = delta
    model.sig[rule]["encoders"] = encoders
    model.sig[rule]["scaled_encoders"] = encoders
    model.sig[rule]["gain"] = gain
    model.sig[rule]["bias"] = bias
    model.params[rule] = BuiltHiddenLayerRule(
        feedback=feedback, gain_scale=gain_scale, derivative_scale=derivative_scale
    )


def _build_fixed_feedback(model, fa, rule, n):
    """Sample (or check) the fixed feedback matrix of a `.FeedbackAlignment`."""
    conn = rule.connection
    if isinstance(fa.feedback, np.ndarray):
        feedback = np.array(fa.feedback, dtype=np.float64)
        if feedback.shape != (n, fa.error_size):
            raise BuildError(
                f"FeedbackAlignment on {conn}: 'feedback' has shape "
                f"{feedback.shape}, but the post ensemble has {n} neurons and the "
                f"error has {fa.error_size} dimensions: expected "
                f"{(n, fa.error_size)}"
            )
    else:
        # a stream of its own, derived from the connection's seed
        seed = np.random.SeedSequence([model.seeds[conn], 0xFA]).generate_state(1)
        rng = np.random.RandomState(seed[0])
        feedback = np.asarray(
            fa.feedback.sample(n, fa.error_size, rng=rng), dtype=np.float64
        )
    if not np.all(np.isfinite(feedback)):
        raise BuildError(f"FeedbackAlignment on {conn}: 'feedback' is not finite")
    model.sig[rule]["feedback"] = Signal(
        feedback, name="FeedbackAlignment:feedback", readonly=True
    )
    return feedback


def _build_backprop_feedback(model, bp, rule, ens, add_operator):
    """Check ``bp.downstream`` and read its weights once it is built."""
    conn = rule.connection
    down = bp.downstream
    prefix = f"BackProp on {conn}"
    if getattr(down.pre_obj, "ensemble", down.pre_obj) is not ens:
        raise BuildError(
            f"{prefix}: 'downstream' must start at {ens} or its neurons, the "
            f"ensemble this rule trains (it starts at {down.pre_obj})"
        )
    if isinstance(down.pre_obj, Neurons) and down.pre_slice != slice(None):
        raise BuildError(
            f"{prefix}: 'downstream' must read all of {ens.neurons} "
            f"(it reads the slice {down.pre_slice})"
        )
    if not isinstance(down.transform, (Dense, NoTransform)) or not down.has_weights:
        raise BuildError(
            f"{prefix}: 'downstream' must have a Dense transform or decoders "
            f"(got {type(down.transform).__name__})"
        )
    if isinstance(down.pre_obj, Ensemble) and down.solver.weights:
        raise BuildError(
            f"{prefix}: 'downstream' uses a weight solver ({down.solver}); it "
            "needs decoders, so set weights=False"
        )
    if model.toplevel is not None and down not in model.toplevel.all_connections:
        raise BuildError(
            f"{prefix}: 'downstream' ({down}) is not part of the model being built"
        )

    def add_backprop_operator():
        weights = model.sig[down]["weights"]
        if weights is None or weights.shape != (down.size_out, ens.n_neurons):
            raise BuildError(
                f"{prefix}: expected 'downstream' weights of shape "
                f"{(down.size_out, ens.n_neurons)}, got "
                f"{None if weights is None else weights.shape}"
            )
        add_operator(weights, transpose_feedback=True)

    _when_built(model, down, add_backprop_operator)
