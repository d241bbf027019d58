"""The stages of a `.SimHiddenLayerRule` step, in numpy and compiled.

Each stage has the name it has in `.SimHiddenLayerRule`'s docstring, in the
compiled loops (`nengo_fa.builder.kernels`) and in NengoDL's builder
(`nengo_fa.dl.hidden_layer`): *feedback error*, *local error*, *bias step*,
*step bounds*, *encoder/gain step* and *row scaling*. Both step classes read
the operator's `.RuleConstants`. Internal.
"""

import math

import numpy as np
from nengo.exceptions import SimulationError

from nengo_fa.builder import kernels
from nengo_fa.builder.numerics import rms_row_norm

_min, _max = np.minimum.reduce, np.maximum.reduce


class NumpyStep:
    """A step of `.SimHiddenLayerRule` as numpy calls, stage by stage.

    It is the reference implementation: the compiled step gives the same
    results, and hands the rare cases (no feedback yet, no input, a
    non-finite error or input) to `step_simhiddenlayerrule` here.
    """

    def __init__(self, op, signals):
        self.tag = op.tag or "nengo_fa rule"
        self.c = op.constants
        self.derivative = op.derivative
        self.error = signals[op.error]
        self.feedback = signals[op.feedback]
        self.current = signals[op.current]
        self.x = signals[op.x]
        self.S = signals[op.scaled_encoders]
        self.gain = signals[op.gain]
        self.delta = signals[op.delta]
        self.gain_delta = signals[op.gain_delta]
        self.bias_delta = signals[op.bias_delta]
        self.bias = signals[op.bias] if op.projection_from_current else None
        n = self.S.shape[0]
        self.n = n
        self.factored = op.factored
        if op.factored:
            # the factors go straight to the signals that
            # SimHiddenLayerEncoderUpdate applies in place on the next step
            self.alpha, self.beta, self.x_out = (
                signals[s] for s in op.encoders_factors
            )
        else:
            self.encoders_delta = signals[op.encoders_delta]
            self.alpha, self.beta = np.ones(n), np.zeros(n)
        # F e as e^T F^T, with F^T C-contiguous: several times faster than
        # F e for a thin F (measured 13 vs 37 us at n=5000, d_out=10)
        fixed = self.c.feedback_norm is not None
        if self.c.transpose_feedback:
            self.FT = self.feedback
        elif fixed:
            self.FT = np.ascontiguousarray(self.feedback.T)
        else:
            self.FT = None
        self.F = self.feedback.T if self.c.transpose_feedback else self.feedback
        self.fe, self.sx, self.t, self.m, self.tmp = (np.empty(n) for _ in range(5))
        # alpha holds ones except after a step that scaled rows
        self.scaled = False

    # --- checks -----------------------------------------------------------

    def check_error(self):
        # e . e is finite unless e holds NaN or inf (or is huge: then the
        # exact test decides)
        e = self.error
        if not math.isfinite(np.dot(e, e)) and not np.all(np.isfinite(e)):
            raise SimulationError(
                f"{self.tag}: the error contains NaN or inf; stopping before it "
                "reaches the encoders, gains and biases."
            )

    def check_input(self, xx):
        if not math.isfinite(xx) and not np.all(np.isfinite(self.x)):
            raise SimulationError(
                f"{self.tag}: the ensemble's input contains NaN or inf; stopping "
                "before it reaches the encoders and gains."
            )

    # --- stages -------------------------------------------------------------

    def feedback_error(self):
        """:math:`F e` into ``fe``; returns :math:`\\nu`."""
        nu = self.c.feedback_norm
        if nu is None:
            nu = rms_row_norm(self.feedback, self.n)
        if self.FT is None:
            np.dot(self.F, self.error, out=self.fe)
        else:
            np.dot(self.error, self.FT, out=self.fe)
        return nu

    def local_error(self):
        """:math:`\\delta = (F e) \\odot G'(J)`."""
        self.derivative(self.current, self.delta)
        np.multiply(self.delta, self.fe, out=self.delta)

    def bias_step(self, c):
        np.multiply(self.delta, -self.c.bias_learning_rate * c, out=self.bias_delta)

    def no_encoder_update(self):
        if self.scaled:
            self.alpha.fill(1.0)
            self.scaled = False
        self.beta.fill(0.0)
        if not self.factored:
            self.encoders_delta[...] = 0

    def step_bounds(self, c, xx, g_min):
        """:math:`\\beta = -\\kappa_E u / r^2`, each step at most half a row
        long, so that :math:`S + \\beta x` never comes near 0 (which would
        leave its direction to rounding)."""
        r, beta, tmp = self.c.radius, self.beta, self.tmp
        min_gain = self.c.min_gain
        np.multiply(self.delta, -self.c.learning_rate * c / r**2, out=beta)
        b_max = max(_max(beta), -_min(beta)) if self.n > 0 else 0.0
        if 2 * r * np.sqrt(xx) * b_max > max(g_min, min_gain):
            np.maximum(self.gain, min_gain, out=tmp)
            np.multiply(tmp, 0.5 / (r * np.sqrt(xx)), out=tmp)
            np.minimum(beta, tmp, out=beta)
            np.negative(tmp, out=tmp)
            np.maximum(beta, tmp, out=beta)

    def encoder_gain_step(self, xx, g_low):
        """:math:`m - g` into ``dg_E`` and :math:`\\Delta g` into ``gain_delta``;
        returns ``(dg_E, min(m))``."""
        r, beta, t, m, sx = self.c.radius, self.beta, self.t, self.m, self.sx
        gain, gain_delta = self.gain, self.gain_delta
        same_rates = self.c.same_rates
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
        m_min = _min(m) if self.n > 0 else self.c.min_gain
        np.add(m, gain, out=m)
        dg_E = gain_delta if same_rates else t
        if g_low:
            dg_E[...] = 0.0
            np.divide(t, m, out=dg_E, where=m > 0)
        else:
            np.divide(t, m, out=dg_E)
        if not same_rates:
            kE, kg = self.c.learning_rate, self.c.gain_learning_rate
            np.multiply(dg_E, kg / kE, out=gain_delta)
        return dg_E, m_min

    def gain_step(self, c):
        """Directions fixed (:math:`\\kappa_E = 0`):
        :math:`\\Delta g = -\\kappa_g u (S x) / g`; returns ``dg_E`` (0)."""
        self.beta.fill(0.0)
        np.maximum(self.gain, self.c.min_gain, out=self.tmp)
        np.divide(self.sx, self.tmp, out=self.gain_delta)
        np.multiply(self.gain_delta, self.delta, out=self.gain_delta)
        np.multiply(
            self.gain_delta, -self.c.gain_learning_rate * c, out=self.gain_delta
        )
        self.t.fill(0.0)
        return self.t

    def row_scaling(self, dg_E):
        """:math:`g' = \\max(g + \\Delta g, g_{min})` and :math:`\\alpha =
        g' / m` with :math:`m = g + dg_E` the gain that :math:`S + \\beta x`
        has; a row with :math:`m = 0` has no direction and stays as it is."""
        g_new, m, alpha = self.tmp, self.m, self.alpha
        np.add(self.gain, self.gain_delta, out=g_new)
        np.maximum(g_new, self.c.min_gain, out=g_new)
        np.add(self.gain, dg_E, out=m)
        ok = m > 0
        alpha.fill(1.0)
        np.divide(g_new, m, out=alpha, where=ok)
        np.subtract(g_new, self.gain, out=self.gain_delta)
        self.gain_delta[~ok] = 0.0
        np.multiply(self.beta, alpha, out=self.beta)
        self.scaled = True

    def encoders_delta_step(self):
        """The straightforward ``(n, d)`` delta, kept as the reference that
        the factored path is tested against."""
        np.subtract(self.alpha, 1, out=self.tmp)
        np.multiply(self.beta[:, None], self.x, out=self.encoders_delta)
        np.add(self.encoders_delta, self.tmp[:, None] * self.S, out=self.encoders_delta)

    # --- the step -----------------------------------------------------------

    def step_simhiddenlayerrule(self):
        self.check_error()
        nu = self.feedback_error()
        self.local_error()
        if nu == 0:
            # no feedback yet (e.g. a readout that starts at zero)
            self.gain_delta[...] = 0
            self.bias_delta[...] = 0
            if self.c.learns_encoders:
                self.no_encoder_update()
            return
        # u = c delta is never formed: c is folded into the scalars
        c = self.c.scale / nu
        self.bias_step(c)
        if self.c.learns_encoders:
            self.encoder_update(c)

    def encoder_update(self, c):
        xx = float(np.dot(self.x, self.x))
        self.check_input(xx)
        if xx == 0:
            # nothing to learn from: p = 0 and beta x = 0
            self.gain_delta[...] = 0
            self.no_encoder_update()
            return
        if self.bias is not None:
            np.subtract(self.current, self.bias, out=self.sx)
        else:
            np.dot(self.S, self.x, out=self.sx)
        min_gain = self.c.min_gain
        g_min = _min(self.gain) if self.n > 0 else min_gain
        g_low = g_min < min_gain  # rare
        if self.c.learning_rate > 0:
            self.step_bounds(c, xx, g_min)
            dg_E, m_min = self.encoder_gain_step(xx, g_low)
        else:
            dg_E, m_min = self.gain_step(c), None
        # with equal rates, g' = m and alpha = 1 unless a gain would fall
        # below the floor
        if self.c.same_rates and not g_low and m_min >= min_gain * (1 + 1e-9):
            if self.scaled:
                self.alpha.fill(1.0)
                self.scaled = False
        else:
            self.row_scaling(dg_E)
        if self.factored:
            self.x_out[...] = self.x
        else:
            self.encoders_delta_step()


def compiled_step(op, signals, numpy_step):
    """A step of `.SimHiddenLayerRule` in two compiled loops.

    `kernels.hidden_layer_prologue` does the checks, the feedback error and,
    for rectified linear neurons, :math:`G'(J)`; `kernels.hidden_layer_update`
    the local error, bias step, step bounds, encoder/gain step and row
    scaling. :math:`G'(J)` of other neuron types, :math:`F e` for a learned
    feedback that is not a transpose, and :math:`S x` when it cannot be read
    as :math:`J - b` stay numpy calls; the rare cases that the prologue
    reports go to the numpy stages (``numpy_step``, a `NumpyStep`).
    """
    s = numpy_step
    prologue = kernels.compiled(kernels.hidden_layer_prologue)
    update = kernels.compiled(kernels.hidden_layer_update)
    c = op.constants
    relu = c.relu_amplitude != 0
    # F^T as the loops read it; without it, F e is computed here
    fe_here = s.FT is None or not s.FT.flags.c_contiguous
    kernel_FT = np.empty((0, s.n)) if fe_here else s.FT
    norm_here = c.feedback_norm is None and fe_here
    params = c.kernel_params()
    kernel_bias = s.bias if s.bias is not None else s.sx
    encode_sx = s.bias is None
    error, feedback, F, fe, delta, current = (
        s.error,
        s.feedback,
        s.F,
        s.fe,
        s.delta,
        s.current,
    )
    x, S, sx, x_out, gain, n = s.x, s.S, s.sx, s.x_out, s.gain, s.n
    bias_delta, beta, gain_delta, alpha = s.bias_delta, s.beta, s.gain_delta, s.alpha
    derivative, scratch = s.derivative, s.tmp

    def step_simhiddenlayerrule():
        if norm_here:
            params[kernels.GIVEN_NORM] = rms_row_norm(feedback, n)
        if fe_here:
            np.dot(F, error, out=fe)
        if not relu:
            derivative(current, delta)
        if prologue(error, kernel_FT, fe, delta, current, x, scratch, params):
            # a rare case, which the numpy stages handle
            s.step_simhiddenlayerrule()
            return
        if encode_sx:
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
        s.scaled = n_scaled > 0

    return step_simhiddenlayerrule
