"""NengoDL builders of `.SimTopTarget` and `.SimDifferenceTarget`
(`.DifferenceTargetProp`)."""

import tensorflow as tf
from nengo_dl.builder import Builder

from nengo_fa.builder import SimDifferenceTarget, SimTopTarget
from nengo_fa.dl.common import StackedBuilder, same_shapes, scatter
from nengo_fa.dl.derivatives import FAMILIES
from nengo_fa.dl.hidden_layer import op_derivative


def _safe_divide(num, den):
    """``num / den`` where ``den > 0``, else 0."""
    live = den > 0
    return tf.where(live, num / tf.where(live, den, tf.ones_like(den)), 0 * num)


@Builder.register(SimTopTarget)
class SimTopTargetBuilder(StackedBuilder):
    r"""Build a group of `.SimTopTarget` operators:
    :math:`\Delta_L = \alpha D^T e`, :math:`\alpha = \eta / \|D\|_F^2`,
    :math:`\nu_L = \alpha \|D\|_F / \sqrt n`, :math:`\hat h_L = h_L -
    \Delta_L` (0 and 0 while :math:`D = 0`)."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        self.n = ops[0].activities.shape[0]
        self.weights_data = self.stack(signals, lambda op: op.weights)
        self.error_data = self.stack(signals, lambda op: op.error)
        self.activity_data = self.stack(signals, lambda op: op.activities)
        self.disp_data = self.stack(signals, lambda op: op.displacement, output=True)
        self.norm_data = self.stack(signals, lambda op: op.norm, output=True)
        self.target_data = self.stack(signals, lambda op: op.target, output=True)
        self.eta = self.per_op([op.target_step for op in ops], signals.dtype, 0)

    def build_step(self, signals):
        D = self.gather(signals, self.weights_data)  # (B, K, d_out, n)
        e = self.gather(signals, self.error_data)  # (B, K, d_out)
        h = self.gather(signals, self.activity_data)  # (B, K, n)
        dd = tf.reduce_sum(tf.square(D), axis=(-2, -1))  # (B, K)
        alpha = _safe_divide(self.eta + 0 * dd, dd)
        disp = alpha[..., None] * tf.reduce_sum(D * e[..., :, None], axis=-2)
        scatter(signals, self.disp_data, disp)
        scatter(signals, self.norm_data, alpha * tf.sqrt(dd / self.n))
        scatter(signals, self.target_data, h - disp)


@Builder.register(SimDifferenceTarget)
class SimDifferenceTargetBuilder(StackedBuilder):
    r"""Build a group of `.SimDifferenceTarget` operators: the difference
    target through :math:`Q`, the reconstruction error, and the normalised
    LMS step of :math:`[Q, c]`.

    The corruption :math:`\xi` is drawn by TensorFlow (``tf.random.normal``),
    so with ``noise > 0`` the numbers differ from the reference simulator's;
    with ``noise=0`` the two agree to rounding.
    """

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        dtype = signals.dtype
        self.n = ops[0].activities.shape[0]
        self.inverse_in = self.stack(signals, lambda op: op.inverse)
        self.inverse_out = self.stack(signals, lambda op: op.inverse, output=True)
        self.down_disp = self.stack(signals, lambda op: op.down_displacement)
        self.down_norm = self.stack(signals, lambda op: op.down_norm)
        self.activity_data = self.stack(signals, lambda op: op.activities)
        self.down_activity_data = self.stack(signals, lambda op: op.down_activities)
        self.forward_data = self.stack(signals, lambda op: op.forward)
        self.current_data = self.stack(signals, lambda op: op.down_current)
        self.error_data = self.stack(signals, lambda op: op.error, output=True)
        self.disp_data = self.stack(signals, lambda op: op.displacement, output=True)
        self.norm_data = self.stack(signals, lambda op: op.norm, output=True)
        self.target_data = self.stack(signals, lambda op: op.target, output=True)
        self.rho_data = self.stack(
            signals, lambda op: op.reconstruction_error, output=True
        )
        self.a_bar_up = self.per_op([op.activity_scales[1] for op in ops], dtype, 1)
        self.sigma_a = self.per_op(
            [op.noise * op.activity_scales[0] for op in ops], dtype, 1
        )
        families = [op_derivative(op) for op in ops]
        self.derivative = FAMILIES[families[0][0]]
        self.derivative_params = {
            key: self.per_op([params[key] for _, params in families], dtype, 0)
            for key in families[0][1]
        }
        self.step_size = self.per_op(
            [op.learning_rate * signals.dt_val for op in ops], dtype, 2
        )

    def build_step(self, signals):
        QC = self.gather(signals, self.inverse_in)  # (B, K, n, m + 1)
        d_up = self.gather(signals, self.down_disp)  # (B, K, m)
        nu_up = self.gather(signals, self.down_norm)[..., 0]  # (B, K)
        h = self.gather(signals, self.activity_data)  # (B, K, n)
        h_up = self.gather(signals, self.down_activity_data)  # (B, K, m)
        Q = QC[..., :-1]
        c = QC[..., -1]
        disp = tf.reduce_sum(Q * d_up[..., None, :], axis=-1)
        qq = tf.maximum(
            tf.reduce_sum(tf.square(QC), axis=(-2, -1))
            - tf.reduce_sum(tf.square(c), axis=-1),
            0,
        )
        scatter(signals, self.error_data, d_up)
        scatter(signals, self.disp_data, disp)
        scatter(signals, self.norm_data, tf.sqrt(qq / self.n) * nu_up)
        scatter(signals, self.target_data, h - disp)

        ones = tf.ones_like(h_up[..., :1])
        z = tf.concat([h_up, ones * self.a_bar_up], axis=-1)  # (B, K, m + 1)
        r = tf.reduce_sum(QC * z[..., None, :], axis=-1) - h
        hh = tf.reduce_sum(tf.square(h), axis=-1)
        rho = tf.sqrt(_safe_divide(tf.reduce_sum(tf.square(r), axis=-1), hh))
        scatter(signals, self.rho_data, rho)
        # h_l + eps, and layer l+1's response to it, to first order
        eps = tf.random.normal(tf.shape(h), dtype=h.dtype) * self.sigma_a
        M = self.gather(signals, self.forward_data)  # (B, K, m, n)
        J = self.gather(signals, self.current_data)  # (B, K, m)
        gp = self.derivative(
            J, **{k: v[..., None] for k, v in self.derivative_params.items()}
        )
        u = tf.reduce_sum(M * eps[..., None, :], axis=-1) * gp
        z = z + tf.concat([u, 0 * ones], axis=-1)
        r = tf.reduce_sum(QC * z[..., None, :], axis=-1) - h - eps
        zz = tf.reduce_sum(tf.square(z), axis=-1)
        step = self.step_size * r[..., :, None] * z[..., None, :]
        scatter(signals, self.inverse_out, QC - step / zz[..., None, None])

    @staticmethod
    def mergeable(x, y):
        return same_shapes(x, y) and op_derivative(x)[0] == op_derivative(y)[0]
