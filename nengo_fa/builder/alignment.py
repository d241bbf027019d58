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

from nengo_fa.builder import kernels
from nengo_fa.builder.hidden_layer import FeedbackError
from nengo_fa.builder.numerics import angle, blocked_dot, rms_row_norm, squared_norm


def _fail(tag, what, learning):
    raise SimulationError(
        f"{tag}: {what} contains NaN or inf; the feedback matrix learned by "
        f"{learning} was not changed"
    )


def normalise_forward(W, ss, out):
    """Set ``out`` to :math:`\\tilde W = \\sqrt{n} W / \\|W\\|_F` (0 while
    :math:`W = 0`), where ``ss`` is :math:`\\|W\\|_F^2` as summed (it may
    have overflowed for a finite, huge :math:`W`)."""
    n = W.shape[1]
    if math.isfinite(ss):
        scale = math.sqrt(n / ss) if ss > 0 else 0.0
    elif np.all(np.isfinite(W)):
        peak = float(np.max(np.abs(W)))  # rare: allocates
        scale = math.sqrt(n / squared_norm(W / peak)) / peak
    else:
        scale = 0.0  # 0 times NaN or inf: not finite, as W
    np.multiply(W, scale, out=out)


class FeedbackErrorMixin:
    """For an operator that changes or sets a live feedback matrix :math:`F`
    and can give, in the same pass, the *feedback error* of the rule that
    reads it (`.FeedbackError`). ``add_feedback_error`` appends the rule's
    error to ``reads`` and the `.FeedbackError` signals to ``sets``, so that
    they are the last of each."""

    def add_feedback_error(self, error, feedback_error):
        self.gives_feedback_error = feedback_error is not None
        if self.gives_feedback_error:
            self.reads.append(error)
            self.sets.extend(feedback_error)

    @property
    def error(self):
        """The rule's error :math:`e`, or None."""
        return self.reads[-1] if self.gives_feedback_error else None

    @property
    def feedback_error(self):
        """The `.FeedbackError` signals this operator sets, or None."""
        return FeedbackError(*self.sets[-2:]) if self.gives_feedback_error else None

    def feedback_error_step(self, signals, F, transposed=False):
        """``(step, (e, fe, nu))``: a function that sets :math:`F e` and
        :math:`\\nu` in numpy from :math:`F` (or :math:`F^T`), to call before
        :math:`F` changes, and the arrays it uses; ``(None, None)`` without
        a `.FeedbackError`."""
        if not self.gives_feedback_error:
            return None, None
        e, fe, nu = (signals[sig] for sig in (self.error,) + self.feedback_error)
        n = fe.shape[0]

        def step():
            # a non-finite error (e.g. inf times a feedback of 0) is left to
            # the rule's own check, which names it, without a numpy warning
            with np.errstate(invalid="ignore", over="ignore"):
                if transposed:
                    np.dot(e, F, out=fe)
                else:
                    np.dot(F, e, out=fe)
            nu[0] = rms_row_norm(F, n)

        return step, (e, fe, nu)


class SimAlignmentTerms(FeedbackErrorMixin, Operator):
    r"""Update a feedback matrix by `.AlignmentTerms`.

    Implements

    .. math::

       \Delta B = -\kappa \Delta t \left(
           c_d B - c_s W^T - c_a \hat x (W \hat x)^T
           + c_{sp} \hat x (\hat x^T B) + c_n (B W \hat x)(W \hat x)^T \right)

    with :math:`\hat x = a / |a|` (no activity terms while :math:`a = 0`)
    and :math:`W` replaced by :math:`\sqrt{n}\, W / \|W\|_F` where the
    terms ask for it (``normalise_forward``),
    and, with ``feedback_error``, the *feedback error* of the rule whose
    feedback :math:`B` is, from the :math:`B` it replaces: :math:`B e` and
    :math:`\nu = \|B\|_F / \sqrt{n}`.

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
    error : Signal, optional
        The rule's error :math:`e`, with ``feedback_error``.
    feedback_error : FeedbackError, optional
        Set to :math:`B e` and :math:`\nu` (see `.FeedbackError`).
    compiled : bool, optional
        Whether to use the compiled loops
        (`nengo_fa.builder.kernels.alignment_terms`; the ``compiled_kernels``
        setting when the model was built).

    Notes
    -----
    1. sets ``[]``, or ``[fe, nu]`` with ``feedback_error``
    2. incs ``[]``
    3. reads ``[weights, activities]`` (``activities`` may be None), plus
       ``error`` with ``feedback_error``
    4. updates ``[feedback]``
    """

    def __init__(
        self,
        weights,
        activities,
        feedback,
        terms,
        tag=None,
        error=None,
        feedback_error=None,
        compiled=False,
    ):
        super().__init__(tag=tag)
        self.terms = terms
        self.compiled = compiled
        self.sets = []
        self.incs = []
        self.reads = [weights] + ([] if activities is None else [activities])
        self.updates = [feedback]
        self.add_feedback_error(error, feedback_error)

    @property
    def weights(self):
        return self.reads[0]

    @property
    def activities(self):
        n_reads = 2 + self.gives_feedback_error
        return self.reads[1] if len(self.reads) == n_reads else None

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
        a = a if use_activities else None
        grad = np.empty_like(B)
        # the terms read W, or W normalised into its own array
        Wn = np.empty_like(W) if t.normalise_forward else W
        terms = self._make_terms(B, Wn, a, grad)
        tag = self.tag
        name = type(t).__name__
        # the rule's feedback error, from the B this step replaces
        feedback_error, given = self.feedback_error_step(signals, B)

        def step_simalignmentterms():
            if feedback_error is not None:
                feedback_error()
            ss = squared_norm(W)
            if not math.isfinite(ss):
                if not np.all(np.isfinite(W)):
                    _fail(tag, "the forward weights W", name)
            if Wn is not W:
                normalise_forward(W, ss, Wn)
            if a is not None and not math.isfinite(blocked_dot(a, a)):
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

        if self.compiled and given is not None and kernels.AVAILABLE:
            return self._compiled_step(B, W, Wn, a, given, rate, step_simalignmentterms)
        return step_simalignmentterms

    def _make_terms(self, B, W, a, grad):
        """``terms()``, which writes the terms of :math:`\\Delta B` (not yet
        times the rate) into ``grad``; ``a`` is None without activity terms."""
        t = self.terms
        scratch = np.empty_like(B)
        x = np.empty(B.shape[0], dtype=B.dtype)
        Wx = np.empty(B.shape[1], dtype=B.dtype)
        xB = np.empty(B.shape[1], dtype=B.dtype)
        BWx = np.empty(B.shape[0], dtype=B.dtype)

        def terms():
            np.multiply(B, t.decay, out=grad)
            if t.self_ > 0:
                np.multiply(W.T, -t.self_, out=scratch)
                np.add(grad, scratch, out=grad)
            if a is not None:
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

        return terms

    def _compiled_step(self, B, W, Wn, a, given, rate, numpy_step):
        t = self.terms
        e, fe, nu = given
        terms = kernels.compiled(kernels.alignment_terms)
        coefs = np.array([t.decay, t.self_, t.amp, t.sparse, t.null, rate])
        n, d_out = B.shape
        a = np.zeros(0, dtype=B.dtype) if a is None else a
        x, row_sums = np.empty(n), np.empty(n)
        Wx, xB = np.empty(d_out), np.empty(d_out)
        grad = np.empty_like(B)
        limit = float(np.finfo(B.dtype).max)

        def step_simalignmentterms_compiled():
            if Wn is not W:
                # a non-finite W gives a non-finite Wn, which the loop reports
                with np.errstate(invalid="ignore", over="ignore"):
                    normalise_forward(W, squared_norm(W), Wn)
            norm = terms(B, Wn, a, coefs, x, Wx, xB, grad, e, fe, row_sums, limit)
            if norm < 0:
                # a rare case: something is not finite (the numpy code
                # raises) or a sum of squares overflowed (it checks each)
                numpy_step()
            else:
                nu[0] = norm

        return step_simalignmentterms_compiled


class SimKolenPollack(FeedbackErrorMixin, Operator):
    r"""Give a feedback matrix the transposed update of the forward weights.

    Implements :math:`B \leftarrow B + (W_t - W_{t-1})^T - \lambda \Delta t B`
    and, with ``feedback_error``, the *feedback error* of the rule whose
    feedback :math:`B` is, from the :math:`B` it replaces: :math:`B e` and
    :math:`\nu = \|B\|_F / \sqrt{n}`. With the compiled loops that is one
    pass over :math:`B` (`nengo_fa.builder.kernels.kolen_pollack`), after a
    check of :math:`W_t - W_{t-1}`.

    Where one learning rule alone changes :math:`W`, through the ``Copy``
    that adds its delta (Nengo's learning rules, e.g. `nengo.PES`), the
    operator reads that delta as ``change`` instead of keeping
    :math:`W_{t-1}`: it is :math:`W_t - W_{t-1}` (up to rounding), without the
    two passes over :math:`W_{t-1}`
    (`nengo_fa.builder.kernels.kolen_pollack` without :math:`W_{t-1}`).

    Parameters
    ----------
    weights : Signal
        The forward weights :math:`W_t`, shape ``(d_out, n)``.
    previous : Signal or None
        :math:`W_{t-1}`, updated to :math:`W_t` each step; None with
        ``change``.
    feedback : Signal
        :math:`B`, shape ``(n, d_out)``, updated in place.
    decay : float
        :math:`\lambda`.
    tag : str, optional
        A label associated with the operator, for debugging purposes.
    error : Signal, optional
        The rule's error :math:`e`, with ``feedback_error``.
    feedback_error : FeedbackError, optional
        Set to :math:`B e` and :math:`\nu` (see `.FeedbackError`).
    compiled : bool, optional
        Whether to use the compiled loop (the ``compiled_kernels`` setting
        when the model was built).
    change : Signal, optional
        The delta that the one learning rule of :math:`W` adds to it each
        step, shape ``(d_out, n)`` (see above), instead of ``previous``.

    Notes
    -----
    1. sets ``[]``, or ``[fe, nu]`` with ``feedback_error``
    2. incs ``[]``
    3. reads ``[weights]``, or ``[weights, change]``, plus ``error`` with
       ``feedback_error``
    4. updates ``[feedback, previous]``, or ``[feedback]`` with ``change``
    """

    def __init__(
        self,
        weights,
        previous,
        feedback,
        decay,
        tag=None,
        error=None,
        feedback_error=None,
        compiled=False,
        change=None,
    ):
        super().__init__(tag=tag)
        if (previous is None) == (change is None):
            raise ValueError("give either 'previous' or 'change'")
        self.decay = decay
        self.compiled = compiled
        self.sets = []
        self.incs = []
        self.reads = [weights] + ([] if change is None else [change])
        self.updates = [feedback] + ([] if previous is None else [previous])
        self.add_feedback_error(error, feedback_error)

    @property
    def weights(self):
        return self.reads[0]

    @property
    def change(self):
        """The learning rule's delta that changes :math:`W`, or None."""
        return None if len(self.updates) == 2 else self.reads[1]

    @property
    def feedback(self):
        return self.updates[0]

    @property
    def previous(self):
        return self.updates[1] if len(self.updates) == 2 else None

    @property
    def _descstr(self):
        return f"weights={self.weights} -> {self.feedback}"

    def make_step(self, signals, dt, rng):
        W = signals[self.weights]
        from_delta = self.change is not None
        W_prev = None if from_delta else signals[self.previous]
        B = signals[self.feedback]
        keep = 1.0 - self.decay * dt
        change = signals[self.change] if from_delta else np.empty_like(W)
        scratch = np.empty_like(B)
        # |B keep + change| <= |B| when |change| <= (1 - keep) |B|max:
        # below this, nothing can overflow (nor, in the compiled loop, below
        # limit - keep max|B|, which bounds a step without decay)
        limit = float(np.finfo(B.dtype).max)
        safe = (1.0 - keep) * limit
        tag = self.tag
        # the rule's feedback error, from the B this step replaces
        feedback_error, given = self.feedback_error_step(signals, B)

        def step_simkolenpollack():
            if feedback_error is not None:
                feedback_error()
            if not from_delta:
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
            if not from_delta:
                W_prev[...] = W

        if not (self.compiled and given is not None and kernels.AVAILABLE):
            return step_simkolenpollack
        e, fe, nu = given
        row_sums = np.empty(B.shape[0])
        kolen_pollack = kernels.compiled(kernels.kolen_pollack)
        # with the change given, the loop reads it as W, and no W_prev
        args = (change, np.zeros((0, 0), dtype=B.dtype)) if from_delta else (W, W_prev)
        args = (B, *args, keep, safe, limit, e, fe, row_sums)

        def step_simkolenpollack_compiled():
            norm = kolen_pollack(*args)
            if norm < 0:
                step_simkolenpollack()  # a rare case: raises, or checks
            else:
                nu[0] = norm

        return step_simkolenpollack_compiled


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
    compiled : bool, optional
        Whether to use the compiled loops (the ``compiled_kernels`` setting
        when the model was built): the derivative's own
        (`nengo_fa.neurons.Derivative.compiled_form`) and one pass over
        :math:`B` and :math:`W` for all the sums
        (`nengo_fa.builder.kernels.alignment_sums`).

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
        compiled=False,
    ):
        super().__init__(tag=tag)
        self.derivative = derivative
        self.neuron_type = neuron_type
        self.compiled = compiled
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
        outputs = (delta_angle, feedback_angle, norm_ratio)
        if self.compiled and kernels.AVAILABLE:
            return self._compiled_step(e, B, W, J, gp, outputs)

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

    def _compiled_step(self, e, B, W, J, gp, outputs):
        compiled_derivative = kernels.derivative_loop(self.derivative)
        if compiled_derivative is None:

            def derivative():
                with np.errstate(all="ignore"):
                    self.derivative(J, gp)

        else:
            # numba does not raise numpy's floating point warnings
            loop, args = compiled_derivative

            def derivative():
                loop(J, gp, *args)

        diagnostics = kernels.compiled(kernels.alignment_diagnostics)

        def step_simalignmentdiagnostics():
            derivative()
            diagnostics(e, B, W, gp, *outputs)

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
