"""NengoDL builder of `.SimLRATarget` (local representation alignment)."""

import numpy as np
import tensorflow as tf
from nengo.exceptions import BuildError
from nengo_dl.builder import Builder

from nengo_fa.builder import SimLRATarget
from nengo_fa.dl.common import StackedBuilder, same_shapes, scatter
from nengo_fa.dl.derivatives import FAMILIES
from nengo_fa.dl.hidden_layer import op_derivative


@Builder.register(SimLRATarget)
class SimLRATargetBuilder(StackedBuilder):
    r"""Build a group of `.SimLRATarget` operators (see there for the
    equations): the Cauchy error between the neurons' rates and their target
    rates, bounded, as the rule's feedback error. Operators are merged only
    when they share a rate table and a derivative family."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        dtype = signals.dtype
        self.error_data = self.stack(signals, lambda op: op.error)
        self.current_data = self.stack(signals, lambda op: op.current)
        self.feedback_data = self.stack(signals, lambda op: op.feedback)
        self.fe_data = self.stack(signals, lambda op: op.fe, output=True)
        self.nu_data = self.stack(signals, lambda op: op.nu, output=True)
        # the rule's own filter of the current (see mergeable)
        self.seen_data = None
        if ops[0].seen is not None:
            # written as the other outputs are, read as the current is
            self.seen_flat = self.stack(signals, lambda op: op.seen, output=True)
            self.seen_data = self.seen_flat.reshape((len(ops), ops[0].seen.shape[0]))
        table = ops[0].table
        # the numpy interpolation's own position scale, to the last bit
        interpolator = table.interpolator(1)
        self.J0, self.inv_dJ = interpolator.J0, interpolator.inv_dJ
        self.last = len(table.values) - 1
        self.values = tf.constant(table.values, dtype=dtype)
        self.slopes = tf.constant(np.diff(table.values), dtype=dtype)
        n = ops[0].fe.shape[0]

        def per_op(f):
            return self.per_op([f(op.constants) for op in ops], dtype, 1)

        self.shift = per_op(lambda c: -c.target_step * c.gain_scale / c.feedback_norm)
        self.to_error = per_op(lambda c: 1.0 / (c.gain_scale * c.derivative_scale))
        self.inv_sigma = per_op(lambda c: 1.0 / c.cauchy_scale)
        self.decay = per_op(lambda c: c.pre_decay)
        self.bound = self.per_op(
            [
                op.constants.max_local_error * op.constants.derivative_scale * n**0.5
                for op in ops
            ],
            dtype,
            0,
        )
        families = [op_derivative(op) for op in ops]
        self.derivative = FAMILIES[families[0][0]]
        self.derivative_params = {
            key: self.per_op([params[key] for _, params in families], dtype, 0)
            for key in families[0][1]
        }

    def rate(self, J):
        """:math:`G(J)`, interpolated in the table, clamped at its ends."""
        pos = tf.clip_by_value((J - self.J0) * self.inv_dJ, 0.0, float(self.last))
        index = tf.minimum(tf.cast(tf.floor(pos), tf.int32), self.last - 1)
        weight = pos - tf.cast(index, J.dtype)
        return tf.gather(self.values, index) + weight * tf.gather(self.slopes, index)

    def build_step(self, signals):
        e = self.gather(signals, self.error_data)  # (B, K, d)
        J = self.gather(signals, self.current_data)  # (B, K, n)
        if self.seen_data is not None:
            a = self.decay
            J = a * self.gather(signals, self.seen_data) + (1.0 - a) * J
            scatter(signals, self.seen_flat, J)
        B = self.gather(signals, self.feedback_data)  # (B, K, n, d)
        target = J + self.shift * tf.reduce_sum(B * e[..., None, :], axis=-1)
        m = (self.rate(J) - self.rate(target)) * self.to_error
        psi = m / (1.0 + tf.square(m * self.inv_sigma))
        gp = self.derivative(
            J, **{k: v[..., None] for k, v in self.derivative_params.items()}
        )
        norm = tf.sqrt(tf.reduce_sum(tf.square(psi * gp), axis=-1))
        bound = self.bound
        over = norm > bound
        ones = tf.ones_like(norm)
        scale = tf.where(over, bound / tf.where(over, norm, ones), ones)
        scatter(signals, self.fe_data, psi * scale[..., None])
        scatter(signals, self.nu_data, tf.ones_like(norm))

    @staticmethod
    def mergeable(x, y):
        if not same_shapes(x, y) or (x.seen is None) != (y.seen is None):
            return False
        tx, ty = x.table, y.table
        if (tx.J0, tx.dJ) != (ty.J0, ty.dJ) or not np.array_equal(tx.values, ty.values):
            return False
        try:
            return op_derivative(x)[0] == op_derivative(y)[0]
        except BuildError:
            return False
