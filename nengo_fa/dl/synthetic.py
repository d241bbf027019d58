"""NengoDL builder of `.SimSyntheticGradient` (synthetic gradients)."""

import numpy as np
import tensorflow as tf
from nengo.exceptions import BuildError
from nengo_dl.builder import Builder

from nengo_fa.builder import SimSyntheticGradient
from nengo_fa.dl.common import StackedBuilder, angle, rms, same_shapes, scatter
from nengo_fa.dl.derivatives import FAMILIES
from nengo_fa.dl.hidden_layer import op_derivative


def _norm(x):
    return tf.sqrt(tf.reduce_sum(tf.square(x), axis=-1, keepdims=True))


def _matvec(M, v):
    """``M v`` over the trailing axes: ``(..., n, m) x (..., m) -> (..., n)``."""
    return tf.reduce_sum(M * v[..., None, :], axis=-1)


@Builder.register(SimSyntheticGradient)
class SimSyntheticGradientBuilder(StackedBuilder):
    r"""Build a group of `.SimSyntheticGradient` operators: the same stages
    (*buffer*, *availability*, *prediction*, *regression*), with the
    data-dependent branches of the numpy step as masks."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        op = ops[0]
        self.transposed = op.transposed
        # M kept as F P (`.SimSyntheticGradient`'s ``factored``)
        self.factored = op.factored
        self.n = op.activities.shape[0]
        self.reads = [
            self.stack(signals, lambda op, i=i: op.reads[i])
            for i in range(len(op.reads))
        ]
        self.state_in = [
            self.stack(signals, lambda op, i=i: op.updates[i]) for i in range(7)
        ]
        self.state_out = [
            self.stack(signals, lambda op, i=i: op.updates[i], output=True)
            for i in range(7)
        ]
        self.fe_data = self.stack(signals, lambda op: op.sets[0], output=True)
        self.nu_data = self.stack(signals, lambda op: op.sets[1], output=True)
        dtype = signals.dtype
        self.rate = self.per_op([op.rate for op in ops], dtype, 1)
        self.power = self.per_op([op.power for op in ops], dtype, 1)
        self.context_scale = self.per_op([op.context_scale for op in ops], dtype, 1)
        self.gap = self.per_op([op.gap for op in ops], dtype, 1)
        families = [op_derivative(op) for op in ops]
        self.derivative = FAMILIES[families[0][0]]
        self.derivative_params = {
            key: self.per_op([params[key] for _, params in families], dtype, 1)
            for key in families[0][1]
        }

    def build_step(self, signals):
        e, F, a, J = (self.gather(signals, d) for d in self.reads[:4])
        M, zbuf, jbuf, since, true_delta, pred_error, prediction_angle = (
            self.gather(signals, d) for d in self.state_in
        )
        e = tf.debugging.check_numerics(e, "SyntheticGradient: the error")
        z = a
        if len(self.reads) > 4:
            c = self.gather(signals, self.reads[4])
            z = tf.concat([a, c * self.context_scale], axis=-1)
        shape = tf.shape(M)[:2]
        z = tf.broadcast_to(z, tf.concat([shape, tf.shape(z)[-1:]], 0))
        J = tf.broadcast_to(J, tf.concat([shape, tf.shape(J)[-1:]], 0))
        # buffer: the oldest row is the state the error belongs to
        zbuf = tf.concat([zbuf[:, :, 1:], z[:, :, None]], axis=2)
        jbuf = tf.concat([jbuf[:, :, 1:], J[:, :, None]], axis=2)
        # availability
        available = tf.reduce_any(tf.not_equal(e, 0), axis=-1, keepdims=True)
        since = tf.where(available, tf.zeros_like(since), since + 1)
        # prediction
        if self.transposed:
            g = tf.reduce_sum(F * e[..., :, None], axis=-2)
        else:
            g = tf.reduce_sum(F * e[..., None, :], axis=-1)
        if self.factored:
            # M z = F (P z)
            fe = _matvec(F, _matvec(M, z))
        else:
            fe = _matvec(M, z)
        fe = tf.where(since <= self.gap, fe, tf.zeros_like(g))
        scatter(signals, self.fe_data, fe)
        scatter(signals, self.nu_data, rms(F, self.n)[..., None])
        # regression, and the diagnostics, on steps with an error
        z_tau, j_tau = zbuf[:, :, 0], jbuf[:, :, 0]
        if self.factored:
            # the residual in the error's space: M z_tau - F e = F (P z_tau - e)
            pz = _matvec(M, z_tau)
            residual = pz - e
            pred, r = _matvec(F, pz), _matvec(F, residual)
        else:
            pred = _matvec(M, z_tau)
            r = residual = pred - g
        gp = self.derivative(j_tau, **self.derivative_params)
        new_true = g * gp
        ref = _norm(new_true)
        new_angle = angle(
            tf.reduce_sum(pred * gp * new_true, axis=-1, keepdims=True),
            _norm(pred * gp),
            ref,
        )
        has_ref = ref > 0
        new_error = tf.where(
            has_ref,
            _norm(r * gp) / tf.where(has_ref, ref, tf.ones_like(ref)),
            np.nan * tf.ones_like(ref),
        )
        zz = tf.reduce_sum(tf.square(z_tau), axis=-1, keepdims=True)
        step = self.rate / tf.maximum(zz, self.power)
        new_M = M - (step * residual)[..., None] * z_tau[..., None, :]
        outputs = (
            tf.where(available[..., None], new_M, M),
            zbuf,
            jbuf,
            since,
            tf.where(available, new_true, true_delta),
            tf.where(available, new_error, pred_error),
            tf.where(available, new_angle, prediction_angle),
        )
        for data, value in zip(self.state_out, outputs):
            scatter(signals, data, value)

    @staticmethod
    def mergeable(x, y):
        if not same_shapes(x, y) or x.transposed != y.transposed:
            return False
        if x.factored != y.factored:
            return False
        try:
            return op_derivative(x)[0] == op_derivative(y)[0]
        except BuildError:
            return False
