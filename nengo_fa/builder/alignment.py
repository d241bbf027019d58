"""Learned-feedback and alignment operators (`nengo_fa.feedback`'s rules).

`.SimKolenPollack` and `.SimAlignmentTerms` learn a feedback matrix,
`.SimAlignmentDiagnostics` measures how well it stands in for the true one, and
`.SimForwardMatrix` gives a chained rule its true feedback. They are added by
the `.FeedbackAlignment` feedback source (`nengo_fa.builder.feedback_sources`).
"""

import math

import numpy as np
from nengo.builder import Operator
from nengo.exceptions import SimulationError

from nengo_fa.builder.numerics import angle, blocked_dot, squared_norm


def _fail(tag, what, learning):
    raise SimulationError(
        f"{tag}: {what} contains NaN or inf; the feedback matrix learned by "
        f"{learning} was not changed"
    )


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
        x = np.empty(B.shape[0], dtype=B.dtype)
        Wx = np.empty(B.shape[1], dtype=B.dtype)
        xB = np.empty(B.shape[1], dtype=B.dtype)
        BWx = np.empty(B.shape[0], dtype=B.dtype)

        tag = self.tag
        name = type(t).__name__

        def step_simalignmentterms():
            if not math.isfinite(squared_norm(W)):
                if not np.all(np.isfinite(W)):
                    _fail(tag, "the forward weights W", name)
            if use_activities and not math.isfinite(blocked_dot(a, a)):
                if not np.all(np.isfinite(a)):
                    _fail(tag, "the hidden activities", name)
            # finite inputs; only an overflow is left, checked below
            with np.errstate(over="ignore", invalid="ignore"):
                terms()
                np.multiply(grad, rate, out=grad)
                if not math.isfinite(squared_norm(grad)):
                    if not np.all(np.isfinite(grad)):
                        _fail(tag, "the feedback's update (an overflow)", name)
                np.add(B, grad, out=B)

        def terms():
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
        scratch = np.empty_like(B)
        # |B keep + change| <= |B| when |change| <= (1 - keep) |B|max:
        # below this, nothing can overflow
        safe = (1.0 - keep) * float(np.finfo(B.dtype).max)
        tag = self.tag

        def step_simkolenpollack():
            np.subtract(W, W_prev, out=change)
            ss = squared_norm(change)
            if not math.isfinite(ss) and not np.all(np.isfinite(change)):
                _fail(tag, "the change of the forward weights W", "KolenPollack")
            if not math.sqrt(ss) < safe:
                with np.errstate(over="ignore"):
                    np.multiply(B, keep, out=scratch)
                    np.add(scratch, change.T, out=scratch)
                if not np.all(np.isfinite(scratch)):
                    _fail(tag, "the feedback's update (an overflow)", "KolenPollack")
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
    undefined (e.g. while :math:`W = 0` or :math:`e = 0`, or when a value it
    is computed from is not finite).

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
    neuron_type : NeuronType, optional
        The hidden ensemble's neuron type (for NengoDL's builder).
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
        neuron_type=None,
        tag=None,
    ):
        super().__init__(tag=tag)
        self.derivative = derivative
        self.neuron_type = neuron_type
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
        gp, u, v = (np.empty(n, dtype=B.dtype) for _ in range(3))
        product = np.empty_like(B)

        def step_simalignmentdiagnostics():
            # a measurement, not state: NaN where anything is not finite
            with np.errstate(all="ignore"):
                diagnostics()

        def diagnostics():
            b_norm = np.sqrt(squared_norm(B))
            w_norm = np.sqrt(squared_norm(W))
            norm_ratio[...] = b_norm / w_norm if 0 < w_norm < np.inf else np.nan
            np.multiply(B, W.T, out=product)  # <B, W^T>, without copying W^T
            feedback_angle[...] = angle(product.sum(), b_norm, w_norm)

            derivative(J, gp)
            np.dot(B, e, out=u)
            np.multiply(u, gp, out=u)
            np.dot(W.T, e, out=v)
            np.multiply(v, gp, out=v)
            delta_angle[...] = angle(
                blocked_dot(u, v),
                np.sqrt(blocked_dot(u, u)),
                np.sqrt(blocked_dot(v, v)),
            )

        return step_simalignmentdiagnostics


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
