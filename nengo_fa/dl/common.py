"""What every NengoDL builder of nengo_fa shares: marking the learned signals,
and the gather/scatter helpers."""

import warnings

import numpy as np
import tensorflow as tf
from nengo.builder.operator import Copy
from nengo_dl.builder import OpBuilder
from nengo_dl.tensor_graph import TensorGraph

from nengo_fa.builder import OPERATORS


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
    """
    model = tensor_graph.model
    fa_ops = [op for op in model.operators if isinstance(op, OPERATORS)]
    if not fa_ops:
        return
    bases = _learned_bases(model, fa_ops)
    for base in bases:
        _mark_learned(base)
    # views took their marks from their bases; bring them in line
    for op in model.operators:
        for sig in op.all_signals:
            if sig.base in bases and sig is not sig.base:
                sig.trainable = sig.base.trainable
                sig.minibatched = sig.base.minibatched


def _learned_bases(model, fa_ops):
    """The base signals nengo_fa's operators write, directly or by a Copy."""
    outputs = {sig for op in fa_ops for sig in op.sets + op.incs + op.updates}
    targets = set(outputs)
    for op in model.operators:
        if isinstance(op, Copy) and op.src in outputs:
            targets.add(op.dst)
    return {sig.base for sig in targets}


def _mark_learned(base):
    if getattr(base, "minibatched", True):
        return
    if base.trainable is True:
        # mirrors NengoDL's warning for its own rules
        warnings.warn(
            f"{base} is learned by a nengo_fa rule and is also set to be "
            "trainable; this is likely to produce strange training behaviour."
        )
    else:
        base.trainable = False
    base.minibatched = True


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


def with_batch(tensor, tensor_signal):
    """Give a non-minibatched tensor a leading axis of size 1, to broadcast."""
    return tensor if tensor_signal.minibatched else tensor[None]


def scatter(signals, dst, value, mode="update"):
    """``signals.scatter``, broadcasting ``value`` to ``dst``'s full shape."""
    # targets are never reshaped views (NengoDL's scatter indexes the base
    # array's first axis), so bring the value to the target's own shape
    if dst.minibatched:
        value = tf.broadcast_to(value, (dst.minibatch_size,) + tuple(value.shape[1:]))
    signals.scatter(dst, tf.reshape(value, dst.full_shape), mode=mode)


def repeat_per_neuron(tensor, sizes):
    """Repeat per-op rows (axis 1) for each of the op's ``sizes`` neurons."""
    if len(sizes) == 1:
        return tensor  # broadcasts
    return tf.repeat(tensor, sizes, axis=1)


def same_shapes(x, y):
    return len(x.all_signals) == len(y.all_signals) and all(
        a.shape == b.shape for a, b in zip(x.all_signals, y.all_signals)
    )


class StackedBuilder(OpBuilder):
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
        return with_batch(signals.gather(data), data)

    def stack_feedback_error(self, signals):
        """For operators that give a rule's *feedback error*
        (`.FeedbackErrorMixin`): their stacked error, :math:`F e` and
        :math:`\\nu` (outputs), or None."""
        if not self.ops[0].gives_feedback_error:
            return None
        return (
            self.stack(signals, lambda op: op.error),
            self.stack(signals, lambda op: op.feedback_error.fe, output=True),
            self.stack(signals, lambda op: op.feedback_error.nu, output=True),
        )

    def scatter_feedback_error(self, signals, data, F, transposed=False):
        """Set :math:`F e` and :math:`\\nu` from ``F``, ``(B, K, n, d_out)``
        (or :math:`F^T`, ``(B, K, d_out, n)``, with ``transposed``), with
        ``data`` from `stack_feedback_error` (nothing if None)."""
        if data is None:
            return
        error_data, fe_data, nu_data = data
        e = self.gather(signals, error_data)  # (B, K, d_out)
        if transposed:
            fe = tf.reduce_sum(F * e[..., :, None], axis=-2)
        else:
            fe = tf.reduce_sum(F * e[..., None, :], axis=-1)
        scatter(signals, fe_data, fe)
        scatter(signals, nu_data, rms(F, fe.shape[-1]))

    @staticmethod
    def mergeable(x, y):
        return same_shapes(x, y)


def rms(F, n):
    """`nengo_fa.builder.numerics.rms_row_norm` over the trailing two axes."""
    return tf.sqrt(tf.reduce_sum(tf.square(F), axis=(-2, -1)) / n)


def angle(dot, norm_a, norm_b):
    """`nengo_fa.builder.numerics.angle` in TensorFlow: degrees, NaN where a
    norm is 0."""
    valid = (norm_a > 0) & (norm_b > 0)
    denom = tf.where(valid, norm_a * norm_b, tf.ones_like(norm_a))
    cos = tf.clip_by_value(dot / denom, -1.0, 1.0)
    degrees = tf.math.acos(cos) * (180.0 / np.pi)
    return tf.where(valid, degrees, np.nan * tf.ones_like(degrees))
