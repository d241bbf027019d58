"""NengoDL builders of `.SimERBP` and `.SimERBPWeights` (`.ERBP`)."""

import numpy as np
import tensorflow as tf
from nengo_dl.builder import Builder

from nengo_fa.builder import SimERBP, SimERBPWeights
from nengo_fa.builder.numerics import rms_row_norm
from nengo_fa.dl.common import StackedBuilder, same_shapes, scatter


@Builder.register(SimERBP)
class SimERBPBuilder(StackedBuilder):
    r"""Build a group of `.SimERBP` operators: the dendrite
    :math:`U \leftarrow a U + (1 - a) B e`, the boxcar gate :math:`\Theta`,
    :math:`\hat\delta = U \Theta / \nu`, and from :math:`u = k \hat\delta`
    the factors :math:`(u, s)` (``"inplace"``), the weight delta
    :math:`u s^T \Delta t` (``"delta"``) or the encoder delta :math:`u x^T`
    (``"encoders"``). A NaN or inf in the error stops the run
    (``tf.debugging.check_numerics``)."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        dtype = signals.dtype
        self.kind = ops[0].kind
        self.dt = signals.dt_val
        self.error_data = self.stack(signals, lambda op: op.error)
        self.state_data = self.stack(signals, lambda op: op.state)
        self.source_data = self.stack(signals, lambda op: op.source)
        self.local_data = [
            self.stack(signals, lambda op, i=i: op.updates[i], output=True)
            for i in range(3)
        ]
        self.prev_data = [
            self.stack(signals, lambda op, i=i: op.updates[i]) for i in range(3)
        ]
        self.output_data = [
            self.stack(signals, lambda op, i=i: op.outputs[i], output=True)
            for i in range(len(ops[0].outputs))
        ]
        self.feedback = self.per_op([op.feedback for op in ops], dtype, 2)
        n = ops[0].feedback.shape[0]
        inv_nu = []
        for op in ops:
            nu = rms_row_norm(np.asarray(op.feedback, dtype=float), n)
            inv_nu.append(1.0 / nu if nu > 0 else 0.0)
        self.inv_nu = self.per_op(inv_nu, dtype, 1)  # (1, K, 1)
        self.coef = self.per_op([op.coef for op in ops], dtype, 1)  # (1, K, n)
        self.decay = self.per_op([op.decay for op in ops], dtype, 1)
        window = np.array([op.window for op in ops], dtype=float)  # (K, 4)
        self.low, self.high, self.offset, self.scale = (
            self.per_op(window[:, i], dtype, 1) for i in range(4)
        )

    def build_step(self, signals):
        error = tf.debugging.check_numerics(
            self.gather(signals, self.error_data),
            "nengo_fa: the error of an ERBP rule contains NaN or inf; stopping "
            "before anything changes",
        )  # (B, K, e)
        U = self.gather(signals, self.prev_data[0])  # (B, K, n)
        fe = tf.reduce_sum(self.feedback * error[..., None, :], axis=-1)
        U = self.decay * U + (1 - self.decay) * fe
        v = (self.gather(signals, self.state_data) - self.offset) / self.scale
        gate = tf.cast((v > self.low) & (v < self.high), U.dtype)
        delta = U * gate * self.inv_nu
        u = self.coef * delta
        for data, value in zip(self.local_data, (U, gate, delta)):
            scatter(signals, data, value)
        source = self.gather(signals, self.source_data)
        if self.kind == "inplace":
            scatter(signals, self.output_data[0], u)
            scatter(signals, self.output_data[1], source)
        elif self.kind == "encoders":
            scatter(
                signals, self.output_data[0], u[..., :, None] * source[..., None, :]
            )
        else:
            outer = u[..., :, None] * (source * self.dt)[..., None, :]
            scatter(signals, self.output_data[0], outer)

    @staticmethod
    def mergeable(x, y):
        return same_shapes(x, y) and x.kind == y.kind


@Builder.register(SimERBPWeights)
class SimERBPWeightsBuilder(StackedBuilder):
    r"""Build a group of `.SimERBPWeights` operators:
    :math:`W \leftarrow W + u s'^T \Delta t`, then :math:`y \mathrel{+}= W s`.
    TensorFlow computes both densely (the same values; the event-driven
    saving is the reference simulator's)."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        self.dt = signals.dt_val
        self.weights_data = self.stack(signals, lambda op: op.weights)
        self.weights_out = self.stack(signals, lambda op: op.weights, output=True)
        self.u_data = self.stack(signals, lambda op: op.u)
        self.last_data = self.stack(signals, lambda op: op.last_spikes)
        self.spikes_data = self.stack(signals, lambda op: op.spikes)
        self.output_data = self.stack(signals, lambda op: op.output, output=True)

    def build_step(self, signals):
        W = self.gather(signals, self.weights_data)  # (B, K, n_post, n_pre)
        u = self.gather(signals, self.u_data)
        last = self.gather(signals, self.last_data)
        W = W + u[..., :, None] * (last * self.dt)[..., None, :]
        scatter(signals, self.weights_out, W)
        s = self.gather(signals, self.spikes_data)
        scatter(
            signals,
            self.output_data,
            tf.reduce_sum(W * s[..., None, :], axis=-1),
            mode="inc",
        )
