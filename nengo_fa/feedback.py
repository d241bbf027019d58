r"""Learned feedback matrices and alignment diagnostics.

Fixed random feedback (`.FeedbackAlignment`) stops scaling on hard problems;
rules that *learn* the feedback matrix :math:`B` from local signals close
most of the gap to backpropagation [1]_ [2]_, or make the feedback pathway
reconstruct the forward activities [3]_. Here :math:`B`
(``n_neurons x error_size``) stands in for :math:`W^T`, the transpose of the
downstream weights :math:`W` (``error_size x n_neurons``; for a decoded
readout, its decoders :math:`D`).

The objects in this module describe *how* :math:`B` learns; pass one as
``FeedbackAlignment(..., feedback_learning=...)``. They are declarations only:
their operators, and the operator computing the alignment diagnostics, live in
`nengo_fa.builder.alignment`.

References
----------
.. [1] Akrout, M., Wilson, C., Humphreys, P. C., Lillicrap, T., & Tweed, D.
   (2019). Deep learning without weight transport. NeurIPS 32.
.. [2] Kunin, D., Nayebi, A., Sagastuy-Brena, J., Ganguli, S., Bloom, J., &
   Yamins, D. L. K. (2020). Two routes to scalable credit assignment without
   weight symmetry. ICML 2020.
.. [3] Luo, H., Fu, J., & Glass, J. (2017). Bidirectional backpropagation:
   towards biologically plausible error signal transmission in neural
   networks. arXiv:1702.07097.
"""

from nengo.config import SupportDefaultsMixin
from nengo.params import BoolParam, Default, FrozenObject
from nengo.synapses import Lowpass, SynapseParam

from nengo_fa.params import FiniteNumberParam


class FeedbackLearning(FrozenObject, SupportDefaultsMixin):
    """Base class of the ways a feedback matrix can learn."""


class AlignmentTerms(FeedbackLearning):
    r"""Feedback learning as gradient descent on a weighted sum of primitives.

    Following Kunin et al. (2020), :math:`B` descends the regulariser

    .. math::

       R(B) = \frac{c_d}{2} \|B\|^2
              - c_s \,\mathrm{tr}(B W)
              - c_a \, \hat{x}^T B W \hat{x}
              + \frac{c_{sp}}{2} \|\hat{x}^T B\|^2
              + \frac{c_n}{2} \|B W \hat{x}\|^2

    (Decay, Self, Amp, Sparse and Null), so that

    .. math::

       \Delta B = -\kappa \Delta t \left(
           c_d B - c_s W^T - c_a \hat x (W \hat x)^T
           + c_{sp} \hat x (\hat x^T B) + c_n (B W \hat x)(W \hat x)^T \right)

    where :math:`\hat x = a / |a|` are the hidden ensemble's filtered
    activities, normalised to unit length so that the rate does not depend on
    firing rates. Decay, Amp and Sparse use only signals local to the feedback
    synapses; Self and Null need the forward weights (weight transport or
    weight estimation). Pairs of terms with equal weights have :math:`B = W^T`
    as fixed point: Decay + Self (`.SymmetricAlignment`), Amp + Sparse
    (`.ActivationAlignment`, on the span of the activities).

    Parameters
    ----------
    learning_rate : float, optional
        :math:`\kappa`, in 1/s.
    decay : float, optional
        :math:`c_d`, weight of Decay, :math:`\|B\|^2`.
    self_ : float, optional
        :math:`c_s`, weight of Self, :math:`-\mathrm{tr}(BW)` (the trailing
        underscore avoids Python's ``self``).
    amp : float, optional
        :math:`c_a`, weight of Amp, :math:`-\mathrm{tr}(x^T B W x)` (Hebbian).
    sparse : float, optional
        :math:`c_{sp}`, weight of Sparse, :math:`\|x^T B\|^2`.
    null : float, optional
        :math:`c_n`, weight of Null, :math:`\|B W x\|^2`.
    activity_synapse : Synapse, optional
        Filter on the hidden activities :math:`a` (spikes need one).
    normalise_forward : bool, optional
        Whether every term reads :math:`\tilde W = \sqrt{n}\, W / \|W\|_F`
        (0 while :math:`W = 0`) in place of :math:`W`: the terms then do not
        depend on the forward weights' scale, only on their direction, and
        :math:`\|\tilde W \hat x\|^2` is 1 on average over directions of
        :math:`\hat x`. Terms quadratic in :math:`W` (Null) need it: with a
        `nengo.PES` readout's decoders (:math:`\|W\|_F \sim 10^{-3}`) they
        are otherwise :math:`10^6` times weaker than the linear ones. The
        fixed points of `.SymmetricAlignment` and `.ActivationAlignment`
        change only by this scale.

    References
    ----------
    .. [1] Kunin, D., Nayebi, A., Sagastuy-Brena, J., Ganguli, S., Bloom, J.,
       & Yamins, D. L. K. (2020). Two routes to scalable credit assignment
       without weight symmetry. ICML 2020.
    """

    learning_rate = FiniteNumberParam(
        "learning_rate", low=0, readonly=True, default=1.0
    )
    decay = FiniteNumberParam("decay", low=0, readonly=True, default=0.0)
    self_ = FiniteNumberParam("self_", low=0, readonly=True, default=0.0)
    amp = FiniteNumberParam("amp", low=0, readonly=True, default=0.0)
    sparse = FiniteNumberParam("sparse", low=0, readonly=True, default=0.0)
    null = FiniteNumberParam("null", low=0, readonly=True, default=0.0)
    activity_synapse = SynapseParam(
        "activity_synapse", default=Lowpass(tau=0.005), optional=True, readonly=True
    )
    normalise_forward = BoolParam("normalise_forward", default=False, readonly=True)

    def __init__(
        self,
        learning_rate=Default,
        decay=Default,
        self_=Default,
        amp=Default,
        sparse=Default,
        null=Default,
        activity_synapse=Default,
        normalise_forward=Default,
    ):
        super().__init__()
        self.learning_rate = learning_rate
        self.decay = decay
        self.self_ = self_
        self.amp = amp
        self.sparse = sparse
        self.null = null
        self.activity_synapse = activity_synapse
        self.normalise_forward = normalise_forward

    @property
    def uses_activities(self):
        """Whether any term needs the hidden activities."""
        return self.amp > 0 or self.sparse > 0 or self.null > 0


class SymmetricAlignment(AlignmentTerms):
    r"""Symmetric Alignment: Self + Decay, so :math:`B` relaxes to :math:`W^T`.

    .. math:: \Delta B = -\kappa \Delta t (B - W^T)

    It measures the forward weights directly, so it is not local, but it
    transfers across architectures without tuning (Kunin et al. 2020).

    Parameters
    ----------
    learning_rate : float, optional
        :math:`\kappa`, in 1/s: :math:`B` approaches :math:`W^T` with time
        constant :math:`1/\kappa`.
    """

    def __init__(self, learning_rate=Default):
        super().__init__(learning_rate=learning_rate, decay=1.0, self_=1.0)


class ActivationAlignment(AlignmentTerms):
    r"""Activation Alignment: Amp + Sparse, from activities only.

    .. math::

       \Delta B = -\kappa \Delta t \, \hat x (B^T \hat x - W \hat x)^T

    :math:`B^T \hat x` is pulled toward the forward projection
    :math:`W \hat x` of the same (normalised) hidden activity, a Hebbian
    update between the hidden neurons and the output (Kunin et al. 2020).

    Parameters
    ----------
    learning_rate : float, optional
        :math:`\kappa`, in 1/s.
    activity_synapse : Synapse, optional
        Filter on the hidden activities.
    """

    def __init__(self, learning_rate=Default, activity_synapse=Default):
        super().__init__(
            learning_rate=learning_rate,
            amp=1.0,
            sparse=1.0,
            activity_synapse=activity_synapse,
        )


class BidirectionalAlignment(AlignmentTerms):
    r"""Bidirectional learned feedback: :math:`B` reconstructs the hidden
    activities from the output.

    Luo et al. (2017) [1]_ train the feedback weights to reconstruct each
    layer's activity from the layer above. For a readout :math:`y = W \hat x`
    that is the loss :math:`\frac12 \|\hat x - B \tilde W \hat x\|^2`,
    whose gradient in :math:`B` is
    :math:`-(\hat x - B \tilde W \hat x)(\tilde W \hat x)^T`: exactly
    `.AlignmentTerms`' Amp and Null terms with equal weights, so

    .. math::

       \Delta B = \kappa \Delta t
           (\hat x - B \tilde W \hat x)(\tilde W \hat x)^T ,
       \qquad \tilde W = \sqrt{n}\, W / \|W\|_F

    (``normalise_forward``, which makes the rate independent of the forward
    weights' scale; :math:`\hat x = a / |a|`). :math:`\tilde W \hat x` is
    the readout's output direction (for a decoded readout, the output
    :math:`D a` before its synapse, divided by :math:`|a|`
    :math:`\|W\|_F / \sqrt n`), so :math:`B` learns from the hidden and
    output activities only, with no weight transport.

    Its fixed point is not :math:`W^T`: with :math:`C = E[\hat x \hat x^T]`,
    :math:`E[\Delta B] = 0` gives the least-squares reconstruction

    .. math:: B^* = C \tilde W^T (\tilde W C \tilde W^T)^{-1},

    a right inverse of the forward weights, :math:`\tilde W B^* = I`. It
    equals :math:`\tilde W^+ \propto W^T` (``error_size = 1``) only when
    the activities are white on the readout's direction; Nengo's rates are
    not (non-negative, correlated), so the angle to :math:`W^T` stays at
    :math:`\angle(CW^T, W^T)`, 35 to 50 degrees on the task of
    ``examples/alignment.py`` (where the learned :math:`B`, tracking the
    recent activities, swings between 40 and 70). What it guarantees
    instead is that the
    feedback never opposes backpropagation before the neurons' derivative:
    :math:`(W^T e) \cdot (B^* e) = \frac{\|W\|_F}{\sqrt n}\|e\|^2 > 0`
    for every error :math:`e`, where fixed random feedback needs the forward
    weights to align first. Luo et al. also pass :math:`B y` through the
    layer's nonlinearity; this preset keeps the linear form, whose fixed
    point is the one above (a rectifier would clip :math:`B y` and lose
    :math:`\tilde W B^* = I`).

    Parameters
    ----------
    learning_rate : float, optional
        :math:`\kappa`, in 1/s. With :math:`\tilde W`, the reconstruction
        along an output direction relaxes at the rate
        :math:`\kappa E[(\tilde W \hat x)^2]`, which is :math:`\kappa` for
        activities in a random direction, the time constant of
        `.ActivationAlignment`'s default.
    activity_synapse : Synapse, optional
        Filter on the hidden activities.

    References
    ----------
    .. [1] Luo, H., Fu, J., & Glass, J. (2017). Bidirectional
       backpropagation: towards biologically plausible error signal
       transmission in neural networks. arXiv:1702.07097.
    """

    def __init__(self, learning_rate=Default, activity_synapse=Default):
        super().__init__(
            learning_rate=learning_rate,
            amp=1.0,
            null=1.0,
            activity_synapse=activity_synapse,
            normalise_forward=True,
        )


class KolenPollack(FeedbackLearning):
    r"""Kolen-Pollack: :math:`B` gets the forward weights' update.

    .. math:: \Delta B = (\Delta W)^T - \lambda \Delta t \, B

    where :math:`\Delta W` is the change of the downstream weights on the same
    step (for a `nengo.PES` readout, :math:`-\kappa_{PES} \Delta t \, e a^T / n`,
    built from the same local signals) [1]_. With :math:`\lambda = 0` (the
    default) the difference :math:`B - W^T` never changes: it stays
    :math:`B_0 - W_0^T`, so as the forward weights grow away from where they
    started, :math:`B` turns toward :math:`W^T`, and it never turns away.
    Start :math:`B` small against what the forward weights will become, so
    that their growth dominates it, e.g. ``FeedbackAlignment(
    downstream=readout, feedback=nengo.dists.Gaussian(0, 1e-4),
    feedback_learning=KolenPollack())`` for a `nengo.PES` readout from a few
    dozen neurons (the hidden layer uses only the direction of :math:`B`, so
    its scale changes nothing else); with the default ``feedback``
    (unit-variance entries) :math:`B` stays close to its random start, as
    in fixed feedback alignment. For a chained rule, :math:`W` is the
    effective forward matrix into the next layer's neurons, which need not
    start near zero: a small :math:`B_0` then leaves
    :math:`B \approx (W - W_0)^T`, the forward matrix's change only, which
    can align worse than a random start. Measured (frozen MSE as a fraction
    of PES only's, below 1 better; 40 s of training, seeds 3, 17 and 42):
    on a two-layer product network of 10 and 20 neurons, :math:`B_0` of
    scale :math:`10^{-4}` on the top layer only gave 0.49, 1.18 and 0.85x,
    on both layers 1.5, 3.3 and 5.1x; on the two-layer digits network of
    ``benchmarks/compare.py``, both layers small was the better start
    (80.3% against 77.3%).

    In Akrout et al. the forward weights decay as :math:`B` does, so that
    :math:`B - W^T` decays to zero. A `nengo.PES` readout does not decay, so
    here a decay :math:`\lambda > 0` forgets the forward updates too: once
    the readout has converged, :math:`B` holds only the updates of the last
    :math:`1 / \lambda` seconds, which follow the recent error, and its angle
    to :math:`W^T` drifts past 90 degrees. Measured on the product task of
    ``examples/alignment.py`` (30 neurons, :math:`B_0` of scale
    :math:`10^{-4}`, two seeds): with :math:`\lambda = 0.2` (the default
    before) the angle was 22-27 degrees over the first 20 s and 96-102 after
    150 s, and the network frozen after 250 s of training was 3-6x worse than
    PES only's; with :math:`\lambda = 0` it stayed at 16-29 degrees
    throughout, and the frozen network was about as good as fixed feedback
    alignment's (on white-noise input, 1.7x better than it and 5x better
    than PES only's).

    Parameters
    ----------
    decay : float, optional
        :math:`\lambda`, in 1/s: how fast :math:`B` forgets (0: never).

    References
    ----------
    .. [1] Akrout, M., Wilson, C., Humphreys, P. C., Lillicrap, T., & Tweed,
       D. (2019). Deep learning without weight transport. NeurIPS 32.
    """

    decay = FiniteNumberParam("decay", low=0, readonly=True, default=0.0)

    def __init__(self, decay=Default):
        super().__init__()
        self.decay = decay
