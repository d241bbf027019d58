"""The stages of a `.SimHiddenLayerRule` step, in numpy and compiled.

Each stage has the name it has in `.SimHiddenLayerRule`'s docstring, in the
compiled loops (`nengo_fa.builder.kernels`) and in NengoDL's builder
(`nengo_fa.dl.hidden_layer`): *feedback error*, *local error*, *bias step*,
*step bounds*, *encoder/gain step*, *row scaling* and *bias limits*. Both step
classes read the operator's `.RuleConstants`. Internal.
"""

import math
import warnings

import numpy as np
from nengo.exceptions import SimulationError

from nengo_fa.builder import kernels
from nengo_fa.builder.numerics import checked_dot, finite, rms_row_norm
from nengo_fa.exceptions import StableRangeWarning
from nengo_fa.neurons import Derivative, UserDerivative

_min, _max = np.minimum.reduce, np.maximum.reduce


def trusted_derivative(derivative):
    """Whether ``derivative`` is one of nengo_fa's own, finite for every
    finite current (a user's function, or a factory registered by a user,
    is checked every step)."""
    return isinstance(derivative, Derivative) and not isinstance(
        derivative, UserDerivative
    )


class NumpyStep:
    """A step of `.SimHiddenLayerRule` as numpy calls, stage by stage.

    It is the reference implementation: the compiled step gives the same
    results, and hands the rare cases (no feedback yet, no input, a
    non-finite error or input) to ``step_simhiddenlayerrule`` here.
    """

    def __init__(self, op, signals):
        self.tag = op.tag or "nengo_fa rule"
        self.error_source = op.error_source
        self.neuron_type = op.neuron_type
        self.c = op.constants
        self.derivative = op.derivative
        self.check_derivative = not trusted_derivative(op.derivative)
        self.error = signals[op.error]
        # with a FeedbackError, F e and nu come from F's own operator
        given = op.feedback_error
        self.feedback = signals[op.feedback] if given is None else None
        self.given_fe, self.given_nu = (
            (None, None) if given is None else (signals[sig] for sig in given)
        )
        self.current = signals[op.current]
        self.x = signals[op.x]
        self.S = signals[op.scaled_encoders]
        self.gain_signal = signals[op.gain]
        self.bias = signals[op.bias]
        self.delta = signals[op.delta]
        self.gain_delta = signals[op.gain_delta]
        self.bias_delta = signals[op.bias_delta]
        self.from_current = op.projection_from_current
        # S x is J - b, read as such (without a filter of the step's own)
        self.sx_is_current = self.c.current_is_projection
        # or J - b - o, o what another operator added to J (op.current_offset)
        self.offset = None if op.current_offset is None else signals[op.current_offset]
        self.decay = self.c.pre_decay
        n = self.S.shape[0]
        self.n = n
        dtype = self.S.dtype
        # coefficients are capped here, so that 0 * c is 0
        self.coef_max = float(np.finfo(dtype).max)
        # The gain step keeps g = r |S_i| through m^2 = g^2 + t, which carries
        # the rounding error of g^2 along: in float32, an error of 1e-7 g^2
        # made while a gain was large became 30-45% of it once the gain had
        # shrunk a thousandfold (and, with the earlier row rescaling, grew
        # without bound: NengoDL's float32 divergence at n = 50000). With less
        # than float64, the step measures g = r |S_i| from S instead, and the
        # gain signal is set to the measured gain plus the step. Gains whose
        # rate is 0 do not move: the signal keeps them exactly.
        self.exact_gains = (
            self.c.learns_encoders
            and self.c.gain_learning_rate > 0
            and dtype.itemsize < 8
        )
        self.gain = np.empty(n, dtype=dtype) if self.exact_gains else self.gain_signal
        # |S_i|, when the encoder update measured it in its pass over S
        self.row_norms = None if op.row_norms is None else signals[op.row_norms]
        self.factored = op.factored
        if op.factored:
            # the factors go straight to the signals that
            # SimHiddenLayerEncoderUpdate applies in place on the next step
            self.alpha, self.beta, self.x_out = (
                signals[s] for s in op.encoders_factors
            )
        else:
            self.encoders_delta = signals[op.encoders_delta]
            self.alpha, self.beta = np.ones(n, dtype=dtype), np.zeros(n, dtype=dtype)
        # F e as e^T F^T, with F^T C-contiguous: several times faster than
        # F e for a thin F (measured 13 vs 37 us at n=5000, d_out=10)
        fixed = self.c.feedback_norm is not None
        if given is not None:
            self.FT = self.F = None
        elif self.c.transpose_feedback:
            self.FT = self.feedback
        elif fixed:
            self.FT = np.ascontiguousarray(self.feedback.T)
        else:
            self.FT = None
        if given is None:
            self.F = self.feedback.T if self.c.transpose_feedback else self.feedback
        self.sx, self.t, self.m, self.tmp = (np.empty(n, dtype=dtype) for _ in range(4))
        # what the error is paired with: J and x, or the step's own filtered
        # J-bar and x-bar, with S x-bar kept from step to step (op.seen)
        self.J_seen, self.x_seen = self.current, self.x
        if op.seen is not None:
            self.J_seen, self.x_seen, self.sx = (signals[sig] for sig in op.seen)
        # what np.dot gives for F e (F of a user's feedback source may have
        # another dtype than the signals nengo_fa makes)
        self.fe = (
            np.empty(n, dtype=np.result_type(self.error, self.feedback))
            if given is None
            else self.given_fe
        )
        # alpha holds ones except after a step that scaled rows
        self.scaled = False
        self.warned = False

    # --- checks -----------------------------------------------------------

    def check_error(self):
        """Returns :math:`e \\cdot e` (inf if it overflowed)."""
        # e . e is finite unless e holds NaN or inf (or is huge: then the
        # exact test decides)
        ee = checked_dot(self.error, self.error)
        if not finite(ee, self.error):
            self.fail("the error")
        return ee

    def input_sq(self):
        """:math:`|x|^2` of the input the step pairs with the error,
        checked: an input whose square overflows the signals' dtype (float32:
        :math:`|x| > 1.8 \\cdot 10^{19}`) cannot give a step in that dtype
        either."""
        xx = checked_dot(self.x_seen, self.x_seen)
        if not math.isfinite(xx):
            if np.all(np.isfinite(self.x_seen)):
                self.fail(
                    "the ensemble's input is too large for the simulator's "
                    f"precision (|x|^2 overflows {self.S.dtype}) and so"
                )
            self.fail("the ensemble's input")
        return xx

    def check_feedback_error(self, nu, ee):
        # |(F e)_i| <= |F_i| |e| <= nu sqrt(n) |e|: F e cannot overflow
        # unless that bound does
        if not math.isfinite(nu):
            self.fail("the feedback")
        if not nu * math.sqrt(self.n * ee) < 0.5 * self.coef_max:
            if not np.all(np.isfinite(self.fe)):
                self.fail("F e")

    def fail(self, what):
        """Raise the `~nengo.exceptions.SimulationError` for a non-finite
        ``what``, having set every output to "no update", so that nothing of
        this step is applied even if the simulation goes on."""
        self.delta[...] = 0
        self.gain_delta[...] = 0
        self.bias_delta[...] = 0
        self.no_encoder_update()
        if self.decay > 0:
            # the filter starts again (S x-bar = S 0): what it held may not be
            # finite
            for seen in (self.J_seen, self.x_seen, self.sx):
                seen[...] = 0
        raise SimulationError(f"{self.tag}: {self.diagnose(what)}")

    def diagnose(self, what):
        """What went non-finite, where it came from, and what state is in."""
        finite = np.all(np.isfinite(self.error))
        sources = [] if finite else [f"the error ({self.error_source})"]
        if not np.all(np.isfinite(self.x)):
            sources.append("the ensemble's input x (from the connections into it)")
        if not self.feedback_finite():
            sources.append(
                "the feedback matrix F (the weights it is read from, or its "
                "feedback learning)"
            )
        if not np.all(np.isfinite(self.current)):
            sources.append(
                "the neurons' input current J (the ensemble's input, or a "
                "connection into its neurons)"
            )
        else:
            gp = self.tmp
            try:
                self.derivative(self.current, gp)
                bad = not np.all(np.isfinite(gp))
            except SimulationError as e:
                sources.append(str(e))
                bad = False
            if bad:
                sources.append(
                    f"the derivative G'(J) of the {type(self.neuron_type).__name__} "
                    "neurons (the rule's 'derivative' function, or the one "
                    "registered for the type)"
                )
        state = {"encoders": self.S, "gains": self.gain_signal, "biases": self.bias}
        broken = [k for k, v in state.items() if not np.all(np.isfinite(v))]
        if broken:
            sources.append(
                f"the ensemble's {', '.join(broken)}, already not finite: they were "
                "changed by something other than this rule"
            )
        if not sources:
            with np.errstate(all="ignore"):
                e_norm = np.sqrt(np.sum(np.square(self.error, dtype=float)))
                f_norm = (
                    np.sqrt(np.sum(np.square(self.feedback, dtype=float)))
                    if self.feedback is not None
                    else self.given_nu[0] * math.sqrt(self.n)
                )
            sources.append(
                f"overflow: a product of finite values exceeds the largest "
                f"{self.S.dtype} ({self.coef_max:.3g}); the error (norm "
                f"{e_norm:.3g}), the feedback (norm {f_norm:.3g}) or the "
                "derivative is too large"
            )
        msg = f"{what} contains NaN or inf. It came from " + "; ".join(sources)
        if broken:
            return msg + ". This rule changed nothing on this step."
        return (
            msg + ". This rule stopped before changing anything: the encoders, "
            "gains and biases are finite and as the previous step left them."
        )

    def feedback_finite(self):
        """Whether :math:`F` (or, where its operator gives them, :math:`F e`
        and :math:`\\nu`) is finite."""
        if self.feedback is None:
            return bool(np.all(np.isfinite(self.given_nu)))
        return bool(np.all(np.isfinite(self.feedback)))

    def out_of_range(self):
        """Warn, once, that a step would move a current by more than half the
        mean gain: beyond the bounds of a typical neuron, so the error or the
        input is out of the stable range (a neuron whose own gain is small
        meets its bound sooner, in normal learning, without a warning)."""
        if self.warned:
            return
        self.warned = True
        # exact for huge values too (|e|^2 may overflow where |e| does not:
        # rms_row_norm then rescales, and numpy's warning says nothing)
        with np.errstate(over="ignore"):
            e_norm = rms_row_norm(self.error.reshape(1, -1), 1)
            x_norm = rms_row_norm(self.x.reshape(1, -1), 1)
        warnings.warn(
            f"{self.tag}: the error (norm {e_norm:.3g}) or the input (norm "
            f"{x_norm:.3g}, radius {self.c.radius:g}) is so large that the step "
            "bounds cut a step short: the rule is outside its stable range, where "
            "one step moves a neuron's current by a fraction rate * dt * |e| of its "
            "range. Every step stays bounded, but this is no longer gradient "
            "descent: scale the error, the input or the rates down (see Notes in "
            "HiddenLayerRule).",
            StableRangeWarning,
        )

    def sx_from_offset(self):
        """:math:`S x = J - b - o` into ``sx`` (``op.current_offset``)."""
        np.subtract(self.current, self.bias, out=self.sx)
        np.subtract(self.sx, self.offset, out=self.sx)

    def measure_gains(self):
        """:math:`g = r |S_i|` from :math:`S`, where gains are measured (see
        ``exact_gains``)."""
        if not self.exact_gains:
            return
        if self.row_norms is None:
            np.einsum("ij,ij->i", self.S, self.S, out=self.gain)
            np.sqrt(self.gain, out=self.gain)
            np.multiply(self.gain, self.c.radius, out=self.gain)
        else:
            np.multiply(self.row_norms, self.c.radius, out=self.gain)

    def anchor_gains(self):
        """Make ``gain_delta`` take the gain signal to the measured gain plus
        the step."""
        if self.exact_gains:
            np.add(self.gain_delta, self.gain, out=self.gain_delta)
            np.subtract(self.gain_delta, self.gain_signal, out=self.gain_delta)

    # --- stages -------------------------------------------------------------

    def feedback_error(self):
        """:math:`F e` into ``fe``; returns :math:`\\nu`."""
        if self.feedback is None:
            # F e is given too: both from F's own operator, in its pass over F
            nu = float(self.given_nu[0])
        else:
            nu = self.c.feedback_norm
            if nu is None:
                nu = rms_row_norm(self.feedback, self.n)
        if not math.isfinite(nu):
            self.fail("the feedback")
        if self.FT is not None:
            np.dot(self.error, self.FT, out=self.fe)
        elif self.F is not None:
            np.dot(self.F, self.error, out=self.fe)
        return nu

    def local_error(self):
        """:math:`\\delta = (F e) \\odot G'(J)`."""
        self.derivative(self.J_seen, self.delta)
        if self.check_derivative:
            gg = checked_dot(self.delta, self.delta)
            if not finite(gg, self.delta):
                self.fail("the derivative G'(J)")
        np.multiply(self.delta, self.fe, out=self.delta)

    def check_local_error(self, encoders):
        """:math:`\\delta` and, when the encoders learn, :math:`S x`: one dot
        product, not finite if either holds NaN or inf; returns
        :math:`\\max_i |\\delta_i|`."""
        delta = self.delta
        other = self.sx if encoders else delta
        # delta . S x is not finite if either holds NaN or inf (0 * inf is NaN)
        if not finite(checked_dot(delta, other), other):
            if not np.all(np.isfinite(delta)):
                self.fail("the local error delta")
            self.fail("S x, the ensemble's encoded input,")
        return float(max(_max(delta), -_min(delta))) if self.n > 0 else 0.0

    def bias_step(self, c, d_max, g_min):
        """The bias step, bounded to half the neuron's range; returns the
        largest step. ``g_min`` is the smallest gain."""
        kb, bias_delta, tmp = self.c.bias_learning_rate, self.bias_delta, self.tmp
        if kb == 0:
            bias_delta[...] = 0
            return 0.0
        coef = min(kb * c, self.coef_max)
        np.multiply(self.delta, -coef, out=bias_delta)
        if self.n == 0:
            return 0.0
        step = coef * d_max
        if step > 0.5 * max(g_min, self.c.min_gain):
            # some step may exceed its bound: bound them all
            if step > 0.5 * self.c.gain_scale:
                self.out_of_range()
            np.maximum(self.gain, self.c.min_gain, out=tmp)
            np.multiply(tmp, 0.5, out=tmp)
            np.minimum(bias_delta, tmp, out=bias_delta)
            np.negative(tmp, out=tmp)
            np.maximum(bias_delta, tmp, out=bias_delta)
            step = _max(np.abs(bias_delta, out=tmp))
        return step

    def bias_limits(self, step):
        r"""Keep :math:`b + \Delta b \ge \theta - \iota_{max} g'` (pushing
        the bias up where the gain shrank) and from going above
        :math:`\theta + g_{max}`, with :math:`g' = g + \Delta g`."""
        c, tmp, bias_delta = self.c, self.tmp, self.bias_delta
        if c.bias_learning_rate == 0 or self.n == 0:
            return
        theta = c.threshold
        # b + max_intercept g' - theta: how far each bias is above its floor
        np.add(self.gain, self.gain_delta, out=tmp)
        np.multiply(tmp, c.max_intercept, out=tmp)
        np.add(tmp, self.bias, out=tmp)
        if _min(tmp) - theta < step:
            np.subtract(theta, tmp, out=tmp)
            np.maximum(bias_delta, tmp, out=bias_delta)
        max_bias = theta + c.max_gain
        if _max(self.bias) + step > max_bias:
            np.subtract(max_bias, self.bias, out=tmp)
            np.maximum(tmp, 0.0, out=tmp)
            np.minimum(bias_delta, tmp, out=bias_delta)

    def no_encoder_update(self):
        if self.scaled:
            self.alpha.fill(1.0)
            self.scaled = False
        self.beta.fill(0.0)
        if not self.factored:
            self.encoders_delta[...] = 0

    def step_bounds(self, c, xx, g_min, d_max):
        """:math:`\\beta = -\\kappa_E u / r^2`, each step at most half a row
        long, so that :math:`S + \\beta x` never comes near 0 (which would
        leave its direction to rounding)."""
        r, beta, tmp = self.c.radius, self.beta, self.tmp
        min_gain = self.c.min_gain
        coef = min(self.c.learning_rate * c / r**2, self.coef_max)
        np.multiply(self.delta, -coef, out=beta)
        reach = 2 * r * math.sqrt(xx) * coef * d_max
        if reach > max(g_min, min_gain):
            if reach > self.c.gain_scale:
                self.out_of_range()
            np.maximum(self.gain, min_gain, out=tmp)
            np.multiply(tmp, 0.5 / (r * math.sqrt(xx)), out=tmp)
            np.minimum(beta, tmp, out=beta)
            np.negative(tmp, out=tmp)
            np.maximum(beta, tmp, out=beta)

    def encoder_gain_step(self, xx, g_low):
        """:math:`m - g` into ``dg_E`` and :math:`\\Delta g` into ``gain_delta``;
        returns ``(dg_E, min(m), max(m))``."""
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
        np.maximum(m, 0, out=m)  # m^2 >= 0, up to rounding
        np.sqrt(m, out=m)
        # g + dg_E = m up to rounding: the floor and the ceiling are checked
        # on m
        if self.n > 0:
            m_min, m_max = _min(m), _max(m)
        else:
            m_min, m_max = self.c.min_gain, self.c.max_gain
        np.add(m, gain, out=m)
        dg_E = gain_delta if same_rates else t
        if g_low:
            dg_E[...] = 0.0
            np.divide(t, m, out=dg_E, where=m > 0)
        else:
            np.divide(t, m, out=dg_E)
        if not same_rates:
            kE, kg = self.c.learning_rate, self.c.gain_learning_rate
            # with a huge ratio the product may overflow to +-inf: the gain
            # ceiling and floor of row_scaling bound it right after
            with np.errstate(over="ignore"):
                np.multiply(dg_E, kg / kE, out=gain_delta)
        return dg_E, m_min, m_max

    def gain_step(self, c):
        """Directions fixed (:math:`\\kappa_E = 0`):
        :math:`\\Delta g = -\\kappa_g u (S x) / g`, at most half the gain;
        returns ``dg_E`` (0)."""
        tmp, gain_delta = self.tmp, self.gain_delta
        self.beta.fill(0.0)
        np.maximum(self.gain, self.c.min_gain, out=tmp)
        np.divide(self.sx, tmp, out=gain_delta)
        np.multiply(gain_delta, self.delta, out=gain_delta)
        coef = min(self.c.gain_learning_rate * c, self.coef_max)
        np.multiply(gain_delta, -coef, out=gain_delta)
        np.multiply(tmp, 0.5, out=tmp)
        if np.any(np.abs(gain_delta) > tmp):
            if _max(np.abs(gain_delta)) > 0.5 * self.c.gain_scale:
                self.out_of_range()
            np.minimum(gain_delta, tmp, out=gain_delta)
            np.negative(tmp, out=tmp)
            np.maximum(gain_delta, tmp, out=gain_delta)
        self.t.fill(0.0)
        return self.t

    def row_scaling(self, dg_E, xx):
        """:math:`g' = \\min(\\max(g + \\Delta g, g_{min}), g_{max})` and
        :math:`\\alpha = g' / m` with :math:`m = g + dg_E` the gain that
        :math:`S + \\beta x` has; a row with :math:`m = 0` has no direction
        and stays as it is."""
        g_new, m, alpha = self.tmp, self.m, self.alpha
        np.add(self.gain, self.gain_delta, out=g_new)
        np.maximum(g_new, self.c.min_gain, out=g_new)
        np.minimum(g_new, self.c.max_gain, out=g_new)
        np.add(self.gain, dg_E, out=m)
        ok = m > 0
        alpha.fill(1.0)
        np.divide(g_new, m, out=alpha, where=ok)
        np.subtract(g_new, self.gain, out=self.gain_delta)
        self.gain_delta[~ok] = 0.0
        np.multiply(self.beta, alpha, out=self.beta)
        self.scaled = True
        self.measure_bounded_rows(xx)

    def measure_bounded_rows(self, xx):
        r"""Scale the rows whose new gain :math:`g'` the floor or the ceiling
        set by :math:`\alpha = g' / (r |S_i + \beta x|)`, with the length
        measured from :math:`S`, not inferred from the gain signal.

        Elsewhere :math:`g` and :math:`r |S_i|` stay equal up to rounding:
        each step takes the gain to :math:`m`, the length of
        :math:`S_i + \beta x`, or scales both alike. A row held at a bound is
        scaled by :math:`g' / m` step after step instead, which multiplies a
        relative difference between :math:`g` and :math:`r |S_i|` by
        :math:`g^2 / m^2` each time: while the steps keep shrinking a row at
        its floor, the difference grows geometrically (measured: a row 14,000
        times longer than its gain after 35 s of a 1-D task, and the network's
        output with it). Below float64 every gain is measured already
        (``exact_gains``). Costs :math:`O(d)` per bounded row, and nothing
        while no gain is at a bound.
        """
        if self.exact_gains or self.n == 0:
            return
        c = self.c
        g_new = np.add(self.gain, self.gain_delta, out=self.tmp)
        rows = np.flatnonzero(
            (g_new <= c.min_gain * (1 + 1e-12)) | (g_new >= c.max_gain * (1 - 1e-12))
        )
        if rows.size == 0:
            return
        S = self.S[rows]
        if self.sx_is_current:
            sx = self.current[rows] - self.bias[rows]
        else:
            sx = self.sx[rows]
        # alpha > 0 on every row: g' / m, or 1
        b = self.beta[rows] / self.alpha[rows]
        mm = np.einsum("ij,ij->i", S, S) + b * (2 * sx + b * xx)
        m = c.radius * np.sqrt(np.maximum(mm, 0.0))
        ok = m > 0
        g_rows = g_new[rows]
        alpha = np.ones_like(m)
        np.divide(g_rows, m, out=alpha, where=ok)
        self.alpha[rows] = alpha
        self.beta[rows] = b * alpha
        self.gain_delta[rows] = np.where(ok, g_rows - self.gain[rows], 0.0)
        self.scaled = True

    def encoders_delta_step(self):
        """The straightforward ``(n, d)`` delta, kept as the reference that
        the factored path is tested against."""
        np.subtract(self.alpha, 1, out=self.tmp)
        np.multiply(self.beta[:, None], self.x_seen, out=self.encoders_delta)
        np.add(self.encoders_delta, self.tmp[:, None] * self.S, out=self.encoders_delta)

    # --- the step -----------------------------------------------------------

    def step_simhiddenlayerrule(self):
        self.filter_inputs()
        self.measure_gains()
        self.step()
        self.anchor_gains()

    def filter_inputs(self):
        """The step's own ``Lowpass`` of :math:`J` and :math:`x`, and
        :math:`S \\bar x` where :math:`J - b = S x` (see
        `.SimHiddenLayerRule`); nothing without one."""
        a = self.decay
        if a == 0:
            return
        x_seen, J_seen, sx = self.x_seen, self.J_seen, self.sx
        # |x-bar|^2 of the previous step, which the recurrence below needs
        xx_prev = checked_dot(x_seen, x_seen) if self.from_current else 0.0
        for seen, now in ((x_seen, self.x), (J_seen, self.current)):
            np.multiply(seen, a, out=seen)
            seen += (1 - a) * now
        if self.from_current:
            # S x-bar after the encoder update took S to alpha S + beta x-bar^T
            np.multiply(sx, self.alpha, out=sx)
            np.multiply(self.beta, xx_prev, out=self.tmp)
            np.add(sx, self.tmp, out=sx)
            np.multiply(sx, a, out=sx)
            np.subtract(self.current, self.bias, out=self.tmp)
            np.multiply(self.tmp, 1 - a, out=self.tmp)
            np.add(sx, self.tmp, out=sx)
            # a rounding error is carried on times a alpha: rows that were
            # scaled up (at the gain floor) are measured instead
            if self.n > 0 and _max(self.alpha) > 1:
                rows = np.flatnonzero(self.alpha > 1)
                sx[rows] = self.S[rows] @ x_seen

    def step(self):
        ee = self.check_error()
        nu = self.feedback_error()
        self.check_feedback_error(nu, ee)
        self.local_error()
        learns_encoders = self.c.learns_encoders
        xx = 0.0
        if learns_encoders:
            xx = self.input_sq()
        encoders = learns_encoders and xx > 0 and nu > 0
        if encoders:
            if self.sx_is_current:
                np.subtract(self.current, self.bias, out=self.sx)
            elif self.offset is not None:
                self.sx_from_offset()
            elif not self.from_current:
                np.dot(self.S, self.x_seen, out=self.sx)
            # else: S x-bar, kept by filter_inputs
        d_max = self.check_local_error(encoders)
        if nu == 0:
            # no feedback yet (e.g. a readout that starts at zero)
            self.gain_delta[...] = 0
            self.bias_delta[...] = 0
            if learns_encoders:
                self.no_encoder_update()
            return
        # u = c delta is never formed: c is folded into the scalars
        c = min(self.c.scale / nu, self.coef_max)
        g_min = _min(self.gain) if self.n > 0 else self.c.min_gain
        step = self.bias_step(c, d_max, g_min)
        if encoders:
            self.encoder_update(c, xx, d_max, g_min)
        else:
            # nothing to learn from: p = 0 and beta x = 0
            self.gain_delta[...] = 0
            if learns_encoders:
                self.no_encoder_update()
        self.bias_limits(step)

    def encoder_update(self, c, xx, d_max, g_min):
        min_gain = self.c.min_gain
        g_low = g_min < min_gain  # rare
        if self.c.learning_rate > 0:
            self.step_bounds(c, xx, g_min, d_max)
            dg_E, m_min, m_max = self.encoder_gain_step(xx, g_low)
        else:
            dg_E, m_min, m_max = self.gain_step(c), None, None
        # with equal rates, g' = m and alpha = 1 unless a gain would leave
        # [g_min, g_max]
        if (
            self.c.same_rates
            and not g_low
            and m_min >= min_gain * (1 + 1e-9)
            and m_max <= self.c.max_gain
        ):
            if self.scaled:
                self.alpha.fill(1.0)
                self.scaled = False
        else:
            self.row_scaling(dg_E, xx)
        if self.factored:
            self.x_out[...] = self.x_seen
        else:
            self.encoders_delta_step()


def compiled_step(op, signals, numpy_step):
    """A step of `.SimHiddenLayerRule` in compiled loops.

    The derivative's compiled form (`.kernels.derivative_loop`) writes
    :math:`G'(J)`; `.kernels.hidden_layer_prologue` does the checks and the
    feedback error; `.kernels.hidden_layer_update` the local error, bias step,
    step bounds, encoder/gain step and row scaling;
    `.kernels.hidden_layer_finish` bounds the bias step, applies the bias
    limits and checks :math:`\\delta` and :math:`S x`; where :math:`S x` is
    :math:`J - b` (or, with the step's own filter, :math:`S \\bar x` is kept
    from it: `.kernels.filter_inputs`, first), the three go in one call
    (`.kernels.hidden_layer_step`).
    :math:`G'(J)` of a derivative without a compiled form, :math:`F e` of a
    feedback that its own operator does not give (a user's feedback source,
    not a transpose), and :math:`S x` when it cannot be read as :math:`J - b`
    stay numpy calls; the rare cases that the prologue reports go to the
    numpy stages (``numpy_step``, a `NumpyStep`).
    """
    s = numpy_step
    c = op.constants
    params = c.kernel_params(s.coef_max)
    kernel_FT, feedback_error = _feedback_error_outside(s, params)
    stages = _compiled_stages(s, params, kernel_FT)
    derivative, derivative_args = _derivative_call(s)
    filter_inputs = _filter_inputs(s)
    current, delta, gain, gain_delta = s.J_seen, s.delta, s.gain, s.gain_delta

    exact_gains = s.exact_gains
    if exact_gains:
        gain_signal = s.gain_signal
        if s.row_norms is None:
            row_norms = kernels.compiled(kernels.row_norms)
            S = s.S

            def measure_gains():
                row_norms(S, c.radius, gain)

        else:
            # measured by the encoder update, in its pass over S
            measure_gains = s.measure_gains

    def step_simhiddenlayerrule():
        if filter_inputs is not None:
            filter_inputs()
        if exact_gains:
            measure_gains()
        if feedback_error is not None:
            feedback_error()
        derivative(current, delta, *derivative_args)
        if not stages():
            # a rare case, which the numpy stages handle
            s.step()
            s.anchor_gains()
            return
        if params[kernels.N_BAD]:
            s.scaled = True  # alpha may hold anything: reset it
            s.fail("the local error delta or S x")
        if params[kernels.N_BOUNDED]:
            s.out_of_range()
        if exact_gains:
            np.add(gain_delta, gain, out=gain_delta)
            np.subtract(gain_delta, gain_signal, out=gain_delta)

    return step_simhiddenlayerrule


def _filter_inputs(s):
    """``filter_inputs()`` of the step's own ``Lowpass`` (`NumpyStep`'s
    ``filter_inputs``, compiled: `.kernels.filter_inputs`), or None."""
    if s.decay == 0:
        return None
    kernel = kernels.compiled(kernels.filter_inputs)
    args = (s.current, s.x, s.bias, s.J_seen, s.x_seen, s.sx, s.alpha, s.beta, s.S)
    a, recur = s.decay, s.from_current

    def filter_inputs():
        kernel(*args, a, recur)

    return filter_inputs


def _derivative_call(s):
    """``(derivative, args)``: ``derivative(J, out, *args)`` writes
    :math:`G'(J)`, compiled where the derivative has a compiled form."""
    compiled_derivative = kernels.derivative_loop(s.derivative)
    if compiled_derivative is None:
        return s.derivative, ()
    return compiled_derivative


def _compiled_stages(s, params, kernel_FT):
    """``stages()`` of `compiled_step`: the prologue, the update and the
    finish; returns False, having written nothing but :math:`F e`, in the
    rare cases that the prologue reports. Where :math:`S x` is :math:`J - b`
    (or kept from it) the three are one call (`.kernels.hidden_layer_step`),
    which leaves the
    finish to this function when a gain met its floor or its ceiling; with
    ``current_offset``, :math:`S x = J - b - o` goes to ``sx`` before it."""
    prologue = kernels.compiled(kernels.hidden_layer_prologue)
    update = kernels.compiled(kernels.hidden_layer_update)
    finish = kernels.compiled(kernels.hidden_layer_finish)
    no_feedback = kernels.compiled(kernels.hidden_layer_no_feedback)
    error, fe, delta, current = s.error, s.fe, s.delta, s.current
    x, S, sx, x_out, gain, bias = s.x_seen, s.S, s.sx, s.x_out, s.gain, s.bias
    bias_delta, beta, gain_delta, alpha = s.bias_delta, s.beta, s.gain_delta, s.alpha
    scratch = s.tmp
    finish_args = (delta, current, bias, sx, gain, bias_delta, gain_delta, params)

    def finish_clipped():
        s.measure_bounded_rows(params[kernels.INPUT_SQ])
        finish(*finish_args)

    if not s.from_current and s.offset is None:
        # S x (or S x-bar) from S
        update_args = (fe, delta, current, bias, sx, x, x_out, gain)
        update_args += (bias_delta, beta, gain_delta, alpha, params)

        no_feedback_args = (fe, delta, bias_delta, gain_delta, beta, alpha, params)

        def stages():
            code = prologue(error, kernel_FT, fe, x, scratch, params)
            if code == kernels.NO_FEEDBACK:
                no_feedback(*no_feedback_args)
                s.scaled = False
                return True
            if code:
                return False
            np.dot(S, x, out=sx)
            s.scaled = update(*update_args) > 0
            if params[kernels.N_CLIPPED]:
                finish_clipped()
            else:
                finish(*finish_args)
            return True

        return stages

    fused = kernels.compiled(kernels.hidden_layer_step)
    args = (error, kernel_FT, fe, x, scratch, delta, current, bias, sx, x_out)
    args += (gain, bias_delta, beta, gain_delta, alpha, params)
    # S x = J - b - o, given to the loops in sx (params' from_current is 0)
    sx_from_offset = None if s.offset is None else s.sx_from_offset

    def stages():
        if sx_from_offset is not None:
            sx_from_offset()
        n_scaled = fused(*args)
        if n_scaled < 0:
            return False
        s.scaled = n_scaled > 0
        if params[kernels.N_CLIPPED]:
            finish_clipped()
        return True

    return stages


def compiled_local_step(op, signals, numpy_step):
    """A step of `.SimHiddenLayerRule` in compiled loops for a rule that
    learns neither encoders nor gains (``modifies="weights"``, or biases
    only): the derivative's compiled form, `.kernels.hidden_layer_prologue`
    (checks and feedback error), `.kernels.local_error_bias` (local error and
    bias step) and `.kernels.hidden_layer_finish` (bias bounds and limits, and
    the check of :math:`\\delta`). Without an encoder step, :math:`x` is not
    read: the prologue is given :math:`|x|^2 = 1` and the finish no
    :math:`S x` (zeros). The rare cases go to ``numpy_step`` as in
    `compiled_step`."""
    s = numpy_step
    prologue = kernels.compiled(kernels.hidden_layer_prologue)
    local = kernels.compiled(kernels.local_error_bias)
    finish = kernels.compiled(kernels.hidden_layer_finish)
    params = op.constants.kernel_params(s.coef_max)
    # S x is zeros, not J - b: only delta is checked
    params[kernels.RULE_PARAMS.index("from_current")] = 0.0
    kernel_FT, feedback_error = _feedback_error_outside(s, params)
    unit_x = np.ones(1, dtype=s.x.dtype)
    no_projection = np.zeros(s.n, dtype=s.S.dtype)
    error, fe, delta, current = s.error, s.fe, s.delta, s.J_seen
    bias, gain, scratch = s.bias, s.gain, s.tmp
    bias_delta, gain_delta = s.bias_delta, s.gain_delta
    derivative, derivative_args = _derivative_call(s)
    filter_inputs = _filter_inputs(s)

    def step_simhiddenlayerrule():
        if filter_inputs is not None:
            filter_inputs()
        if feedback_error is not None:
            feedback_error()
        derivative(current, delta, *derivative_args)
        if prologue(error, kernel_FT, fe, unit_x, scratch, params):
            # a rare case (no feedback, a non-finite error or feedback)
            s.step()
            return
        local(fe, delta, bias_delta, gain_delta, params)
        finish(
            delta, current, bias, no_projection, gain, bias_delta, gain_delta, params
        )
        if params[kernels.N_BAD]:
            s.fail("the local error delta")
        if params[kernels.N_BOUNDED]:
            s.out_of_range()

    return step_simhiddenlayerrule


def _feedback_error_outside(s, params):
    """``(FT, step)``: :math:`F^T` as the compiled prologue reads it, and a
    function that does what the prologue cannot, before it (or None).

    The prologue computes :math:`F e` and :math:`\\nu` from a C-contiguous
    :math:`F^T`. Otherwise it is given no rows, and ``step`` puts
    :math:`F e` into ``fe`` and :math:`\\nu` into ``params``: read from
    the signals that :math:`F`'s own operator set (a `.FeedbackError`), or
    computed with numpy (a user's feedback source whose :math:`F` is no
    transpose)."""
    no_rows = np.empty((0, s.n), dtype=s.S.dtype)
    if s.F is None:
        given_nu = s.given_nu

        def step():
            params[kernels.GIVEN_NORM] = given_nu[0]

        return no_rows, step
    if s.FT is not None and s.FT.flags.c_contiguous:
        return s.FT, None
    F, error, fe, feedback, n = s.F, s.error, s.fe, s.feedback, s.n
    fixed = s.c.feedback_norm is not None

    def step():
        if not fixed:
            params[kernels.GIVEN_NORM] = rms_row_norm(feedback, n)
        np.dot(F, error, out=fe)

    return no_rows, step
