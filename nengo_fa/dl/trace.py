"""NengoDL builders of `.SimTraceError` (`.TraceRule`'s outcome, expectation,
phase and feedback error) and `.SimTopDownNudge` (its nudge)."""

import numpy as np
import tensorflow as tf
from nengo_dl.builder import Builder

from nengo_fa.builder import SimTopDownNudge, SimTraceError
from nengo_fa.dl.common import StackedBuilder, scatter


@Builder.register(SimTraceError)
class SimTraceErrorBuilder(StackedBuilder):
    r"""Build a group of `.SimTraceError` operators, the same stages as its
    numpy step: *phase* :math:`p = [\max_k |e_k| > \theta_p]`, *outcome*
    :math:`J_f`, *expectation* :math:`J_s` (held while :math:`p = 1`), and
    the *feedback error* :math:`p \, c \, (J_s - J_f)` with :math:`\nu`."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        ops = self.ops
        dtype = signals.dtype
        self.k = len(ops)
        self.n = ops[0].current.shape[0]
        self.current_data = self.stack(signals, lambda op: op.current)
        self.error_data = self.stack(signals, lambda op: op.error)
        self.outcome_data = self.stack(signals, lambda op: op.outcome, output=True)
        self.expectation_data = self.stack(
            signals, lambda op: op.expectation, output=True
        )
        self.phase_data = self.stack(signals, lambda op: op.phase, output=True)
        self.fe_data = self.stack(signals, lambda op: op.fe, output=True)
        self.nu_data = self.stack(signals, lambda op: op.nu, output=True)

        def per_op(attr):
            return self.per_op([getattr(op, attr) for op in ops], dtype, 1)

        self.fast_decay, self.slow_decay = per_op("fast_decay"), per_op("slow_decay")
        self.scale, self.threshold = per_op("scale"), per_op("threshold")
        self.nu = per_op("feedback_norm")  # (1, K, 1)

    def state(self, signals, data, size):
        x = self.gather(signals, data)
        return tf.reshape(x, (-1, self.k, size))

    def build_step(self, signals):
        J = self.gather(signals, self.current_data)  # (B, K, n)
        e = self.gather(signals, self.error_data)  # (B, K, d)
        J_f = self.state(signals, self.outcome_data, self.n)
        J_s = self.state(signals, self.expectation_data, self.n)
        phase = self.state(signals, self.phase_data, 1)  # (B, K, 1)
        first = phase < 0
        on = tf.reduce_max(tf.abs(e), axis=-1, keepdims=True) > self.threshold
        a_f, a_s = self.fast_decay, self.slow_decay
        J_f = tf.where(first, J, a_f * J_f + (1 - a_f) * J)
        J_s = tf.where(first | on, tf.where(first, J, J_s), a_s * J_s + (1 - a_s) * J)
        fe = tf.where(on, self.scale * (J_s - J_f), tf.zeros_like(J_f))
        scatter(signals, self.outcome_data, J_f)
        scatter(signals, self.expectation_data, J_s)
        scatter(signals, self.phase_data, tf.cast(on, J.dtype))
        scatter(signals, self.fe_data, fe)
        scatter(signals, self.nu_data, self.nu * tf.ones_like(phase))


@Builder.register(SimTopDownNudge)
class SimTopDownNudgeBuilder(StackedBuilder):
    r"""Build a group of `.SimTopDownNudge` operators: :math:`J \mathrel{+}=
    A e`, and ``nudge`` set to :math:`A e` (NengoDL orders the additions into
    :math:`J` as the reference simulator does, from the operators' reads)."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        self.top_down = tf.constant(
            np.stack([op.top_down.initial_value for op in self.ops])[None],
            dtype=signals.dtype,
        )  # (1, K, n, d)
        self.error_data = self.stack(signals, lambda op: op.error)
        self.current_data = self.stack(signals, lambda op: op.current, output=True)
        self.nudge_data = self.stack(signals, lambda op: op.nudge, output=True)

    def build_step(self, signals):
        e = self.gather(signals, self.error_data)  # (B, K, d)
        nudge = tf.reduce_sum(self.top_down * e[..., None, :], axis=-1)
        scatter(signals, self.current_data, nudge, mode="inc")
        scatter(signals, self.nudge_data, nudge)
