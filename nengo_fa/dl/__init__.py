"""TensorFlow builders that run nengo_fa models in NengoDL.

`NengoDL <https://www.nengo.ai/nengo-dl/>`_ simulates a Nengo model with
TensorFlow, on CPU or GPU. It builds the model with Nengo's builder, so our
build functions (`nengo_fa.builder`) run unchanged and add the same operators
as for ``nengo.Simulator``; NengoDL then needs a TensorFlow implementation of
each operator. This module provides them and registers them with
``nengo_dl.builder.Builder``.

Importing this module imports TensorFlow and NengoDL. Users never need to:
``import nengo_fa`` arranges for it to be imported right after ``nengo_dl``
is (see `nengo_fa._dl_hook`), so ::

    import nengo_dl, nengo_fa
    with nengo_dl.Simulator(model) as sim:   # model uses nengo_fa rules
        sim.run(1.0)

works in either import order, and ``import nengo_fa`` alone stays fast and does
not need TensorFlow.

Supported operators
-------------------
Every operator that nengo_fa's build functions add (``SUPPORTED_OPERATORS``,
which is `nengo_fa.builder.OPERATORS`):

- `.SimHiddenLayerRule` (`.FeedbackAlignment`, `.BackProp`, `.SignSymmetry`),
  with the ``(n, d)`` encoder delta that Nengo's ``Copy`` applies or the
  factors that `.SimHiddenLayerEncoderUpdate` applies in place;
- `.SimHiddenLayerEncoderUpdate`, `.SimHiddenLayerWeights`
  (``modifies="weights"``), `.SimChainedError` (chained rules),
  `.SimSignFeedback`, `.SimFilteredFeedback`;
- `.SimTopTarget`, `.SimDifferenceTarget` (`.DifferenceTargetProp`; its
  noise is drawn by TensorFlow, so it differs from the reference
  simulator's);
- from `nengo_fa.builder.alignment`: `.SimForwardMatrix`, `.SimKolenPollack`,
  `.SimAlignmentTerms` (learned feedback) and `.SimAlignmentDiagnostics`;
- `.SimLRATarget` (`.LRA`'s saturating local error);
- `.SimTraceError` (`.TraceRule`'s outcome, expectation and phase) and
  `.SimTopDownNudge` (its nudge into the hidden current);
- `.SimERBP` and `.SimERBPWeights` (`.ERBP`); TensorFlow applies the
  event-driven weight update densely, with the same values;
- `.SimSyntheticGradient` (`.SyntheticGradient`'s predictor);
- `.SimErrorWarmup` (`.BackProp`'s ``warmup``).

The builders follow the topics of `nengo_fa.builder`: `.hidden_layer`
(the rule and the in-place encoder update, in the same named stages),
`.feedback_sources`, `.alignment`, `.chained`, `.weights`, `.target_prop`,
`.lra`, `.trace`, `.erbp`, `.synthetic` and `.warmup`; `.derivatives` holds
:math:`G'(J)` and `.common` what they share.

Updates are applied by Nengo's ``Copy`` operators, which NengoDL supports.
Operators of one kind are merged into one TensorFlow computation, as NengoDL
does for its own learning rules. `.SimHiddenLayerRule` and
`.SimHiddenLayerEncoderUpdate` concatenate the neurons of all their
ensembles, so ensembles of different sizes merge as long as they have the same
input dimensionality ``d`` and error size (and, for live feedback such as
`.BackProp`'s, the same number of neurons); the other operators merge when
their signals have the same shapes.

Supported neuron types
----------------------
The derivative :math:`G'(J)` is computed in TensorFlow with the same formulas
as `nengo_fa.neurons`: each operator holds the `~nengo_fa.neurons.Derivative`
the reference simulator uses, which names its TensorFlow form
(`~nengo_fa.neurons.Derivative.tensorflow_form`), so subclasses behave as in
the reference simulator:

- `nengo.RectifiedLinear`, `nengo.SpikingRectifiedLinear`;
- `nengo.Sigmoid`, `nengo.Tanh`;
- `nengo.LIFRate`, `nengo.LIF`, `nengo.AdaptiveLIFRate`, `nengo.AdaptiveLIF`
  (`.smoothed_lif_derivative` with `.LIF_SIGMA`), and
  ``nengo_extras.neurons.SoftLIFRate`` (with its own ``sigma``);
- `nengo.RegularSpiking`, `nengo.PoissonSpiking`, `nengo.StochasticSpiking`
  wrapping any of these (as far as NengoDL simulates them).

Types whose derivative is tabulated numerically (`nengo.Izhikevich`, types
without a registered derivative), derivatives registered by users, and rules
given a ``derivative`` function are Python code that TensorFlow cannot run:
building them raises a `~nengo.exceptions.BuildError` naming the type.

Differences from the reference simulator
----------------------------------------
- Arithmetic is in NengoDL's ``dtype`` (float32 by default; set
  ``nengo_dl.configure_settings(dtype="float64")`` for agreement to about
  1e-12).
- A NaN or inf in the error stops the run with TensorFlow's
  ``InvalidArgumentError`` (``tf.debugging.check_numerics``) instead of
  `~nengo.exceptions.SimulationError`. As in the reference simulator, nothing
  is learned from it: the failed ``run`` call does not write its state back.
- NengoDL treats ensemble biases as trainable, non-minibatched parameters, and
  writes parameters back between ``run`` calls only if they are minibatched. A
  bias learned by a nengo_fa rule is therefore marked the way NengoDL marks the
  encoders or weights targeted by its own learning rules: not trainable by
  ``sim.fit``, minibatched (each minibatch item learns independently), and
  kept between ``run`` calls. See `.mark_learned_signals`.
"""

# isort: off
# nengo_dl first: importing it imports TensorFlow, which the builders need
import nengo_dl  # noqa: F401

# importing the builders registers them with nengo_dl.builder.Builder
from nengo_fa.dl import (  # noqa: E402
    alignment,
    chained,
    common,
    erbp,
    feedback_sources,
    hidden_layer,
    target_prop,
    lra,
    trace,
    synthetic,
    warmup,
    weights,
)
from nengo_fa.dl.common import mark_learned_signals  # noqa: E402
from nengo_fa.dl.derivatives import (  # noqa: E402
    FAMILIES,
    derivative_family,
    tensorflow_derivative,
)

# isort: on
from nengo_fa.builder import OPERATORS as SUPPORTED_OPERATORS  # noqa: E402

__all__ = [
    "FAMILIES",
    "SUPPORTED_OPERATORS",
    "derivative_family",
    "mark_learned_signals",
    "tensorflow_derivative",
]
