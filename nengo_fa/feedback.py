r"""Learned feedback matrices and alignment diagnostics.

Fixed random feedback (`.FeedbackAlignment`) stops scaling on hard problems;
rules that *learn* the feedback matrix :math:`B` from local signals close
most of the gap to backpropagation [1]_ [2]_. Here :math:`B`
(``n_neurons x error_size``) stands in for :math:`W^T`, the transpose of the
downstream weights :math:`W` (``error_size x n_neurons``; for a decoded
readout, its decoders :math:`D`).

The objects in this module describe *how* :math:`B` learns; pass one as
``FeedbackAlignment(..., feedback_learning=...)``. Their operators, and the
operator computing the alignment diagnostics, are defined here too and added
by `nengo_fa.builder`.

References
----------
.. [1] Akrout, M., Wilson, C., Humphreys, P. C., Lillicrap, T., & Tweed, D.
   (2019). Deep learning without weight transport. NeurIPS 32.
.. [2] Kunin, D., Nayebi, A., Sagastuy-Brena, J., Ganguli, S., Bloom, J., &
   Yamins, D. L. K. (2020). Two routes to scalable credit assignment without
   weight symmetry. ICML 2020.
"""

import numpy as np
from nengo.builder import Operator
from nengo.config import SupportDefaultsMixin
from nengo.params import Default, FrozenObject, NumberParam
from nengo.synapses import Lowpass, SynapseParam

from nengo_fa._numerics import blocked_dot, squared_norm


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

    References
    ----------
    .. [1] Kunin, D., Nayebi, A., Sagastuy-Brena, J., Ganguli, S., Bloom, J.,
       & Yamins, D. L. K. (2020). Two routes to scalable credit assignment
       without weight symmetry. ICML 2020.
    """

    learning_rate = NumberParam("learning_rate", low=0, readonly=True, default=1.0)
    decay = NumberParam("decay", low=0, readonly=True, default=0.0)
    self_ = NumberParam("self_", low=0, readonly=True, default=0.0)
    amp = NumberParam("amp", low=0, readonly=True, default=0.0)
    sparse = NumberParam("sparse", low=0, readonly=True, default=0.0)
    null = NumberParam("null", low=0, readonly=True, default=0.0)
    activity_synapse = SynapseParam(
        "activity_synapse", default=Lowpass(tau=0.005), optional=True, readonly=True
    )

    def __init__(
        self,
        learning_rate=Default,
        decay=Default,
        self_=Default,
        amp=Default,
        sparse=Default,
        null=Default,
        activity_synapse=Default,
    ):
        super().__init__()
        self.learning_rate = learning_rate
        self.decay = decay
        self.self_ = self_
        self.amp = amp
        self.sparse = sparse
        self.null = null
        self.activity_synapse = activity_synapse

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


class KolenPollack(FeedbackLearning):
    r"""Kolen-Pollack: :math:`B` gets the forward weights' update, plus decay.

    .. math:: \Delta B = (\Delta W)^T - \lambda \Delta t \, B

    where :math:`\Delta W` is the change of the downstream weights on the same
    step (for a `nengo.PES` readout, :math:`-\kappa_{PES} \Delta t \, e a^T / n`,
    built from the same local signals). The decay removes the random initial
    part of :math:`B` while learning proceeds, so the angle between :math:`B`
    and :math:`W^T` shrinks [1]_. Unlike Akrout et al., the forward weights
    are not decayed (they belong to the downstream rule), so the decay also
    forgets old forward updates and the angle levels off above zero (30 to
    45 degrees on ``examples/alignment.py``, against 70 for fixed feedback)
    instead of converging. Since :math:`B` changes only by the forward updates, start it
    on their scale, e.g. ``FeedbackAlignment(downstream=readout,
    feedback=nengo.dists.Gaussian(0, 1e-4), feedback_learning=KolenPollack())``
    for a `nengo.PES` readout from a few dozen neurons (the hidden layer uses
    only the direction of :math:`B`, so the scale changes nothing else).

    Parameters
    ----------
    decay : float, optional
        :math:`\lambda`, in 1/s.

    References
    ----------
    .. [1] Akrout, M., Wilson, C., Humphreys, P. C., Lillicrap, T., & Tweed,
       D. (2019). Deep learning without weight transport. NeurIPS 32.
    """

    decay = NumberParam("decay", low=0, readonly=True, default=0.2)

    def __init__(self, decay=Default):
        super().__init__()
        self.decay = decay


class SimAlignmentTerms(Operator):
    r"""Update a feedback matrix by `.AlignmentTerms`.

    Implements

    .. math::

       \Delta B = -\kappa \Delta t \left(
           c_d B - c_s W^T - c_a \hat x (W \hat x)^T
           + c_{sp} \hat x (\hat x^T B) + c_n (B W \hat x)(W \hat x)^T \right)

    with :math:`\hat x = a / |a|` (no activity terms while :math:`a = 0`).

    Parameters
    ----------
    weights : Signal
        The forward weights :math:`W`, shape ``(d_out, n)``.
    activities : Signal or None
        The filtered hidden activities :math:`a`, shape ``(n,)``; needed only
        by the Amp, Sparse and Null terms.
    feedback : Signal
        :math:`B`, shape ``(n, d_out)``, updated in place.
    terms : AlignmentTerms
        The term weights and learning rate.
    tag : str, optional
        A label associated with the operator, for debugging purposes.

    Notes
    -----
    1. sets ``[]``
    2. incs ``[]``
    3. reads ``[weights] (+ [activities])``
    4. updates ``[feedback]``
    """

    def __init__(self, weights, activities, feedback, terms, tag=None):
        super().__init__(tag=tag)
        self.terms = terms
        self.sets = []
        self.incs = []
        self.reads = [weights] + ([] if activities is None else [activities])
        self.updates = [feedback]

    @property
    def weights(self):
        return self.reads[0]

    @property
    def activities(self):
        return self.reads[1] if len(self.reads) > 1 else None

    @property
    def feedback(self):
        return self.updates[0]

    @property
    def _descstr(self):
        return f"weights={self.weights} -> {self.feedback}"

    def make_step(self, signals, dt, rng):
        W = signals[self.weights]
        B = signals[self.feedback]
        a = None if self.activities is None else signals[self.activities]
        t = self.terms
        rate = -t.learning_rate * dt
        use_activities = a is not None and t.uses_activities
        grad = np.empty_like(B)
        scratch = np.empty_like(B)
        x = np.empty(B.shape[0])
        Wx = np.empty(B.shape[1])
        xB = np.empty(B.shape[1])
        BWx = np.empty(B.shape[0])

        def step_simalignmentterms():
            np.multiply(B, t.decay, out=grad)
            if t.self_ > 0:
                np.multiply(W.T, -t.self_, out=scratch)
                np.add(grad, scratch, out=grad)
            if use_activities:
                norm = np.sqrt(blocked_dot(a, a))
                if norm > 0:
                    np.divide(a, norm, out=x)
                    np.dot(W, x, out=Wx)
                    if t.amp > 0:
                        np.multiply.outer(x, -t.amp * Wx, out=scratch)
                        np.add(grad, scratch, out=grad)
                    if t.sparse > 0:
                        np.dot(x, B, out=xB)
                        np.multiply.outer(x, t.sparse * xB, out=scratch)
                        np.add(grad, scratch, out=grad)
                    if t.null > 0:
                        np.dot(B, Wx, out=BWx)
                        np.multiply.outer(BWx, t.null * Wx, out=scratch)
                        np.add(grad, scratch, out=grad)
            np.multiply(grad, rate, out=grad)
            np.add(B, grad, out=B)

        return step_simalignmentterms


class SimKolenPollack(Operator):
    r"""Give a feedback matrix the transposed update of the forward weights.

    Implements :math:`B \leftarrow B + (W_t - W_{t-1})^T - \lambda \Delta t B`.

    Parameters
    ----------
    weights : Signal
        The forward weights :math:`W_t`, shape ``(d_out, n)``.
    previous : Signal
        :math:`W_{t-1}`, updated to :math:`W_t` each step.
    feedback : Signal
        :math:`B`, shape ``(n, d_out)``, updated in place.
    decay : float
        :math:`\lambda`.
    tag : str, optional
        A label associated with the operator, for debugging purposes.

    Notes
    -----
    1. sets ``[]``
    2. incs ``[]``
    3. reads ``[weights]``
    4. updates ``[feedback, previous]``
    """

    def __init__(self, weights, previous, feedback, decay, tag=None):
        super().__init__(tag=tag)
        self.decay = decay
        self.sets = []
        self.incs = []
        self.reads = [weights]
        self.updates = [feedback, previous]

    @property
    def weights(self):
        return self.reads[0]

    @property
    def feedback(self):
        return self.updates[0]

    @property
    def previous(self):
        return self.updates[1]

    @property
    def _descstr(self):
        return f"weights={self.weights} -> {self.feedback}"

    def make_step(self, signals, dt, rng):
        W = signals[self.weights]
        W_prev = signals[self.previous]
        B = signals[self.feedback]
        keep = 1.0 - self.decay * dt
        change = np.empty_like(W)

        def step_simkolenpollack():
            np.subtract(W, W_prev, out=change)
            np.multiply(B, keep, out=B)
            np.add(B, change.T, out=B)
            W_prev[...] = W

        return step_simkolenpollack


class SimAlignmentDiagnostics(Operator):
    r"""Measure how well a feedback matrix stands in for the true one.

    Computes, in degrees,

    * ``delta_angle``: the angle between the rule's local error
      :math:`(B e) \odot G'(J)` and the backpropagated one
      :math:`(W^T e) \odot G'(J)` (Lillicrap et al. 2016, Fig. 2);
    * ``feedback_angle``: the angle between :math:`B` and :math:`W^T`,
      flattened (Akrout et al. 2019);

    and ``norm_ratio`` :math:`\|B\|_F / \|W\|_F`. Each is NaN while it is
    undefined (e.g. while :math:`W = 0` or :math:`e = 0`).

    Parameters
    ----------
    error : Signal
        The error :math:`e` fed back, shape ``(d_out,)``.
    feedback : Signal
        :math:`B`, shape ``(n, d_out)``.
    weights : Signal
        :math:`W`, shape ``(d_out, n)``.
    current : Signal
        The neurons' input current :math:`J`.
    delta_angle, feedback_angle, norm_ratio : Signal
        Outputs, shape ``(1,)``.
    derivative : callable
        ``derivative(J, out)`` writes :math:`G'(J)` into ``out``.
    tag : str, optional
        A label associated with the operator, for debugging purposes.

    Notes
    -----
    1. sets ``[]``
    2. incs ``[]``
    3. reads ``[error, feedback, weights, current]``
    4. updates ``[delta_angle, feedback_angle, norm_ratio]``
    """

    def __init__(
        self,
        error,
        feedback,
        weights,
        current,
        delta_angle,
        feedback_angle,
        norm_ratio,
        derivative,
        tag=None,
    ):
        super().__init__(tag=tag)
        self.derivative = derivative
        self.sets = []
        self.incs = []
        self.reads = [error, feedback, weights, current]
        self.updates = [delta_angle, feedback_angle, norm_ratio]

    @property
    def error(self):
        return self.reads[0]

    @property
    def feedback(self):
        return self.reads[1]

    @property
    def weights(self):
        return self.reads[2]

    @property
    def current(self):
        return self.reads[3]

    @property
    def delta_angle(self):
        return self.updates[0]

    @property
    def feedback_angle(self):
        return self.updates[1]

    @property
    def norm_ratio(self):
        return self.updates[2]

    @property
    def _descstr(self):
        return f"feedback={self.feedback}, weights={self.weights}"

    def make_step(self, signals, dt, rng):
        e = signals[self.error]
        B = signals[self.feedback]
        W = signals[self.weights]
        J = signals[self.current]
        delta_angle = signals[self.delta_angle]
        feedback_angle = signals[self.feedback_angle]
        norm_ratio = signals[self.norm_ratio]
        derivative = self.derivative
        n = B.shape[0]
        gp = np.empty(n)
        u = np.empty(n)
        v = np.empty(n)
        product = np.empty_like(B)

        def step_simalignmentdiagnostics():
            b_norm = np.sqrt(squared_norm(B))
            w_norm = np.sqrt(squared_norm(W))
            norm_ratio[...] = b_norm / w_norm if w_norm > 0 else np.nan
            np.multiply(B, W.T, out=product)  # <B, W^T>, without copying W^T
            feedback_angle[...] = _angle(product.sum(), b_norm, w_norm)

            derivative(J, gp)
            np.dot(B, e, out=u)
            np.multiply(u, gp, out=u)
            np.dot(W.T, e, out=v)
            np.multiply(v, gp, out=v)
            delta_angle[...] = _angle(
                blocked_dot(u, v),
                np.sqrt(blocked_dot(u, u)),
                np.sqrt(blocked_dot(v, v)),
            )

        return step_simalignmentdiagnostics


def _angle(dot, norm_a, norm_b):
    """Angle in degrees from a dot product and norms; NaN if a norm is 0."""
    if norm_a == 0 or norm_b == 0:
        return np.nan
    return np.degrees(np.arccos(np.clip(dot / (norm_a * norm_b), -1.0, 1.0)))


class SimForwardMatrix(Operator):
    r"""Set the effective forward matrix from one layer's neurons to the next's.

    For a chained rule, the true feedback is the transpose of
    :math:`M = S_{l+1} W_l` (decoded connection into an ensemble with scaled
    encoders :math:`S_{l+1}`) or :math:`M = \mathrm{diag}(c) W_l`
    (neuron-to-neuron weights, with the post gains :math:`c` Nengo applies).

    Parameters
    ----------
    weights : Signal
        :math:`W_l`, shape ``(d, n_l)`` or ``(n_{l+1}, n_l)``.
    encoders : Signal or None
        :math:`S_{l+1}`, shape ``(n_{l+1}, d)``, for a decoded connection.
    matrix : Signal
        Output :math:`M`, shape ``(n_{l+1}, n_l)``.
    row_gain : ndarray or None
        :math:`c`, for a neuron-to-neuron connection.
    tag : str, optional
        A label associated with the operator, for debugging purposes.

    Notes
    -----
    1. sets ``[matrix]``
    2. incs ``[]``
    3. reads ``[weights] (+ [encoders])``
    4. updates ``[]``
    """

    def __init__(self, weights, encoders, matrix, row_gain, tag=None):
        super().__init__(tag=tag)
        self.row_gain = row_gain
        self.sets = [matrix]
        self.incs = []
        self.reads = [weights] + ([] if encoders is None else [encoders])
        self.updates = []

    @property
    def weights(self):
        return self.reads[0]

    @property
    def encoders(self):
        return self.reads[1] if len(self.reads) > 1 else None

    @property
    def matrix(self):
        return self.sets[0]

    @property
    def _descstr(self):
        return f"weights={self.weights} -> {self.matrix}"

    def make_step(self, signals, dt, rng):
        W = signals[self.weights]
        M = signals[self.matrix]
        if self.encoders is not None:
            S = signals[self.encoders]

            def step_simforwardmatrix():
                np.dot(S, W, out=M)

        else:
            c = np.asarray(self.row_gain)[:, None]

            def step_simforwardmatrix():
                np.multiply(c, W, out=M)

        return step_simforwardmatrix
