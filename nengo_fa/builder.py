"""Build functions and operators for the reference simulator.

Everything here is registered with `nengo.builder.Builder` when `nengo_fa` is
imported. Only nengo_fa's own types are registered, so models that do not use
nengo_fa build exactly as before.
"""

import collections
import math
import weakref

import numpy as np
from nengo.builder import Builder, Operator, Signal
from nengo.builder.connection import slice_signal
from nengo.builder.ensemble import get_activities
from nengo.builder.learning_rules import build_or_passthrough
from nengo.builder.operator import Copy, DotInc, Reset
from nengo.ensemble import Ensemble, Neurons
from nengo.exceptions import BuildError, SimulationError
from nengo.neurons import Direct
from nengo.transforms import Dense, NoTransform
from scipy.linalg.blas import get_blas_funcs

from nengo_fa import _kernels
from nengo_fa._numerics import BLOCK, squared_norm
from nengo_fa.feedback import (
    AlignmentTerms,
    KolenPollack,
    SimAlignmentDiagnostics,
    SimAlignmentTerms,
    SimForwardMatrix,
    SimKolenPollack,
)
from nengo_fa.learning_rules import (
    BackProp,
    FeedbackAlignment,
    HiddenLayerRule,
    SignSymmetry,
    chained_rule,
)
from nengo_fa.neurons import make_derivative

#: Gains are kept at or above this fraction of the mean build-time gain.
MIN_GAIN_FRACTION = 1e-3

#: Apply encoder updates in place (`.SimHiddenLayerEncoderUpdate`), and read
#: :math:`S x` from the neurons' current, where that gives the same result as
#: Nengo's generic ``(n, d)`` delta plus ``Copy`` and :math:`S x` computed.
#: Private: the tests switch it off to compare against the straightforward path.
_FACTORED_ENCODER_UPDATE = True

#: Use the compiled loops of ``nengo_fa._kernels`` (numba) for the per-neuron
#: work of the in-place update, when numba is available. Private: the tests
#: switch it off to check the numpy code, which gives the same results.
_USE_KERNELS = True

#: Elements per BLAS ``ger`` call: below OpenBLAS's threshold for running it
#: multithreaded (9216 elements), which is slow on a busy machine.
_GER_BLOCK = BLOCK

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

    then the bias update :math:`\Delta b = -\kappa_b u` and the encoder and
    gain updates

    .. math::

       \beta_i &= -\kappa_E u_i / r^2 \\
       m_i &= r \, |S_i + \beta_i x| \\
       g_i' &= \max(g_i + (\kappa_g / \kappa_E)(m_i - g_i), g_{min}) \\
       S_i' &= (g_i' / m_i) (S_i + \beta_i x)

    (with :math:`\kappa_E = 0`: :math:`\beta = 0` and
    :math:`g_i' = \max(g_i - \kappa_g u_i p_i / r, g_{min})`), where
    :math:`p_i = E_i \cdot x` and :math:`g_{min}` is
    ``MIN_GAIN_FRACTION`` times :math:`\hat g`. Each step is bounded to
    :math:`|\beta_i| |x| \le \max(g_i, g_{min}) / (2 r)`, at most half the
    length of the encoder row. :math:`S_i \cdot x`, which :math:`m_i` needs,
    is :math:`J_i - b_i` when nothing but the encoders and the bias drives the
    neurons (``projection_from_current``, set by the builder), and is
    computed from :math:`S` otherwise.

    When :math:`\kappa_g = \kappa_E`, :math:`g_i' = m_i` and the scale
    :math:`g_i' / m_i` is exactly 1 for every neuron whose gain stays above
    :math:`g_{min}`: the update of :math:`S` is then a single rank-1 update,
    plain gradient descent on :math:`S`.

    With the in-place update (``encoders_factors``) and numba installed, the
    step runs as two compiled loops (``nengo_fa._kernels``): the checks,
    :math:`F e`, :math:`\nu` and, for rectified linear neurons,
    :math:`G'(J)`, then all the per-neuron work. Only :math:`G'(J)` of other
    neuron types, :math:`F e` for a learned feedback matrix that is not a
    transpose, and :math:`S x` when it cannot be read from the current stay
    numpy calls. Without numba, every part is a numpy call, with the same
    results up to rounding.

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
        on the next step by ``Copy(..., inc=True)``. ``encoders_delta`` is
        None when ``encoders_factors`` is given.
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
    encoders_factors : (Signal, Signal, Signal), optional
        Output, instead of ``encoders_delta``: the factors
        :math:`(\alpha, \beta', x)` of the encoder update, shapes ``(n,)``,
        ``(n,)`` and ``(d,)``, with :math:`\alpha_i = g_i' / m_i` and
        :math:`\beta'_i = \alpha_i \beta_i`, so that
        `.SimHiddenLayerEncoderUpdate` can apply
        :math:`S \leftarrow \mathrm{diag}(\alpha) S + \beta' x^T` in place on
        the next step, without an ``(n, d)`` temporary.
    bias : Signal, optional
        The neurons' bias :math:`b`, shape ``(n,)``: with
        ``projection_from_current``, :math:`S x = J - b`.

    Attributes
    ----------
    projection_from_current : bool
        Whether :math:`J = S x + b` exactly (no other input to the neurons),
        so that :math:`S x` is read from the current rather than recomputed.
        False unless the builder, having seen the whole model, sets it.

    Notes
    -----
    1. sets ``[]``
    2. incs ``[]``
    3. reads ``[error, feedback, current, x, scaled_encoders, gain]``, plus
       ``bias`` if given
    4. updates ``[delta, gain_delta, bias_delta, encoders_delta]``, or
       ``[delta, gain_delta, bias_delta, alpha, beta, x]`` with
       ``encoders_factors``
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
        encoders_factors=None,
        bias=None,
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
        self.projection_from_current = False

        self.sets = []
        self.incs = []
        self.reads = [error, feedback, current, x, scaled_encoders, gain]
        if bias is not None:
            self.reads.append(bias)
        self.factored = encoders_factors is not None
        if self.factored and encoders_delta is not None:
            raise ValueError("give either 'encoders_delta' or 'encoders_factors'")
        self.updates = [delta, gain_delta, bias_delta] + (
            list(encoders_factors) if self.factored else [encoders_delta]
        )

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
    def bias(self):
        return self.reads[6] if len(self.reads) > 6 else None

    @property
    def delta(self):
        return self.updates[0]

    @property
    def gain_delta(self):
        return self.updates[1]

    @property
    def bias_delta(self):
        return self.updates[2]

    @property
    def encoders_delta(self):
        return None if self.factored else self.updates[3]

    @property
    def encoders_factors(self):
        return tuple(self.updates[3:6]) if self.factored else None

    @property
    def _descstr(self):
        return f"error={self.error}, feedback={self.feedback} -> {self.delta}"

    def make_step(self, signals, dt, rng):  # noqa: C901
        error = signals[self.error]
        feedback = signals[self.feedback]
        current = signals[self.current]
        x = signals[self.x]
        S = signals[self.scaled_encoders]
        gain = signals[self.gain]
        delta = signals[self.delta]
        gain_delta = signals[self.gain_delta]
        bias_delta = signals[self.bias_delta]
        from_current = self.projection_from_current and self.bias is not None
        bias = signals[self.bias] if from_current else None
        n = S.shape[0]
        if self.factored:
            # the factors go straight to the signals that
            # SimHiddenLayerEncoderUpdate applies in place on the next step
            alpha, beta, x_out = (signals[s] for s in self.encoders_factors)
        else:
            encoders_delta = signals[self.encoders_delta]
            alpha, beta = np.ones(n), np.zeros(n)

        F = feedback.T if self.transpose_feedback else feedback
        r = self.radius
        kE = self.learning_rate
        kg = self.gain_learning_rate
        kb = self.bias_learning_rate
        learn_encoders = kE > 0 or kg > 0
        # g' = m when the rates are equal: no row scaling unless a gain floors
        same_rates = kE > 0 and kg == kE
        # with fixed feedback the RMS row norm never changes: compute it once
        fixed = not self.transpose_feedback and self.feedback.readonly
        fixed_nu = _rms_row_norm(feedback, n) if fixed else None
        # F e as e^T F^T, with F^T C-contiguous: several times faster than
        # F e for a thin F (measured 13 vs 37 us at n=5000, d_out=10)
        if self.transpose_feedback:
            FT = feedback
        elif fixed:
            FT = np.ascontiguousarray(feedback.T)
        else:
            FT = None
        min_reduce, max_reduce = np.minimum.reduce, np.maximum.reduce
        base_scale = dt * self.gain_scale / self.derivative_scale
        # a gain of 0 would lose the encoder's direction: keep gains positive
        min_gain = MIN_GAIN_FRACTION * self.gain_scale

        derivative = self.derivative
        # compiled loops do the whole step but for G'(J) of other than
        # rectified linear neurons and F e for a learned, untransposed F
        use_kernels = (
            self.factored and learn_encoders and _USE_KERNELS and _kernels.AVAILABLE
        )
        fe = np.empty(n)
        sx = np.empty(n)  # S x
        t = np.empty(n)
        m = np.empty(n)
        tmp = np.empty(n)
        # alpha holds ones except after a step that scaled rows
        scaled = [False]

        def check_error():
            # e . e is finite unless e holds NaN or inf (or is huge: then the
            # exact test decides)
            if not math.isfinite(np.dot(error, error)) and not np.all(
                np.isfinite(error)
            ):
                raise SimulationError(
                    f"{self.tag or 'nengo_fa rule'}: the error contains NaN or inf; "
                    "stopping before it reaches the encoders, gains and biases."
                )

        def no_encoder_update():
            if scaled[0]:
                alpha.fill(1.0)
                scaled[0] = False
            beta.fill(0.0)
            if not self.factored:
                encoders_delta[...] = 0

        def bound_steps(xx):
            # |beta_i| |x| <= max(g_i, g_min) / (2 r): a step never takes more
            # than half the length of a row, so S + beta x never comes near 0
            # (which would leave its direction to rounding)
            np.maximum(gain, min_gain, out=tmp)
            np.multiply(tmp, 0.5 / (r * np.sqrt(xx)), out=tmp)
            np.minimum(beta, tmp, out=beta)
            np.negative(tmp, out=tmp)
            np.maximum(beta, tmp, out=beta)

        def scale_rows(g_new, dg_E):
            # g' = max(g + dg, g_min), alpha = g' / m with m = g + dg_E the
            # gain that S + beta x has; a row with m = 0 has no direction and
            # stays as it is
            np.maximum(g_new, min_gain, out=g_new)
            np.add(gain, dg_E, out=m)
            ok = m > 0
            alpha.fill(1.0)
            np.divide(g_new, m, out=alpha, where=ok)
            np.subtract(g_new, gain, out=gain_delta)
            gain_delta[~ok] = 0.0
            np.multiply(beta, alpha, out=beta)
            scaled[0] = True

        def check_input(xx):
            if not math.isfinite(xx) and not np.all(np.isfinite(x)):
                raise SimulationError(
                    f"{self.tag or 'nengo_fa rule'}: the ensemble's input contains "
                    "NaN or inf; stopping before it reaches the encoders and gains."
                )

        def step_simhiddenlayerrule():
            check_error()
            nu = _rms_row_norm(feedback, n) if fixed_nu is None else fixed_nu
            if FT is None:
                np.dot(F, error, out=fe)
            else:
                np.dot(error, FT, out=fe)
            derivative(current, delta)
            np.multiply(delta, fe, out=delta)
            if nu == 0:
                # no feedback yet (e.g. a readout that starts at zero)
                gain_delta[...] = 0
                bias_delta[...] = 0
                if learn_encoders:
                    no_encoder_update()
                return
            # u = c delta is never formed: c is folded into the scalars below
            c = base_scale / nu
            np.multiply(delta, -kb * c, out=bias_delta)
            if not learn_encoders:
                return

            xx = float(np.dot(x, x))
            check_input(xx)
            if xx == 0:
                # nothing to learn from: p = 0 and beta x = 0
                gain_delta[...] = 0
                no_encoder_update()
                return
            if from_current:
                np.subtract(current, bias, out=sx)
            else:
                np.dot(S, x, out=sx)
            g_min = min_reduce(gain) if n > 0 else min_gain
            g_low = g_min < min_gain  # rare

            if kE > 0:
                # beta = -kE u / r^2, bounded
                np.multiply(delta, -kE * c / r**2, out=beta)
                b_max = max(max_reduce(beta), -min_reduce(beta)) if n > 0 else 0.0
                if 2 * r * np.sqrt(xx) * b_max > max(g_min, min_gain):
                    bound_steps(xx)
                # t = m^2 - g^2 = r^2 beta (2 S x + beta |x|^2), so that
                # dg_E = m - g = t / (m + g) without cancellation
                np.multiply(beta, xx, out=t)
                np.add(t, sx, out=t)
                np.add(t, sx, out=t)
                np.multiply(t, beta, out=t)
                if r != 1:
                    np.multiply(t, r * r, out=t)
                np.multiply(gain, gain, out=m)
                np.add(m, t, out=m)
                if g_low:
                    np.maximum(m, 0, out=m)  # m^2 >= 0, up to rounding
                np.sqrt(m, out=m)
                # g + dg_E = m up to rounding: the floor is checked on m
                m_min = min_reduce(m) if n > 0 else min_gain
                np.add(m, gain, out=m)
                dg_E = gain_delta if same_rates else t
                if g_low:
                    dg_E[...] = 0.0
                    np.divide(t, m, out=dg_E, where=m > 0)
                else:
                    np.divide(t, m, out=dg_E)
                if not same_rates:
                    np.multiply(dg_E, kg / kE, out=gain_delta)
            else:
                # directions fixed: dg = -kg u p / r = -kg c delta (S x) / g
                beta.fill(0.0)
                np.maximum(gain, min_gain, out=tmp)
                np.divide(sx, tmp, out=gain_delta)
                np.multiply(gain_delta, delta, out=gain_delta)
                np.multiply(gain_delta, -kg * c, out=gain_delta)
                dg_E = t
                dg_E.fill(0.0)

            # g' = g + dg; with equal rates, g' = m and alpha = g' / m = 1
            # unless a gain would fall below the floor
            if same_rates and not g_low and m_min >= min_gain * (1 + 1e-9):
                if scaled[0]:
                    alpha.fill(1.0)
                    scaled[0] = False
            else:
                np.add(gain, gain_delta, out=tmp)
                scale_rows(tmp, dg_E)

            if self.factored:
                x_out[...] = x
                return
            # the straightforward (n, d) delta, kept as the reference that the
            # factored path is tested against
            np.subtract(alpha, 1, out=tmp)
            np.multiply(beta[:, None], x, out=encoders_delta)
            np.add(encoders_delta, tmp[:, None] * S, out=encoders_delta)

        if not use_kernels:
            return step_simhiddenlayerrule

        prologue = _kernels.compiled(_kernels.hidden_layer_prologue)
        update = _kernels.compiled(_kernels.hidden_layer_update)
        relu_amplitude = getattr(derivative, "rectified_linear_amplitude", 0.0)
        # F^T as the loops read it; without it, F e is computed here
        fe_here = FT is None or not FT.flags.c_contiguous
        kernel_FT = np.empty((0, n)) if fe_here else FT
        norm_here = fixed_nu is None and fe_here
        params = _kernels.rule_params(
            radius=r,
            scale=base_scale,
            learning_rate=kE,
            gain_learning_rate=kg,
            bias_learning_rate=kb,
            min_gain=min_gain,
            given_norm=-1.0 if fixed_nu is None else fixed_nu,
            relu_amplitude=relu_amplitude,
            from_current=from_current,
        )
        kernel_bias = bias if from_current else sx

        def step_simhiddenlayerrule_compiled():
            if norm_here:
                params[_kernels.GIVEN_NORM] = _rms_row_norm(feedback, n)
            if fe_here:
                np.dot(F, error, out=fe)
            if relu_amplitude == 0:
                derivative(current, delta)
            if prologue(error, kernel_FT, fe, delta, current, x, tmp, params):
                # a case the numpy code handles (see the prologue)
                step_simhiddenlayerrule()
                return
            if not from_current:
                np.dot(S, x, out=sx)
            n_scaled = update(
                fe,
                delta,
                current,
                kernel_bias,
                sx,
                x,
                x_out,
                gain,
                bias_delta,
                beta,
                gain_delta,
                alpha,
                params,
            )
            scaled[0] = n_scaled > 0

        return step_simhiddenlayerrule_compiled


class SimHiddenLayerEncoderUpdate(Operator):
    r"""Apply a factored encoder update in place.

    Implements

    .. math:: S \leftarrow \mathrm{diag}(\alpha) S + \beta x^T

    with the factors :math:`\alpha, \beta, x` that `.SimHiddenLayerRule`
    computed on the previous step, so that :math:`S` changes exactly as with
    Nengo's generic path (an ``(n, d)`` delta added by ``Copy(..., inc=True)``)
    but without the ``(n, d)`` delta: one BLAS rank-1 update (``dger``) on
    :math:`S` itself, after scaling the rows whose :math:`\alpha_i \ne 1`
    (none with equal gain and encoder rates, unless a gain meets its floor).
    With numba installed, one compiled pass does both and skips the rows that
    do not change (:math:`\alpha_i = 1, \beta_i = 0`, e.g. every inactive
    rectified linear neuron).

    This is an *increment* only if nothing else changes :math:`S` in the same
    step, because the scaling acts on all of :math:`S`; the builder uses it
    only when the rule is the ensemble's only encoder-learning rule.

    With ``encode``, the operator also takes over the ensemble's encoding,
    :math:`J \mathrel{+}= S x` (Nengo's ``DotInc``, which the builder then
    removes), so that :math:`S` is read once a step instead of twice. The
    builder does this when numba is available.

    Parameters
    ----------
    scaled_encoders : Signal
        :math:`S`, shape ``(n, d)``, changed in place.
    alpha, beta : Signal
        The row scales and the rank-1 weights, shape ``(n,)``.
    x : Signal
        The input the update was computed for, shape ``(d,)``.
    tag : str, optional
        A label associated with the operator, for debugging purposes.
    encode : (Signal, Signal), optional
        The ensemble's input :math:`x` of this step (shape ``(d,)``) and the
        neurons' input current :math:`J` (shape ``(n,)``), to do
        :math:`J \mathrel{+}= S x` after the update.

    Notes
    -----
    1. sets ``[]``
    2. incs ``[scaled_encoders]``, plus ``J`` with ``encode``
    3. reads ``[alpha, beta, x]``, plus the ensemble's input with ``encode``
    4. updates ``[]``
    """

    def __init__(self, scaled_encoders, alpha, beta, x, tag=None, encode=None):
        super().__init__(tag=tag)
        self.sets = []
        self.incs = [scaled_encoders]
        self.reads = [alpha, beta, x]
        self.updates = []
        if encode is not None:
            encode_input, current = encode
            self.incs.append(current)
            self.reads.append(encode_input)

    @property
    def scaled_encoders(self):
        return self.incs[0]

    @property
    def alpha(self):
        return self.reads[0]

    @property
    def beta(self):
        return self.reads[1]

    @property
    def x(self):
        return self.reads[2]

    @property
    def encode(self):
        """``(x, J)`` when the operator also encodes (``J += S x``), or None."""
        return (self.reads[3], self.incs[1]) if len(self.incs) > 1 else None

    @property
    def _descstr(self):
        return f"{self.scaled_encoders} <- alpha * S + beta x^T"

    def make_step(self, signals, dt, rng):
        S = signals[self.scaled_encoders]
        alpha = signals[self.alpha]
        beta = signals[self.beta]
        x = signals[self.x]
        n = S.shape[0]
        if self.encode is not None:
            x_new, current = (signals[s] for s in self.encode)
        if _USE_KERNELS and _kernels.AVAILABLE:
            # one pass that skips the rows that do not change (for rectified
            # linear neurons, every inactive one), and encodes in the same pass
            if self.encode is not None:
                encode = _kernels.compiled(_kernels.encoder_update_encode)

                def step_simhiddenlayerencoderupdate():
                    encode(S, alpha, beta, x, x_new, current)

            else:
                encoder_update = _kernels.compiled(_kernels.encoder_update)

                def step_simhiddenlayerencoderupdate():
                    encoder_update(S, alpha, beta, x)

            return step_simhiddenlayerencoderupdate

        if self.encode is not None:
            # numpy: the update below, then the encoding it replaced
            update = self._make_update_step(S, alpha, beta, x, n)
            encoded = np.empty(n)

            def step_simhiddenlayerencoderupdate():
                update()
                np.dot(S, x_new, out=encoded)
                np.add(current, encoded, out=current)

            return step_simhiddenlayerencoderupdate
        return self._make_update_step(S, alpha, beta, x, n)

    @staticmethod
    def _make_update_step(S, alpha, beta, x, n):
        """The numpy code: rows scaled where alpha != 1, then blocked dger."""
        rows = max(1, _GER_BLOCK // max(S.shape[1], 1))
        starts = range(0, n, rows)
        gers = [_inplace_ger(S[i : i + rows]) for i in starts]
        ger = gers[0] if gers and all(gers) else None
        min_reduce, max_reduce = np.minimum.reduce, np.maximum.reduce

        def scale_rows():
            # alpha is 1 but for the rows whose gains were floored (and every
            # row when the gain and encoder rates differ)
            if n == 0 or min_reduce(alpha) == 1.0 == max_reduce(alpha):
                return
            idx = np.flatnonzero(alpha != 1.0)
            if 4 * idx.size > n:
                np.multiply(S, alpha[:, None], out=S)
            else:
                S[idx] *= alpha[idx, None]

        if ger is None:
            scratch = np.empty_like(S)

            def step_simhiddenlayerencoderupdate():
                scale_rows()
                np.multiply(beta[:, None], x, out=scratch)
                np.add(S, scratch, out=S)

        else:
            # The rank-1 update goes in blocks of rows to keep OpenBLAS
            # single-threaded: scipy bundles its own OpenBLAS, whose threads
            # compete with numpy's for the same cores (10x slower measured on
            # 2 cores). Each S_rows.T is Fortran-ordered, so
            # S_rows.T += x beta^T updates S in place.
            blocks = [(S[i : i + rows].T, beta[i : i + rows]) for i in starts]

            def step_simhiddenlayerencoderupdate():
                scale_rows()
                for S_rows_T, beta_rows in blocks:
                    ger(1.0, x, beta_rows, a=S_rows_T, overwrite_a=True)

        return step_simhiddenlayerencoderupdate


def _inplace_ger(S):
    """BLAS ``ger`` that updates ``S`` in place through ``S.T``, or None."""
    if S.dtype != np.float64 or not S.flags.c_contiguous or S.size == 0:
        return None
    ger = get_blas_funcs("ger", (S,))
    n, d = S.shape
    # a zero update: checks that the wrapper writes into S and makes no copy
    out = ger(0.0, np.zeros(d), np.zeros(n), a=S.T, overwrite_a=True)
    return ger if np.shares_memory(out, S) else None


def _encoder_learning_rules(model, ens):
    """The learning rule types that modify ``ens``'s encoders, or None if the
    model does not say (no toplevel network)."""
    if model.toplevel is None:
        return None
    types = []
    for conn in model.toplevel.all_connections:
        if conn.post_obj is not ens or conn.learning_rule_type is None:
            continue
        rule_types = conn.learning_rule_type
        if isinstance(rule_types, dict):
            rule_types = list(rule_types.values())
        elif not isinstance(rule_types, (list, tuple)):
            rule_types = [rule_types]
        types.extend(t for t in rule_types if t.modifies == "encoders")
    return types


def _rms_row_norm(F, n):
    """``||F||_F / sqrt(n)``: the RMS row norm of F, or of F^T, with n rows."""
    return np.sqrt(squared_norm(F) / n)


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


def _when_built(model, objs, callback):
    """Call ``callback()`` once every object in ``objs`` has been built into
    ``model`` (at once if they all have).

    Lets a rule depend on another connection whatever order they were created
    in, without building that connection out of turn.
    """
    pending = {id(obj) for obj in objs if not model.has_built(obj)}
    if not pending:
        callback()
        return

    previous = model.build_callback

    def build_callback(built_obj):
        if previous is not None:
            previous(built_obj)
        if pending:
            pending.discard(id(built_obj))
            if not pending:
                callback()

    model.build_callback = build_callback


def _when_model_built(model, callback):
    """Call ``callback()`` once every object of the network being built (the
    model's toplevel network) has been built, or never if there is none.

    Nengo has no hook at the end of a build; this waits (with `_when_built`)
    for all the toplevel network's objects, once per model, however many
    callbacks are registered.
    """
    callbacks = getattr(model, "_nengo_fa_when_built", None)
    if callbacks is not None:
        callbacks.append(callback)
        return
    if model.toplevel is None:
        return
    callbacks = model._nengo_fa_when_built = [callback]

    def call_all():
        for cb in callbacks:
            cb()

    _when_built(model, model.toplevel.all_objects, call_all)


def _only_encoding_drives(model, ens):
    """Whether ``ens``'s neurons get only the bias and the encoded input.

    Then the input current is exactly :math:`J = S x + b`, and
    `.SimHiddenLayerRule` reads :math:`S x` as :math:`J - b` instead of
    recomputing it. Anything else writing into the current (a connection to
    ``ens.neurons``, noise, another operator) makes this False.
    """
    J = model.sig[ens.neurons]["in"]
    writers = [
        op
        for op in model.operators
        if any(sig.base is J.base for sig in op.sets + op.incs)
    ]
    bias = model.sig[ens.neurons]["bias"]
    encoders = model.sig[ens]["encoders"]
    x = model.sig[ens]["in"]
    return len(writers) == 2 and all(
        (isinstance(op, Copy) and op.src is bias and op.dst is J and not op.inc)
        or (isinstance(op, DotInc) and op.A is encoders and op.X is x and op.Y is J)
        or (
            isinstance(op, SimHiddenLayerEncoderUpdate)
            and op.scaled_encoders is encoders
            and op.encode == (x, J)
        )
        for op in writers
    )


def _ensemble_gain_signal(model, ens):
    """The ensemble's gains as a learnable signal, shared by all its rules."""
    if "gain" not in model.sig[ens]:
        S = model.sig[ens]["encoders"].initial_value
        gain = ens.radius * np.linalg.norm(S, axis=1)
        model.sig[ens]["gain"] = Signal(gain, name=f"{ens}.gain")
    return model.sig[ens]["gain"]


@Builder.register(HiddenLayerRule)
def build_hidden_layer_rule(model, rule_type, rule):
    """Builds a `.HiddenLayerRule` (`.FeedbackAlignment`, `.BackProp`,
    `.SignSymmetry`).

    Creates the error signal (``model.sig[rule]["in"]``), a learnable gain
    signal for the ensemble (shared between rules on the same ensemble) and
    per-rule update signals, makes the ensemble's bias writable, and adds a
    `.SimHiddenLayerRule` operator plus ``Copy(..., inc=True)`` operators that
    apply its updates on the next step (the encoder update through a
    `.SimHiddenLayerEncoderUpdate` in place, see ``_build_encoder_update``).
    For `.BackProp` and `.SignSymmetry`,
    the operator is added once the downstream connection has been built
    (`.SignSymmetry` adds a `.SimSignFeedback` too). With
    ``modifies="weights"``, the encoders and gains are not learned and a
    `.SimHiddenLayerWeights` operator updates the connection's weights. A
    chained rule (whose ``downstream`` carries a nengo_fa rule) gets no error
    connection: a `.SimChainedError` sets its error, once the downstream rule's
    operator exists.

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
    weights_mode = rule_type.modifies == "weights"
    ens = conn.post_obj
    if weights_mode and isinstance(ens, Neurons):
        ens = ens.ensemble
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

    # a chained rule's error is the local error of the rule downstream of it
    down_rule = _chained_downstream_rule(rule_type, rule)
    error = Signal(
        shape=rule.size_in if down_rule is None else _chained_error_size(rule_type),
        name=f"{type(rule_type).__name__}:error",
    )
    if down_rule is None:
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
    if weights_mode:
        # nengo's delta is the weight update; the encoders are not learned
        weights_delta = encoders_delta
        encoders_delta = Signal(shape=encoders.shape, name="unused encoders delta")
    delta = Signal(shape=n, name=f"{type(rule_type).__name__}:delta")
    gain_delta = Signal(shape=n, name=f"{type(rule_type).__name__}:gain_delta")
    bias_delta = Signal(shape=n, name=f"{type(rule_type).__name__}:bias_delta")
    model.add_op(Copy(gain_delta, gain, inc=True, tag="gain += delta"))
    model.add_op(Copy(bias_delta, bias, inc=True, tag="bias += delta"))
    learns_encoders = not weights_mode and (
        rule_type.learning_rate > 0 or rule_type.gain_learning_rate > 0
    )
    encoders_delta, encoders_factors = _build_encoder_update(
        model, rule_type, ens, encoders, encoders_delta, learns_encoders
    )

    def add_operator(feedback, transpose_feedback):
        op = SimHiddenLayerRule(
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
            learning_rate=0 if weights_mode else rule_type.learning_rate,
            gain_learning_rate=0 if weights_mode else rule_type.gain_learning_rate,
            bias_learning_rate=rule_type.bias_learning_rate,
            transpose_feedback=transpose_feedback,
            tag=f"{type(rule_type).__name__} on {conn}",
            encoders_factors=encoders_factors,
            bias=None if encoders_factors is None else bias,
        )
        model.add_op(op)
        if encoders_factors is not None and learns_encoders:
            # known only once everything that may drive the neurons is built
            _when_model_built(
                model,
                lambda: setattr(
                    op, "projection_from_current", _only_encoding_drives(model, ens)
                ),
            )
        if weights_mode:
            add_weights_operator(feedback, transpose_feedback)
        _feedback_ready(model, rule, feedback, transpose_feedback)

    if weights_mode:
        add_weights_operator = _build_weights_learning(
            model,
            rule_type,
            rule,
            ens,
            delta,
            weights_delta,
            gain_scale,
            derivative_scale,
        )
    if down_rule is not None:
        _build_chained_error(model, rule_type, rule, ens, down_rule, error)

    feedback = None
    if isinstance(rule_type, FeedbackAlignment):
        feedback = _build_fixed_feedback(model, rule_type, rule, n)
        add_operator(model.sig[rule]["feedback"], transpose_feedback=False)
        _build_alignment(model, rule_type, rule, ens, derivative, error, down_rule)
    elif isinstance(rule_type, (BackProp, SignSymmetry)):
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


def _build_encoder_update(
    model, rule_type, ens, encoders, encoders_delta, learns_encoders
):
    """Choose how a rule's encoder update reaches the encoders.

    Returns ``(encoders_delta, encoders_factors)`` for `.SimHiddenLayerRule`,
    one of them None.

    Nengo's ``build_learning_rule`` gave the rule an ``(n, d)`` delta signal
    and a ``Copy(delta, encoders, inc=True)``. Filling that delta and adding it
    costs several passes over an ``(n, d)`` array per step, several times the
    cost of the ensemble itself. When the rule is the only one that learns
    this ensemble's encoders, the update can instead be applied in place by a
    `.SimHiddenLayerEncoderUpdate` from per-neuron factors, which gives the
    same encoders (up to rounding); the generic ``Copy`` is then removed from
    the model, so the ``(n, d)`` delta is never allocated, and the update
    takes over the ensemble's encoding (``_take_encoding``). With several
    encoder-learning rules on one ensemble each must see the encoders of the
    start of the step, so the generic path is kept. A rule that does not learn
    the encoders needs neither.
    """
    if encoders_delta is not None:
        if not _FACTORED_ENCODER_UPDATE:
            return encoders_delta, None
        if learns_encoders:
            learners = _encoder_learning_rules(model, ens)
            if learners is None or len(learners) != 1:
                return encoders_delta, None

    # the factored path: drop nengo's generic copy of the (n, d) delta
    if encoders_delta is not None:
        model.operators[:] = [
            op
            for op in model.operators
            if not (
                isinstance(op, Copy) and op.src is encoders_delta and op.dst is encoders
            )
        ]
    name = type(rule_type).__name__
    n, d = encoders.shape
    factors = (
        Signal(np.ones(n), name=f"{name}:encoders_alpha"),
        Signal(np.zeros(n), name=f"{name}:encoders_beta"),
        Signal(np.zeros(d), name=f"{name}:encoders_x"),
    )
    if learns_encoders:
        model.add_op(
            SimHiddenLayerEncoderUpdate(
                encoders,
                *factors,
                tag=f"{name}: encoders += update",
                encode=_take_encoding(model, ens, encoders),
            )
        )
    return None, factors


def _take_encoding(model, ens, encoders):
    """Remove the ensemble's encoding ``DotInc`` (``J += S x``), so that the
    encoder update does it in the same pass over :math:`S`; returns
    ``(x, J)``, or None (nothing removed) without the compiled loops."""
    if not (_USE_KERNELS and _kernels.AVAILABLE):
        return None
    x, J = model.sig[ens]["in"], model.sig[ens.neurons]["in"]
    encodings = [
        op
        for op in model.operators
        if isinstance(op, DotInc) and op.A is encoders and op.X is x and op.Y is J
    ]
    if len(encodings) != 1:
        return None
    model.operators.remove(encodings[0])
    return x, J


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
        feedback,
        name="FeedbackAlignment:feedback",
        readonly=fa.feedback_learning is None,
    )
    return feedback


def _build_backprop_feedback(model, bp, rule, ens, add_operator):
    """Check ``bp.downstream`` and read its weights once it is built.

    For `.SignSymmetry`, the feedback is a signal holding the scaled signs of
    those weights, set every step by a `.SimSignFeedback` operator.
    """
    conn = rule.connection
    down = bp.downstream
    prefix = f"{type(bp).__name__} on {conn}"
    _check_downstream(model, prefix, down, ens)

    sign_feedback = None
    if isinstance(bp, SignSymmetry):
        # made now so that probes can find it whatever the build order
        sign_feedback = Signal(
            shape=(down.size_out, ens.n_neurons), name="SignSymmetry:feedback"
        )
        model.sig[rule]["feedback"] = sign_feedback

    def add_backprop_operator():
        weights = _downstream_weights(model, prefix, down, ens)
        if sign_feedback is not None:
            model.add_op(SimSignFeedback(weights, sign_feedback, tag=prefix))
            weights = sign_feedback
        add_operator(weights, transpose_feedback=True)

    _when_built(model, [down], add_backprop_operator)


def _check_downstream(model, prefix, down, ens):
    """Check that ``down`` leaves ``ens`` with weights a rule can read."""
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


def _downstream_weights(model, prefix, down, ens):
    """The weights signal of a built ``down``, checked against ``ens``."""
    weights = model.sig[down]["weights"]
    if weights is None or weights.shape != (down.size_out, ens.n_neurons):
        raise BuildError(
            f"{prefix}: expected 'downstream' weights of shape "
            f"{(down.size_out, ens.n_neurons)}, got "
            f"{None if weights is None else weights.shape}"
        )
    return weights


def _build_alignment(model, fa, rule, ens, derivative, error, down_rule):
    """Alignment diagnostics and feedback learning of a `.FeedbackAlignment`.

    Without ``downstream`` there is nothing to compare with, and nothing is
    added. With ``downstream``, once it is built, adds the `.SimAlignmentDiagnostics`
    operator and, if the feedback learns, its `.SimKolenPollack` or
    `.SimAlignmentTerms` operator. For a chained rule, the true feedback is
    the transpose of the effective forward matrix into the next layer's
    neurons, set every step by a `.SimForwardMatrix`.
    """
    down = fa.downstream
    if down is None:
        return  # nothing to compare with: the diagnostics cannot be probed
    keys = ("delta_angle", "feedback_angle", "norm_ratio")
    diagnostics = [Signal(shape=1, name=f"FA:{key}") for key in keys]
    model.sig[rule].update(zip(keys, diagnostics))
    prefix = f"FeedbackAlignment on {rule.connection}"
    if down_rule is None:
        _check_downstream(model, prefix, down, ens)
    feedback = model.sig[rule]["feedback"]
    learning = fa.feedback_learning

    def add_operators():
        if down_rule is None:
            weights = _downstream_weights(model, prefix, down, ens)
        else:
            weights = _forward_matrix(model, down, down_rule, prefix)
        if isinstance(learning, KolenPollack):
            previous = Signal(weights.initial_value, name="KolenPollack:previous")
            model.add_op(
                SimKolenPollack(weights, previous, feedback, learning.decay, tag=prefix)
            )
        elif isinstance(learning, AlignmentTerms):
            activities = None
            if learning.uses_activities:
                activities = build_or_passthrough(
                    model, learning.activity_synapse, model.sig[ens.neurons]["out"]
                )
            model.add_op(
                SimAlignmentTerms(weights, activities, feedback, learning, tag=prefix)
            )
        elif learning is not None:
            raise BuildError(f"{prefix}: unknown feedback learning {learning!r}")
        model.add_op(
            SimAlignmentDiagnostics(
                error,
                feedback,
                weights,
                model.sig[ens.neurons]["in"],
                *diagnostics,
                derivative=derivative,
                tag=f"{prefix}: alignment",
            )
        )

    _when_built(model, [down], add_operators)


def _forward_matrix(model, down, down_rule, prefix):
    """Signal of the effective weights from ``down``'s pre neurons to the next
    layer's neurons (the matrix whose transpose backprop would use)."""
    down_ens = getattr(down.post_obj, "ensemble", down.post_obj)
    weights = model.sig[down]["weights"]
    if down_rule.learning_rule_type.modifies == "encoders":
        encoders = model.sig[down_ens]["encoders"]
        row_gain = None
        initial = encoders.initial_value @ weights.initial_value
    else:
        encoders = None
        row_gain = _weights_row_gain(model, down, down_ens)
        initial = row_gain[:, None] * weights.initial_value
    matrix = Signal(initial, name="FA:forward_matrix")
    model.add_op(
        SimForwardMatrix(
            weights, encoders, matrix, row_gain, tag=f"{prefix}: forward matrix"
        )
    )
    return matrix


# --- deep networks: chained errors, sign symmetry, weight learning ----------

# model -> {rule: (feedback, transposed) once known, else [pending callbacks]}
_feedback_sources = weakref.WeakKeyDictionary()


def _feedback_ready(model, rule, feedback, transposed):
    """Record the feedback signal a rule's operator uses, for chained rules."""
    sources = _feedback_sources.setdefault(model, {})
    pending = sources.get(rule, [])
    sources[rule] = (feedback, transposed)
    for callback in pending:
        callback(feedback, transposed)


def _when_feedback_ready(model, rule, callback):
    """Call ``callback(feedback, transposed)`` once ``rule``'s operator exists.

    A `.BackProp` rule's operator waits for its own downstream connection, so a
    rule chained to it may have to wait too.
    """
    sources = _feedback_sources.setdefault(model, {})
    entry = sources.setdefault(rule, [])
    if isinstance(entry, tuple):
        callback(*entry)
    else:
        entry.append(callback)


def _chained_downstream_rule(rule_type, rule):
    """The nengo_fa rule that ``rule`` takes its error from, or None."""
    down = getattr(rule_type, "downstream", None)
    down_rule = None if down is None else chained_rule(down)
    expects_chain = rule.size_in == 0
    if (down_rule is not None) != expects_chain:
        raise BuildError(
            f"{type(rule_type).__name__} on {rule.connection}: the learning rule of "
            f"'downstream' ({down}) changed after this rule was made; make the "
            "rule again so that it knows where its error comes from"
        )
    return down_rule


def _chained_error_size(rule_type):
    """Size of a chained rule's error: what its feedback matrix multiplies."""
    down = rule_type.downstream
    down_ens = down.post_obj
    down_ens = getattr(down_ens, "ensemble", down_ens)
    if isinstance(rule_type, FeedbackAlignment):
        return rule_type.error_size  # n_{l+1}, set by FeedbackAlignment
    if chained_rule(down).learning_rule_type.modifies == "weights":
        return down_ens.n_neurons
    return down_ens.dimensions


def _build_chained_error(model, rule_type, rule, ens, down_rule, error):
    """Feed the downstream rule's normalised local error to ``rule``.

    Adds a `.SimChainedError` operator once the downstream connection is built
    and its rule's feedback is known.
    """
    conn = rule.connection
    down = rule_type.downstream
    down_type = down_rule.learning_rule_type
    down_ens = down.post_obj
    down_ens = getattr(down_ens, "ensemble", down_ens)
    prefix = f"{type(rule_type).__name__} on {conn}"
    if getattr(down.pre_obj, "ensemble", down.pre_obj) is not ens:
        raise BuildError(
            f"{prefix}: 'downstream' must start at {ens} or its neurons, the "
            f"ensemble this rule trains (it starts at {down.pre_obj})"
        )
    if down.post_slice != slice(None):
        raise BuildError(
            f"{prefix}: 'downstream' must go into all of {down.post_obj} to "
            f"carry its rule's local error back (it goes into the slice "
            f"{down.post_slice})"
        )
    if model.toplevel is not None and down not in model.toplevel.all_connections:
        raise BuildError(
            f"{prefix}: 'downstream' ({down}) is not part of the model being built"
        )

    def add_chain_operator(down_feedback, _):
        built = model.params[down_rule]
        encoders = None
        if isinstance(rule_type, FeedbackAlignment):
            scale = 1.0  # B_l takes the place of the whole W_l^T M
        elif down_type.modifies == "encoders":
            # (d / n) E^T ~ pinv(E) for spread-out unit encoders E: e_l is the
            # decoded-space vector that the next layer would encode as its
            # normalised local error, so every layer takes steps of one size
            encoders = model.sig[down_ens]["encoders"]
            scale = (
                down_ens.radius
                * down_ens.dimensions
                / (built.gain_scale * down_ens.n_neurons)
            )
        else:
            scale = _weights_row_gain(model, down, down_ens) / built.gain_scale
        model.add_op(
            SimChainedError(
                delta=model.sig[down_rule]["delta"],
                feedback=down_feedback,
                error=error,
                scale=scale,
                derivative_scale=built.derivative_scale,
                encoders=encoders,
                tag=f"{prefix}: error from {down}",
            )
        )

    _when_built(
        model,
        [down],
        lambda: _when_feedback_ready(model, down_rule, add_chain_operator),
    )


def _weights_row_gain(model, conn, ens):
    """:math:`c`, the gains Nengo applies to the rows of ``conn``'s weights."""
    if isinstance(conn.post_obj, Neurons):
        return np.array(model.params[ens].gain, dtype=np.float64)
    return np.ones(ens.n_neurons)  # weight solver: the gains are in the weights


def _build_weights_learning(
    model, rule_type, rule, ens, delta, weights_delta, gain_scale, derivative_scale
):
    """Set up learning of ``rule``'s connection weights (``modifies="weights"``).

    Filters the presynaptic activities with ``pre_synapse`` (as `nengo.PES`
    does) and returns a function that adds the `.SimHiddenLayerWeights`
    operator once the rule's feedback signal is known.
    """
    conn = rule.connection
    prefix = f"{type(rule_type).__name__} on {conn}"
    if conn.post_slice != slice(None):
        raise BuildError(
            f"{prefix}: learning weights into a slice of {conn.post_obj} "
            f"({conn.post_slice}) is not supported; connect to all its neurons "
            "(e.g. with zero rows in the transform)"
        )
    pre_ens = getattr(conn.pre_obj, "ensemble", conn.pre_obj)
    if not isinstance(pre_ens, Ensemble) or isinstance(pre_ens.neuron_type, Direct):
        raise BuildError(
            f"{prefix}: 'pre' must be neurons to learn weights (got {conn.pre_obj})"
        )
    weights = model.sig[conn]["weights"]
    n_pre = weights.shape[1] if weights is not None and weights.ndim == 2 else None
    if n_pre is None or weights.shape[0] != ens.n_neurons:
        raise BuildError(
            f"{prefix}: 'transform' must be a full (post neurons x pre neurons) "
            f"matrix, shape {(ens.n_neurons, n_pre)}, to learn weights"
        )

    acts = build_or_passthrough(
        model,
        rule_type.pre_synapse,
        slice_signal(model, model.sig[conn.pre_obj]["out"], conn.pre_slice),
    )

    # A^2: mean squared norm of the pre activities over the pre tuning curves
    built_pre = model.params[pre_ens]
    rates = get_activities(built_pre, pre_ens, built_pre.eval_points)
    rates = rates[:, conn.pre_slice]
    act_scale = float(np.mean(np.sum(rates**2, axis=1)))
    act_scale = act_scale if act_scale > 0 else 1.0
    row_gain = _weights_row_gain(model, conn, ens)
    row_scale = gain_scale / (row_gain * derivative_scale * act_scale)

    def add_weights_operator(feedback, transpose_feedback):
        model.add_op(
            SimHiddenLayerWeights(
                delta=delta,
                feedback=feedback,
                pre_activities=acts,
                weights_delta=weights_delta,
                row_scale=row_scale,
                learning_rate=rule_type.learning_rate,
                fixed_feedback=not transpose_feedback and feedback.readonly,
                tag=f"{prefix}: weights",
            )
        )

    return add_weights_operator


class SimChainedError(Operator):
    r"""Pass a downstream rule's normalised local error back as an error.

    Implements, with the notation of `.HiddenLayerRule`,

    .. math:: e_l = M^T \delta_{l+1} / (\nu_{l+1} \bar{G'}_{l+1})

    with :math:`M = s S_{l+1}` (``encoders`` given; :math:`s` a scalar) or
    :math:`M = \mathrm{diag}(s)` (no ``encoders``), and :math:`\nu_{l+1}`
    the RMS row norm of the downstream rule's feedback, recomputed every step.
    :math:`e_l = 0` while :math:`\nu_{l+1} = 0`.

    Parameters
    ----------
    delta : Signal
        The downstream rule's local error :math:`\delta_{l+1}`, shape
        ``(n_{l+1},)``. It is an updated signal, so this reads the value of
        the previous step.
    feedback : Signal
        The downstream rule's feedback :math:`F_{l+1}` (or its transpose).
    error : Signal
        Output: the error :math:`e_l` of the upstream rule.
    scale : float or ndarray
        :math:`s`.
    derivative_scale : float
        :math:`\bar{G'}_{l+1}`.
    encoders : Signal, optional
        The live scaled encoders :math:`S_{l+1}`, shape ``(n_{l+1}, d_{l+1})``.
    tag : str, optional
        A label associated with the operator, for debugging purposes.

    Notes
    -----
    1. sets ``[error]``
    2. incs ``[]``
    3. reads ``[delta, feedback]`` (``+ [encoders]``)
    4. updates ``[]``
    """

    def __init__(
        self, delta, feedback, error, scale, derivative_scale, encoders=None, tag=None
    ):
        super().__init__(tag=tag)
        self.scale = scale
        self.derivative_scale = derivative_scale
        self.sets = [error]
        self.incs = []
        self.reads = [delta, feedback] + ([] if encoders is None else [encoders])
        self.updates = []

    @property
    def error(self):
        return self.sets[0]

    @property
    def delta(self):
        return self.reads[0]

    @property
    def feedback(self):
        return self.reads[1]

    @property
    def encoders(self):
        return self.reads[2] if len(self.reads) > 2 else None

    @property
    def _descstr(self):
        return f"{self.delta} -> {self.error}"

    def make_step(self, signals, dt, rng):
        delta = signals[self.delta]
        feedback = signals[self.feedback]
        error = signals[self.error]
        S = None if self.encoders is None else signals[self.encoders]
        n = delta.shape[0]
        scale = self.scale
        gbar = self.derivative_scale
        tmp = np.empty(n)

        def step_simchainederror():
            nu = _rms_row_norm(feedback, n)
            if nu == 0:
                error[...] = 0
                return
            np.multiply(delta, scale, out=tmp)
            np.multiply(tmp, 1.0 / (nu * gbar), out=tmp)
            if S is None:
                error[...] = tmp
            else:
                np.dot(tmp, S, out=error)  # S^T tmp

        return step_simchainederror


class SimSignFeedback(Operator):
    r"""Set the sign-symmetry feedback from live weights.

    Implements :math:`F = \rho \, \mathrm{sign}(W)` with
    :math:`\rho = \sqrt{\mathrm{mean}(W^2)}`, so that :math:`\|F\|_F =
    \|W\|_F` when no weight is zero.

    Notes
    -----
    1. sets ``[feedback]``
    2. incs ``[]``
    3. reads ``[weights]``
    4. updates ``[]``
    """

    def __init__(self, weights, feedback, tag=None):
        super().__init__(tag=tag)
        self.sets = [feedback]
        self.incs = []
        self.reads = [weights]
        self.updates = []

    @property
    def feedback(self):
        return self.sets[0]

    @property
    def weights(self):
        return self.reads[0]

    @property
    def _descstr(self):
        return f"sign({self.weights}) -> {self.feedback}"

    def make_step(self, signals, dt, rng):
        W = signals[self.weights]
        F = signals[self.feedback]
        size = W.size

        def step_simsignfeedback():
            flat = W.reshape(-1)
            rho = np.sqrt(np.dot(flat, flat) / size)
            np.sign(W, out=F)
            np.multiply(F, rho, out=F)

        return step_simsignfeedback


class SimHiddenLayerWeights(Operator):
    r"""Update a connection's full weight matrix from a local error.

    Implements, with the notation of `.HiddenLayerRule`,

    .. math:: \Delta W = -\kappa \, \Delta t \, \mathrm{diag}(s) \,
              \delta \, a_{pre}^T / \nu

    with the constant row scale :math:`s = \hat g / (c \bar{G'} \bar A^2)`
    and :math:`\nu` the RMS row norm of the feedback. :math:`\Delta W = 0`
    while :math:`\nu = 0`.

    Parameters
    ----------
    delta : Signal
        The local error :math:`\delta`, shape ``(n_post,)`` (an updated
        signal: the value of the previous step is read).
    feedback : Signal
        The feedback matrix of the rule (or its transpose), for :math:`\nu`.
    pre_activities : Signal
        The filtered presynaptic activities :math:`a_{pre}`.
    weights_delta : Signal
        Output: :math:`\Delta W`, added to the weights on the next step.
    row_scale : ndarray
        :math:`s`, shape ``(n_post,)``.
    learning_rate : float
        :math:`\kappa`.
    fixed_feedback : bool
        Whether the feedback never changes (then :math:`\nu` is computed once).
    tag : str, optional
        A label associated with the operator, for debugging purposes.

    Notes
    -----
    1. sets ``[]``
    2. incs ``[]``
    3. reads ``[delta, feedback, pre_activities]``
    4. updates ``[weights_delta]``
    """

    def __init__(
        self,
        delta,
        feedback,
        pre_activities,
        weights_delta,
        row_scale,
        learning_rate,
        fixed_feedback,
        tag=None,
    ):
        super().__init__(tag=tag)
        self.row_scale = row_scale
        self.learning_rate = learning_rate
        self.fixed_feedback = fixed_feedback
        self.sets = []
        self.incs = []
        self.reads = [delta, feedback, pre_activities]
        self.updates = [weights_delta]

    @property
    def delta(self):
        return self.reads[0]

    @property
    def feedback(self):
        return self.reads[1]

    @property
    def pre_activities(self):
        return self.reads[2]

    @property
    def weights_delta(self):
        return self.updates[0]

    @property
    def _descstr(self):
        return f"{self.delta}, {self.pre_activities} -> {self.weights_delta}"

    def make_step(self, signals, dt, rng):
        delta = signals[self.delta]
        feedback = signals[self.feedback]
        pre = signals[self.pre_activities]
        weights_delta = signals[self.weights_delta]
        n = delta.shape[0]
        coef = -self.learning_rate * dt * np.asarray(self.row_scale, dtype=float)
        fixed_nu = _rms_row_norm(feedback, n) if self.fixed_feedback else None
        u = np.empty(n)

        def step_simhiddenlayerweights():
            nu = _rms_row_norm(feedback, n) if fixed_nu is None else fixed_nu
            if nu == 0:
                weights_delta[...] = 0
                return
            np.multiply(delta, coef, out=u)
            np.multiply(u, 1.0 / nu, out=u)
            np.outer(u, pre, out=weights_delta)

        return step_simhiddenlayerweights
