"""TensorFlow builders that run nengo_fa models in NengoDL.

`NengoDL <https://www.nengo.ai/nengo-dl/>`_ simulates a Nengo model with
TensorFlow, on CPU or GPU. It builds the model with Nengo's builder, so our
build functions (`nengo_fa.builder`) run unchanged and add the same operators
as for ``nengo.Simulator``; NengoDL then needs a TensorFlow implementation of
each operator. This module provides them and registers them with
``nengo_dl.builder.Builder``.

Importing this module imports TensorFlow and NengoDL. Users never need to:
``import nengo_fa`` arranges for it to be imported right after ``nengo_dl``
is (see `nengo_fa._dl_hook`), so ::

    import nengo_dl, nengo_fa
    with nengo_dl.Simulator(model) as sim:   # model uses nengo_fa rules
        sim.run(1.0)

works in either import order, and ``import nengo_fa`` alone stays fast and does
not need TensorFlow.

Supported operators
-------------------
Every operator that nengo_fa's build functions add (`SUPPORTED_OPERATORS`):

- `.SimHiddenLayerRule` (`.FeedbackAlignment`, `.BackProp`, `.SignSymmetry`),
  with the ``(n, d)`` encoder delta that Nengo's ``Copy`` applies or the
  factors that `.SimHiddenLayerEncoderUpdate` applies in place;
- `.SimHiddenLayerEncoderUpdate`, `.SimHiddenLayerWeights`
  (``modifies="weights"``), `.SimChainedError` (chained rules),
  `.SimSignFeedback`;
- from `nengo_fa.feedback`: `.SimForwardMatrix`, `.SimKolenPollack`,
  `.SimAlignmentTerms` (learned feedback) and `.SimAlignmentDiagnostics`.

Updates are applied by Nengo's ``Copy`` operators, which NengoDL supports.
Operators of one kind are merged into one TensorFlow computation, as NengoDL
does for its own learning rules. `.SimHiddenLayerRule` and
`.SimHiddenLayerEncoderUpdate` concatenate the neurons of all their
ensembles, so ensembles of different sizes merge as long as they have the same
input dimensionality ``d`` and error size (and, for live feedback such as
`.BackProp`'s, the same number of neurons); the other operators merge when
their signals have the same shapes.

Supported neuron types
----------------------
The derivative :math:`G'(J)` is computed in TensorFlow with the same formulas
as `nengo_fa.neurons` (looked up in its registry, through the neuron type's
method resolution order, so subclasses behave as in the reference simulator):

- `nengo.RectifiedLinear`, `nengo.SpikingRectifiedLinear`;
- `nengo.Sigmoid`, `nengo.Tanh`;
- `nengo.LIFRate`, `nengo.LIF`, `nengo.AdaptiveLIFRate`, `nengo.AdaptiveLIF`
  (`.smoothed_lif_derivative` with `.LIF_SIGMA`), and
  ``nengo_extras.neurons.SoftLIFRate`` (with its own ``sigma``);
- `nengo.RegularSpiking`, `nengo.PoissonSpiking`, `nengo.StochasticSpiking`
  wrapping any of these (as far as NengoDL simulates them).

Types whose derivative is tabulated numerically (`nengo.Izhikevich`, types
without a registered derivative), derivatives registered by users, and rules
given a ``derivative`` function are Python code that TensorFlow cannot run:
building them raises a `~nengo.exceptions.BuildError` naming the type.

Differences from the reference simulator
----------------------------------------
- Arithmetic is in NengoDL's ``dtype`` (float32 by default; set
  ``nengo_dl.configure_settings(dtype="float64")`` for agreement to about
  1e-12).
- A NaN or inf in the error stops the run with TensorFlow's
  ``InvalidArgumentError`` (``tf.debugging.check_numerics``) instead of
  `~nengo.exceptions.SimulationError`. As in the reference simulator, nothing
  is learned from it: the failed ``run`` call does not write its state back.
- NengoDL treats ensemble biases as trainable, non-minibatched parameters, and
  writes parameters back between ``run`` calls only if they are minibatched. A
  bias learned by a nengo_fa rule is therefore marked the way NengoDL marks the
  encoders or weights targeted by its own learning rules: not trainable by
  ``sim.fit``, minibatched (each minibatch item learns independently), and
  kept between ``run`` calls. See `mark_learned_signals`.
"""

import warnings
import weakref

import nengo_dl
import numpy as np
import tensorflow as tf
from nengo.builder.operator import Copy
from nengo.connection import LearningRule
from nengo.ensemble import Ensemble
from nengo.exceptions import BuildError
from nengo_dl.builder import Builder, OpBuilder
from nengo_dl.tensor_graph import TensorGraph

from nengo_fa import neurons as fa_neurons
from nengo_fa.builder import (
    MIN_GAIN_FRACTION,
    SimChainedError,
    SimHiddenLayerEncoderUpdate,
    SimHiddenLayerRule,
    SimHiddenLayerWeights,
    SimSignFeedback,
)
from nengo_fa.feedback import (
    SimAlignmentDiagnostics,
    SimAlignmentTerms,
    SimForwardMatrix,
    SimKolenPollack,
)
from nengo_fa.learning_rules import HiddenLayerRule

#: Operator types that this module builds in TensorFlow.
SUPPORTED_OPERATORS = (
    SimHiddenLayerRule,
    SimHiddenLayerEncoderUpdate,
    SimChainedError,
    SimSignFeedback,
    SimHiddenLayerWeights,
    SimForwardMatrix,
    SimKolenPollack,
    SimAlignmentTerms,
    SimAlignmentDiagnostics,
)

# op -> (neuron type, user derivative or None), filled in by mark_learned_signals
# before NengoDL plans the operators (weak keys: a model can be discarded)
_OP_INFO = weakref.WeakKeyDictionary()


# --- Neuron derivatives in TensorFlow -------------------------------------------


def derivative_family(neuron_type, derivative=None):
    """The TensorFlow derivative for a neuron type: ``(family, params)``.

    Mirrors the lookup of `nengo_fa.neurons.make_derivative` (the registry,
    through the type's method resolution order), so that NengoDL uses exactly
    the derivative the reference simulator uses.

    Parameters
    ----------
    neuron_type : NeuronType
        The ensemble's neuron type.
    derivative : callable, optional
        The rule's user-supplied derivative, which cannot run in TensorFlow.

    Returns
    -------
    family : str
        One of ``"relu"``, ``"logistic"`` (`nengo.Sigmoid` and `nengo.Tanh`)
        and ``"lif"``.
    params : dict
        Scalar parameters of the family for this neuron type.

    Raises
    ------
    nengo.exceptions.BuildError
        For a user derivative and for neuron types whose derivative is Python
        code (tabulated, or registered by the user).
    """
    name = type(neuron_type).__name__
    if derivative is not None:
        raise BuildError(
            f"A nengo_fa rule on {name} neurons has a user 'derivative' function "
            f"({derivative!r}); NengoDL cannot run Python derivatives. Leave "
            "'derivative' unset to use the built-in derivative of a supported "
            "neuron type."
        )
    factory = None
    for cls in type(neuron_type).__mro__:
        if cls in fa_neurons._DERIVATIVES:
            factory = fa_neurons._DERIVATIVES[cls]
            break

    if factory is fa_neurons._rectified_linear_derivative:
        return "relu", {"scale": neuron_type.amplitude}
    if factory is fa_neurons._sigmoid_derivative:
        # tau_ref^-1 e / (1 + e)^2, e = exp(-|J|)
        return "logistic", {"scale": 1.0 / neuron_type.tau_ref, "slope": 1.0}
    if factory is fa_neurons._tanh_derivative:
        # 4 tau_ref^-1 e / (1 + e)^2, e = exp(-2 |J|)
        return "logistic", {"scale": 4.0 / neuron_type.tau_ref, "slope": 2.0}
    lif_sigma = None
    if factory is fa_neurons._lif_derivative:
        lif_sigma = fa_neurons.LIF_SIGMA
    elif factory is getattr(fa_neurons, "_soft_lif_rate_derivative", None):
        lif_sigma = neuron_type.sigma
    if lif_sigma is not None:
        fa_neurons._check_lif_params(
            neuron_type.tau_rc, neuron_type.tau_ref, neuron_type.amplitude, lif_sigma
        )
        return "lif", {
            "scale": neuron_type.amplitude * neuron_type.tau_rc,
            "tau_rc": neuron_type.tau_rc,
            "tau_ref": neuron_type.tau_ref,
            "sigma": lif_sigma,
        }
    if factory is fa_neurons._rates_to_spikes_derivative:
        family, params = derivative_family(neuron_type.base_type)
        params = dict(params, scale=params["scale"] * neuron_type.amplitude)
        return family, params

    raise BuildError(
        f"nengo_fa's NengoDL builder has no TensorFlow derivative for neuron type "
        f"'{name}' (the reference simulator uses a tabulated or user-registered "
        "Python derivative for it). Supported: RectifiedLinear, "
        "SpikingRectifiedLinear, Sigmoid, Tanh, LIF, LIFRate, AdaptiveLIF, "
        "AdaptiveLIFRate, nengo_extras' SoftLIFRate, and RegularSpiking, "
        "PoissonSpiking or StochasticSpiking around one of these."
    )


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
    y_tail = fa_neurons._LIF_TAIL - tf.maximum(log_sigma, 0.0)
    clip = tf.constant(min(fa_neurons._J_CLIP, dtype.max), dtype=dtype)
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


_FAMILIES = {"relu": _relu, "logistic": _logistic, "lif": _lif}


# --- Marking the signals our rules learn ------------------------------------------


def _is_nengo_fa_op(op):
    return type(op).__module__.split(".")[0] == "nengo_fa"


def mark_learned_signals(tensor_graph):
    """Mark the signals nengo_fa learns like those of NengoDL's own rules.

    Called after NengoDL's ``TensorGraph.mark_signals``. A base signal that a
    nengo_fa operator writes, directly or through a ``Copy`` of one of its
    outputs, and that NengoDL marked as a non-minibatched parameter (an
    ensemble's bias), becomes non-trainable and minibatched, as NengoDL does
    for the encoders and weights targeted by its own learning rules. Otherwise
    the minibatched update could not be added to it, and the learned value
    would be dropped at the end of each ``run``. A warning is raised if such a
    signal was explicitly configured as trainable.

    Also records, for each nengo_fa operator, the neuron type of the ensemble
    it trains (the operators only hold a Python derivative function).
    """
    model = tensor_graph.model
    fa_ops = [op for op in model.operators if _is_nengo_fa_op(op)]
    if not fa_ops:
        return

    outputs = {sig for op in fa_ops for sig in op.sets + op.incs + op.updates}
    targets = set(outputs)
    for op in model.operators:
        if isinstance(op, Copy) and op.src in outputs:
            targets.add(op.dst)
    bases = {sig.base for sig in targets}
    for base in bases:
        if getattr(base, "minibatched", True):
            continue
        if base.trainable is True:
            # mirrors NengoDL's warning for its own rules
            warnings.warn(
                f"{base} is learned by a nengo_fa rule and is also set to be "
                "trainable; this is likely to produce strange training behaviour."
            )
        else:
            base.trainable = False
        base.minibatched = True
    # views took their marks from their bases; bring them in line
    for op in model.operators:
        for sig in op.all_signals:
            if sig.base in bases and sig is not sig.base:
                sig.trainable = sig.base.trainable
                sig.minibatched = sig.base.minibatched

    # neuron type (and user derivative) of each rule, found through the error
    # signal that the rule's build function made (model.sig[rule]["in"])
    rule_of_error = {}
    for obj, sigs in model.sig.items():
        if isinstance(obj, LearningRule) and isinstance(
            obj.learning_rule_type, HiddenLayerRule
        ):
            rule_of_error[sigs["in"]] = obj
    for op in fa_ops:
        if isinstance(op, (SimHiddenLayerRule, SimAlignmentDiagnostics)):
            rule = rule_of_error.get(op.error)
            if rule is None:
                raise BuildError(f"{op}: cannot find the rule this operator belongs to")
            ens = rule.connection.post_obj
            ens = getattr(ens, "ensemble", ens)  # modifies="weights": Neurons
            assert isinstance(ens, Ensemble)
            _OP_INFO[op] = (ens.neuron_type, rule.learning_rule_type.derivative)


def _patch_tensor_graph():
    """Run `mark_learned_signals` after ``TensorGraph.mark_signals``."""
    original = TensorGraph.mark_signals
    if getattr(original, "_nengo_fa", False):
        return

    def mark_signals(self):
        original(self)
        mark_learned_signals(self)

    mark_signals._nengo_fa = True
    mark_signals.__doc__ = original.__doc__
    TensorGraph.mark_signals = mark_signals


_patch_tensor_graph()

# NengoDL's remove_reset_incs simplification warns about incrementing operators
# it does not know; ours need no simplification (they never follow a Reset)
warnings.filterwarnings(
    "ignore", message=r"Unknown incer type <class 'nengo_fa\.", category=UserWarning
)


# --- SimHiddenLayerRule --------------------------------------------------------------


def _op_family(op):
    if op not in _OP_INFO:
        raise BuildError(
            f"{op}: nengo_fa.dl did not see this operator's model being marked; "
            "build it with nengo_dl.Simulator"
        )
    return derivative_family(*_OP_INFO[op])


def _with_batch(tensor, tensor_signal):
    """Give a non-minibatched tensor a leading axis of size 1, to broadcast."""
    return tensor if tensor_signal.minibatched else tensor[None]


def _scatter(signals, dst, value, mode="update"):
    """``signals.scatter``, broadcasting ``value`` to ``dst``'s full shape."""
    # targets are never reshaped views (NengoDL's scatter indexes the base
    # array's first axis), so bring the value to the target's own shape
    if dst.minibatched:
        value = tf.broadcast_to(value, (dst.minibatch_size,) + tuple(value.shape[1:]))
    signals.scatter(dst, tf.reshape(value, dst.full_shape), mode=mode)


def _repeat_per_neuron(tensor, sizes):
    """Repeat per-op rows (axis 1) for each of the op's ``sizes`` neurons."""
    if len(sizes) == 1:
        return tensor  # broadcasts
    return tf.repeat(tensor, sizes, axis=1)


@Builder.register(SimHiddenLayerRule)
class SimHiddenLayerRuleBuilder(OpBuilder):
    """Build a group of `.SimHiddenLayerRule` operators in TensorFlow.

    Computes what `.SimHiddenLayerRule.make_step` computes, for all the
    operators of the group at once, with the neurons of all the ensembles
    concatenated (``N`` neurons in all):

    .. math::

       \\delta &= (F e) \\odot G'(J), \\quad
       u = \\Delta t \\, \\hat g \\, \\delta / (\\nu \\bar{G'}) \\\\
       \\Delta b &= -\\kappa_b u, \\quad
       \\Delta g = g' - g, \\quad
       \\Delta S = (\\alpha - 1) S + \\alpha \\beta x^T

    (see `.SimHiddenLayerRule` for :math:`\\beta, g'` and
    :math:`\\alpha = g' / m`). Per-operator
    constants (radius, rates, scales, derivative parameters) become per-neuron
    vectors, so operators with different constants merge.
    """

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        dtype = signals.dtype
        self.sizes = [op.scaled_encoders.shape[0] for op in ops]
        n_total = sum(self.sizes)
        d = ops[0].scaled_encoders.shape[1]
        d_out = ops[0].error.shape[0]
        self.transpose = ops[0].transpose_feedback

        self.error_data = signals.combine([op.error for op in ops])
        self.error_data = self.error_data.reshape((len(ops), d_out))
        self.x_data = signals.combine([op.x for op in ops]).reshape((len(ops), d))
        self.current_data = signals.combine([op.current for op in ops])
        self.encoder_data = signals.combine([op.scaled_encoders for op in ops])
        self.gain_data = signals.combine([op.gain for op in ops])
        self.delta_data = signals.combine([op.delta for op in ops])
        self.gain_delta_data = signals.combine([op.gain_delta for op in ops])
        self.bias_delta_data = signals.combine([op.bias_delta for op in ops])
        self.factored = ops[0].encoders_factors is not None
        if self.factored:
            # (alpha, beta, x) for SimHiddenLayerEncoderUpdate
            self.factor_data = [
                signals.combine([op.encoders_factors[i] for op in ops])
                for i in range(3)
            ]
        else:
            self.encoders_delta_data = signals.combine(
                [op.encoders_delta for op in ops]
            )

        def per_neuron(values):
            v = np.concatenate(
                [np.full(n, value, dtype=float) for n, value in zip(self.sizes, values)]
            )
            return tf.constant(v, dtype=dtype)

        # feedback rows F_i (N, d_out): constant when every op's F is read-only
        self.feedback_constant = None
        self.nu = None
        if not self.transpose and ops[0].feedback.readonly:
            # fixed F (as in make_step): a constant, and its RMS row norm nu
            # computed once
            F = np.concatenate([op.feedback.initial_value for op in ops], axis=0)
            self.feedback_constant = tf.constant(F, dtype=dtype)
            self.nu = per_neuron(
                [
                    np.sqrt(np.sum(np.square(op.feedback.initial_value)) / n)
                    for op, n in zip(ops, self.sizes)
                ]
            )
        else:
            self.feedback_data = signals.combine([op.feedback for op in ops])

        radius = [op.radius for op in ops]
        self.radius = per_neuron(radius)
        self.base_scale = per_neuron(
            [signals.dt_val * op.gain_scale / op.derivative_scale for op in ops]
        )
        self.min_gain = per_neuron([MIN_GAIN_FRACTION * op.gain_scale for op in ops])
        self.kb = per_neuron([op.bias_learning_rate for op in ops])
        self.kg = per_neuron([op.gain_learning_rate for op in ops])
        self.kE_r2 = per_neuron([op.learning_rate / op.radius**2 for op in ops])
        self.kg_kE = per_neuron(
            [
                op.gain_learning_rate / op.learning_rate if op.learning_rate > 0 else 0
                for op in ops
            ]
        )
        self.learns_encoders = tf.constant(
            np.concatenate(
                [
                    np.full(n, op.learning_rate > 0 or op.gain_learning_rate > 0)
                    for n, op in zip(self.sizes, ops)
                ]
            )
        )
        self.learns_directions = tf.constant(
            np.concatenate(
                [np.full(n, op.learning_rate > 0) for n, op in zip(self.sizes, ops)]
            )
        )

        families = [_op_family(op) for op in ops]
        family = families[0][0]
        assert all(f == family for f, _ in families)  # see mergeable
        self.derivative = _FAMILIES[family]
        self.derivative_params = {
            key: per_neuron([params[key] for _, params in families])
            for key in families[0][1]
        }
        self.n_total = n_total

    def build_step(self, signals):
        error = _with_batch(signals.gather(self.error_data), self.error_data)
        error = tf.debugging.check_numerics(
            error,
            "nengo_fa: the error of a FeedbackAlignment/BackProp rule contains NaN "
            "or inf; stopping before it reaches the encoders, gains and biases",
        )
        x_ops = _with_batch(signals.gather(self.x_data), self.x_data)  # (B, K, d)
        J = _with_batch(signals.gather(self.current_data), self.current_data)
        S = _with_batch(signals.gather(self.encoder_data), self.encoder_data)
        gain = _with_batch(signals.gather(self.gain_data), self.gain_data)

        # F e, per neuron, and the RMS row norm nu of each op's F
        e = _repeat_per_neuron(error, self.sizes)  # (B, N or 1, d_out)
        if self.feedback_constant is not None:
            fe = tf.reduce_sum(self.feedback_constant * e, axis=-1)
            nu = self.nu
        else:
            F = _with_batch(signals.gather(self.feedback_data), self.feedback_data)
            if self.transpose:
                # F^T of each op is (d_out, n), with the same n and d_out in a group
                n = self.sizes[0]
                d_out = self.ops[0].error.shape[0]
                F = tf.reshape(F, (-1, len(self.ops), d_out, n))
                F = tf.reshape(tf.transpose(F, (0, 1, 3, 2)), (-1, self.n_total, d_out))
            fe = tf.reduce_sum(F * e, axis=-1)
            # live feedback: the RMS row norm of each op's F, every step
            sq = tf.reduce_sum(tf.square(F), axis=-1)  # (B, N)
            sq = tf.math.segment_sum(
                tf.transpose(sq), np.repeat(np.arange(len(self.sizes)), self.sizes)
            )  # (K, B)
            sizes = np.asarray(self.sizes, dtype=sq.dtype.as_numpy_dtype)
            nu = tf.repeat(tf.sqrt(tf.transpose(sq) / sizes), self.sizes, axis=1)

        delta = self.derivative(J, **self.derivative_params) * fe
        # u = delta * base_scale / nu, and 0 (so no update at all) where nu == 0
        has_feedback = nu > 0
        safe_nu = tf.where(has_feedback, nu, tf.ones_like(nu))
        u = tf.where(
            has_feedback, delta * (self.base_scale / safe_nu), tf.zeros_like(delta)
        )
        bias_delta = u * -self.kb

        # the update of SimHiddenLayerRule.make_step: a bounded gradient step
        # beta x on S, then the rows rescaled to the gains g'
        x = _repeat_per_neuron(x_ops, self.sizes)  # (B, N or 1, d)
        sx = tf.reduce_sum(S * x, axis=-1)
        xx = tf.reduce_sum(tf.square(x), axis=-1)
        has_x = xx > 0
        g_floor = tf.maximum(gain, self.min_gain)

        beta = u * -self.kE_r2
        # |beta| |x| <= max(g, g_min) / (2 r)
        b_max = (
            g_floor
            / (2.0 * self.radius)
            * tf.math.rsqrt(tf.where(has_x, xx, tf.ones_like(xx)))
        )
        beta = tf.where(has_x, tf.clip_by_value(beta, -b_max, b_max), 0.0 * beta)
        # t = m^2 - g^2, and dg_E = m - g = t / (m + g) without cancellation
        t = tf.square(self.radius) * beta * (2.0 * sx + beta * xx)
        m = tf.sqrt(tf.maximum(tf.square(gain) + t, 0.0))
        m_g = m + gain
        dg_E = tf.where(m_g > 0, t / tf.where(m_g > 0, m_g, tf.ones_like(m_g)), 0.0 * t)
        # with directions fixed (kE = 0): dg = -kg u (S x) / g
        dg = tf.where(
            self.learns_directions,
            dg_E * self.kg_kE,
            u * sx * -self.kg / g_floor,
        )
        g_new = tf.maximum(gain + dg, self.min_gain)
        m = gain + dg_E  # the gain of S + beta x
        # no update at all without feedback, input or encoder learning
        ok = (m > 0) & has_feedback & has_x & self.learns_encoders
        alpha = tf.where(ok, g_new / tf.where(ok, m, tf.ones_like(m)), tf.ones_like(m))
        gain_delta = tf.where(ok, g_new - gain, 0.0 * gain)
        beta = alpha * beta

        _scatter(signals, self.delta_data, delta)
        _scatter(signals, self.bias_delta_data, bias_delta)
        _scatter(signals, self.gain_delta_data, gain_delta)
        if self.factored:
            _scatter(signals, self.factor_data[0], alpha)
            _scatter(signals, self.factor_data[1], beta)
            _scatter(signals, self.factor_data[2], x_ops)
        else:
            encoders_delta = beta[..., None] * x + (alpha - 1.0)[..., None] * S
            _scatter(signals, self.encoders_delta_data, encoders_delta)

    @staticmethod
    def mergeable(x, y):
        # the generic checks already ensure the same d (encoder columns) and,
        # for fixed feedback, the same error size; F^T needs the same n too
        if (
            x.transpose_feedback != y.transpose_feedback
            or x.feedback.readonly != y.feedback.readonly
            or (x.encoders_factors is None) != (y.encoders_factors is None)
        ):
            return False
        if x.error.shape != y.error.shape:
            return False
        if x.transpose_feedback and x.scaled_encoders.shape != y.scaled_encoders.shape:
            return False
        try:
            return _op_family(x)[0] == _op_family(y)[0]
        except BuildError:
            return False  # raised again, clearly, in build_pre


# --- Operators with one shape per group: stacked along a new axis ----------------


def _same_shapes(x, y):
    return all(a.shape == b.shape for a, b in zip(x.all_signals, y.all_signals))


class _StackedBuilder(OpBuilder):
    """Merges operators whose signals all have the same shapes.

    ``self.stack(signals, getter)`` combines one signal of every op into a
    ``(K, ...)`` view (``K`` operators); gathered, it is ``(B, K, ...)``.
    """

    def stack(self, signals, getter, output=False):
        sigs = [getter(op) for op in self.ops]
        data = signals.combine(sigs)
        # an output stays a plain concatenation: see _scatter
        return data if output else data.reshape((len(sigs),) + sigs[0].shape)

    def per_op(self, values, dtype, ndim):
        """Per-op constants as a ``(1, K, ...)`` tensor (``ndim`` trailing axes)."""
        values = [np.asarray(v, dtype=float) for v in values]
        shape = np.broadcast_shapes(*(v.shape for v in values))
        v = np.stack([np.broadcast_to(v, shape) for v in values])
        v = v.reshape(v.shape + (1,) * (ndim - v.ndim + 1))
        return tf.constant(v[None], dtype=dtype)

    @staticmethod
    def gather(signals, data):
        return _with_batch(signals.gather(data), data)

    @staticmethod
    def mergeable(x, y):
        return _same_shapes(x, y)


def _rms(F, n):
    """``_rms_row_norm``: ``||F||_F / sqrt(n)`` over the trailing two axes."""
    return tf.sqrt(tf.reduce_sum(tf.square(F), axis=(-2, -1)) / n)


@Builder.register(SimHiddenLayerEncoderUpdate)
class SimHiddenLayerEncoderUpdateBuilder(OpBuilder):
    r"""Build a group of `.SimHiddenLayerEncoderUpdate` operators.

    :math:`S \leftarrow \mathrm{diag}(\alpha) S + \beta x^T`, written as a
    new value of :math:`S` (the builder guarantees that no other operator
    changes :math:`S` in the same step); then, for operators that took over
    the ensemble's encoding, :math:`J \mathrel{+}= S x`.
    """

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        self.sizes = [op.scaled_encoders.shape[0] for op in ops]
        d = ops[0].scaled_encoders.shape[1]
        self.encoder_data = signals.combine([op.scaled_encoders for op in ops])
        self.alpha_data = signals.combine([op.alpha for op in ops])
        self.beta_data = signals.combine([op.beta for op in ops])
        self.x_data = signals.combine([op.x for op in ops]).reshape((len(ops), d))
        self.encodes = ops[0].encode is not None
        if self.encodes:
            # J += S x_new, the ensemble encoding the operator took over
            self.x_new_data = signals.combine([op.encode[0] for op in ops])
            self.x_new_data = self.x_new_data.reshape((len(ops), d))
            self.current_data = signals.combine([op.encode[1] for op in ops])

    def build_step(self, signals):
        S = _with_batch(signals.gather(self.encoder_data), self.encoder_data)
        alpha = _with_batch(signals.gather(self.alpha_data), self.alpha_data)
        beta = _with_batch(signals.gather(self.beta_data), self.beta_data)
        x = _with_batch(signals.gather(self.x_data), self.x_data)
        x = _repeat_per_neuron(x, self.sizes)
        S = alpha[..., None] * S + beta[..., None] * x
        _scatter(signals, self.encoder_data, S)
        if self.encodes:
            x_new = _with_batch(signals.gather(self.x_new_data), self.x_new_data)
            encoded = tf.reduce_sum(S * _repeat_per_neuron(x_new, self.sizes), axis=-1)
            _scatter(signals, self.current_data, encoded, mode="inc")

    @staticmethod
    def mergeable(x, y):
        # the generic checks ensure the same d
        return (x.encode is None) == (y.encode is None)


@Builder.register(SimChainedError)
class SimChainedErrorBuilder(_StackedBuilder):
    r"""Build a group of `.SimChainedError` operators.

    :math:`e_l = M^T \delta_{l+1} / (\nu_{l+1} \bar{G'}_{l+1})`, and 0
    while :math:`\nu_{l+1} = 0`.
    """

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        dtype = signals.dtype
        self.n = ops[0].delta.shape[0]
        self.delta_data = self.stack(signals, lambda op: op.delta)
        self.feedback_data = self.stack(signals, lambda op: op.feedback)
        self.error_data = self.stack(signals, lambda op: op.error, output=True)
        self.has_encoders = ops[0].encoders is not None
        if self.has_encoders:
            self.encoder_data = self.stack(signals, lambda op: op.encoders)
        self.scale = self.per_op([op.scale for op in ops], dtype, 1)  # (1, K, n)
        self.inv_gbar = self.per_op(
            [1.0 / op.derivative_scale for op in ops], dtype, 0
        )  # (1, K)

    def build_step(self, signals):
        delta = self.gather(signals, self.delta_data)  # (B, K, n)
        nu = _rms(self.gather(signals, self.feedback_data), self.n)  # (B, K)
        has_feedback = nu > 0
        coef = tf.where(
            has_feedback,
            self.inv_gbar / tf.where(has_feedback, nu, tf.ones_like(nu)),
            tf.zeros_like(nu),
        )
        e = delta * self.scale * coef[..., None]
        if self.has_encoders:
            S = self.gather(signals, self.encoder_data)  # (B, K, n, d)
            e = tf.reduce_sum(e[..., None] * S, axis=-2)
        _scatter(signals, self.error_data, e)

    @staticmethod
    def mergeable(x, y):
        return _same_shapes(x, y) and np.shape(x.scale) == np.shape(y.scale)


@Builder.register(SimSignFeedback)
class SimSignFeedbackBuilder(_StackedBuilder):
    r"""Build a group of `.SimSignFeedback` operators:
    :math:`F = \sqrt{\mathrm{mean}(W^2)} \, \mathrm{sign}(W)`."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        self.weights_data = self.stack(signals, lambda op: op.weights)
        self.feedback_data = self.stack(signals, lambda op: op.feedback, output=True)
        self.size = int(np.prod(self.ops[0].weights.shape))

    def build_step(self, signals):
        W = self.gather(signals, self.weights_data)  # (B, K, d_out, n)
        rho = _rms(W, self.size)
        _scatter(signals, self.feedback_data, tf.sign(W) * rho[..., None, None])


@Builder.register(SimHiddenLayerWeights)
class SimHiddenLayerWeightsBuilder(_StackedBuilder):
    r"""Build a group of `.SimHiddenLayerWeights` operators:
    :math:`\Delta W = -\kappa \Delta t \, \mathrm{diag}(s) \delta
    a_{pre}^T / \nu`, and 0 while :math:`\nu = 0`."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        self.n = ops[0].delta.shape[0]
        self.delta_data = self.stack(signals, lambda op: op.delta)
        self.feedback_data = self.stack(signals, lambda op: op.feedback)
        self.pre_data = self.stack(signals, lambda op: op.pre_activities)
        self.output_data = self.stack(signals, lambda op: op.weights_delta, output=True)
        self.coef = self.per_op(
            [
                -op.learning_rate * signals.dt_val * np.asarray(op.row_scale, float)
                for op in ops
            ],
            signals.dtype,
            1,
        )  # (1, K, n)
        # as make_step: a fixed feedback's norm is computed once, at build time
        self.fixed_nu = None
        if ops[0].fixed_feedback:
            self.fixed_nu = self.per_op(
                [
                    np.sqrt(np.sum(np.square(op.feedback.initial_value)) / self.n)
                    for op in ops
                ],
                signals.dtype,
                0,
            )  # (1, K)

    def build_step(self, signals):
        delta = self.gather(signals, self.delta_data)  # (B, K, n)
        pre = self.gather(signals, self.pre_data)  # (B, K, n_pre)
        if self.fixed_nu is None:
            nu = _rms(self.gather(signals, self.feedback_data), self.n)  # (B, K)
        else:
            nu = self.fixed_nu
        has_feedback = nu > 0
        inv_nu = tf.where(
            has_feedback,
            1.0 / tf.where(has_feedback, nu, tf.ones_like(nu)),
            tf.zeros_like(nu),
        )
        u = delta * self.coef * inv_nu[..., None]
        _scatter(signals, self.output_data, u[..., :, None] * pre[..., None, :])

    @staticmethod
    def mergeable(x, y):
        return (
            _same_shapes(x, y)
            and np.shape(x.row_scale) == np.shape(y.row_scale)
            and x.fixed_feedback == y.fixed_feedback
        )


# --- Learned feedback and alignment diagnostics (nengo_fa.feedback) ---------------


@Builder.register(SimForwardMatrix)
class SimForwardMatrixBuilder(_StackedBuilder):
    r"""Build a group of `.SimForwardMatrix` operators:
    :math:`M = S_{l+1} W_l` or :math:`M = \mathrm{diag}(c) W_l`."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        self.weights_data = self.stack(signals, lambda op: op.weights)
        self.matrix_data = self.stack(signals, lambda op: op.matrix, output=True)
        self.has_encoders = ops[0].encoders is not None
        if self.has_encoders:
            self.encoder_data = self.stack(signals, lambda op: op.encoders)
        else:
            self.row_gain = self.per_op([op.row_gain for op in ops], signals.dtype, 2)

    def build_step(self, signals):
        W = self.gather(signals, self.weights_data)
        if self.has_encoders:
            S = self.gather(signals, self.encoder_data)
            M = tf.matmul(S, W)
        else:
            M = self.row_gain * W
        _scatter(signals, self.matrix_data, M)

    @staticmethod
    def mergeable(x, y):
        return _same_shapes(x, y) and (x.encoders is None) == (y.encoders is None)


@Builder.register(SimKolenPollack)
class SimKolenPollackBuilder(_StackedBuilder):
    r"""Build a group of `.SimKolenPollack` operators:
    :math:`B \leftarrow (1 - \lambda \Delta t) B + (W_t - W_{t-1})^T`."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        self.weights_data = self.stack(signals, lambda op: op.weights)
        self.feedback_in = self.stack(signals, lambda op: op.feedback)
        self.feedback_out = self.stack(signals, lambda op: op.feedback, output=True)
        self.previous_in = self.stack(signals, lambda op: op.previous)
        self.previous_out = self.stack(signals, lambda op: op.previous, output=True)
        self.keep = self.per_op(
            [1.0 - op.decay * signals.dt_val for op in ops], signals.dtype, 2
        )

    def build_step(self, signals):
        W = self.gather(signals, self.weights_data)  # (B, K, d_out, n)
        W_prev = self.gather(signals, self.previous_in)
        B = self.gather(signals, self.feedback_in)  # (B, K, n, d_out)
        B = B * self.keep + tf.linalg.matrix_transpose(W - W_prev)
        _scatter(signals, self.feedback_out, B)
        _scatter(signals, self.previous_out, W)


@Builder.register(SimAlignmentTerms)
class SimAlignmentTermsBuilder(_StackedBuilder):
    r"""Build a group of `.SimAlignmentTerms` operators (see there for
    :math:`\Delta B`; the activity terms vanish while :math:`a = 0`)."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        dtype = signals.dtype
        self.weights_data = self.stack(signals, lambda op: op.weights)
        self.feedback_in = self.stack(signals, lambda op: op.feedback)
        self.feedback_out = self.stack(signals, lambda op: op.feedback, output=True)
        self.use_activities = ops[0].activities is not None and any(
            op.terms.uses_activities for op in ops
        )
        if self.use_activities:
            self.activity_data = self.stack(signals, lambda op: op.activities)

        def per_op(attr):
            return self.per_op([getattr(op.terms, attr) for op in ops], dtype, 2)

        self.decay, self.self_ = per_op("decay"), per_op("self_")
        self.amp, self.sparse = per_op("amp"), per_op("sparse")
        self.null = per_op("null")
        self.rate = self.per_op(
            [-op.terms.learning_rate * signals.dt_val for op in ops], dtype, 2
        )

    def build_step(self, signals):
        W = self.gather(signals, self.weights_data)  # (B, K, d_out, n)
        B = self.gather(signals, self.feedback_in)  # (B, K, n, d_out)
        grad = B * self.decay - self.self_ * tf.linalg.matrix_transpose(W)
        if self.use_activities:
            a = self.gather(signals, self.activity_data)  # (B, K, n)
            norm = tf.sqrt(tf.reduce_sum(tf.square(a), axis=-1, keepdims=True))
            active = norm > 0
            x = tf.where(
                active, a / tf.where(active, norm, tf.ones_like(norm)), 0.0 * a
            )
            Wx = tf.reduce_sum(W * x[..., None, :], axis=-1)  # (B, K, d_out)
            xB = tf.reduce_sum(x[..., None] * B, axis=-2)  # (B, K, d_out)
            BWx = tf.reduce_sum(B * Wx[..., None, :], axis=-1)  # (B, K, n)
            grad += -self.amp * (x[..., None] * Wx[..., None, :])
            grad += self.sparse * (x[..., None] * xB[..., None, :])
            grad += self.null * (BWx[..., None] * Wx[..., None, :])
        _scatter(signals, self.feedback_out, B + grad * self.rate)

    @staticmethod
    def mergeable(x, y):
        return _same_shapes(x, y) and (x.activities is None) == (y.activities is None)


def _angle(dot, norm_a, norm_b):
    """`nengo_fa.feedback._angle`: degrees, NaN where a norm is 0."""
    valid = (norm_a > 0) & (norm_b > 0)
    denom = tf.where(valid, norm_a * norm_b, tf.ones_like(norm_a))
    cos = tf.clip_by_value(dot / denom, -1.0, 1.0)
    degrees = tf.math.acos(cos) * (180.0 / np.pi)
    return tf.where(valid, degrees, np.nan * tf.ones_like(degrees))


@Builder.register(SimAlignmentDiagnostics)
class SimAlignmentDiagnosticsBuilder(_StackedBuilder):
    """Build a group of `.SimAlignmentDiagnostics` operators."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        self.error_data = self.stack(signals, lambda op: op.error)
        self.feedback_data = self.stack(signals, lambda op: op.feedback)
        self.weights_data = self.stack(signals, lambda op: op.weights)
        self.current_data = self.stack(signals, lambda op: op.current)
        self.outputs = [
            self.stack(signals, lambda op, i=i: op.updates[i], output=True)
            for i in range(3)
        ]
        families = [_op_family(op) for op in ops]
        self.derivative = _FAMILIES[families[0][0]]
        self.derivative_params = {
            key: self.per_op([params[key] for _, params in families], signals.dtype, 0)
            for key in families[0][1]
        }

    def build_step(self, signals):
        e = self.gather(signals, self.error_data)  # (B, K, d_out)
        B = self.gather(signals, self.feedback_data)  # (B, K, n, d_out)
        W = self.gather(signals, self.weights_data)  # (B, K, d_out, n)
        J = self.gather(signals, self.current_data)  # (B, K, n)
        Wt = tf.linalg.matrix_transpose(W)
        b_norm = tf.sqrt(tf.reduce_sum(tf.square(B), axis=(-2, -1)))
        w_norm = tf.sqrt(tf.reduce_sum(tf.square(W), axis=(-2, -1)))
        has_w = w_norm > 0
        ratio = tf.where(
            has_w,
            b_norm / tf.where(has_w, w_norm, tf.ones_like(w_norm)),
            np.nan * tf.ones_like(w_norm),
        )
        feedback_angle = _angle(tf.reduce_sum(B * Wt, axis=(-2, -1)), b_norm, w_norm)
        gp = self.derivative(
            J, **{k: v[..., None] for k, v in self.derivative_params.items()}
        )
        u = tf.reduce_sum(B * e[..., None, :], axis=-1) * gp
        v = tf.reduce_sum(Wt * e[..., None, :], axis=-1) * gp
        delta_angle = _angle(
            tf.reduce_sum(u * v, axis=-1),
            tf.sqrt(tf.reduce_sum(tf.square(u), axis=-1)),
            tf.sqrt(tf.reduce_sum(tf.square(v), axis=-1)),
        )
        for data, value in zip(self.outputs, (delta_angle, feedback_angle, ratio)):
            _scatter(signals, data, value)

    @staticmethod
    def mergeable(x, y):
        if not _same_shapes(x, y):
            return False
        try:
            return _op_family(x)[0] == _op_family(y)[0]
        except BuildError:
            return False


__all__ = [
    "SUPPORTED_OPERATORS",
    "SimAlignmentDiagnosticsBuilder",
    "SimAlignmentTermsBuilder",
    "SimChainedErrorBuilder",
    "SimForwardMatrixBuilder",
    "SimKolenPollackBuilder",
    "SimHiddenLayerEncoderUpdateBuilder",
    "SimHiddenLayerRuleBuilder",
    "SimHiddenLayerWeightsBuilder",
    "SimSignFeedbackBuilder",
    "derivative_family",
    "mark_learned_signals",
    "nengo_dl",
]
