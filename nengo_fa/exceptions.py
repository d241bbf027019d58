"""Warnings that nengo_fa raises (errors are Nengo's own exception types)."""

from nengo.exceptions import NengoWarning


class StableRangeWarning(NengoWarning):
    """A rule runs outside its stable range.

    Raised at build time when ``dt`` and the rates make one step at unit error
    move each neuron's current by more than
    ``nengo_fa.builder.hidden_layer.STABLE_STEP`` of its range, and once per
    rule during a simulation when the error is so large that the step bounds
    cut a step short. See Notes in `.HiddenLayerRule` for how the range is
    derived.
    """


class ActivityScaleWarning(NengoWarning):
    """A weight-learning rule sees presynaptic activities far from the scale
    its steps assume.

    Learning a weight matrix (``modifies="weights"``) scales its steps by
    :math:`\bar A^2`, the mean squared norm of the presynaptic activities over
    the presynaptic ensemble's tuning curves. Raised once per rule during a
    simulation when the activities measured over its first second of activity
    differ from it by more than a factor of 10: the steps are then off from
    what the learning rate says by the same factor. See
    ``nengo_fa.builder.weights.ActivityCheck``.
    """
