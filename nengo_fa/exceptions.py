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
