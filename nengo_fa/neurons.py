"""Derivatives of neuron rate responses with respect to input current.

The hidden-layer rules compute a local error per neuron,
``delta = (F e) * G'(J)``, where ``G`` is the rate response (tuning curve) of the
ensemble's neuron type as a function of the input current ``J``, and ``G'`` is its
derivative, evaluated elementwise on the live ``J`` [1]_ [2]_. This module maps
neuron types to ``G'``:

- `make_derivative` returns a `Derivative` for one built ensemble: an object
  called as ``derivative(J, out)``, which pickles (so a running simulator does)
  and says how NengoDL and the reference simulator's compiled loops compute it
  (`Derivative.tensorflow_form`, `Derivative.compiled_form`);
- `register_derivative` adds the derivative of a new neuron type to the registry;
- `smoothed_lif_derivative` is the smoothed ("soft") LIF derivative, the surrogate
  used for `nengo.LIFRate` and `nengo.LIF`, whose exact derivative is singular at
  the firing threshold [3]_.

The derivatives compute into pre-allocated buffers: they are called every
simulation step.

References
----------
.. [1] Rumelhart, D. E., Hinton, G. E., & Williams, R. J. (1986). Learning
   representations by back-propagating errors. Nature, 323, 533-536.
.. [2] Lillicrap, T. P., Cownden, D., Tweed, D. B., & Akerman, C. J. (2016).
   Random synaptic feedback weights support error backpropagation for deep
   learning. Nature Communications, 7, 13276.
.. [3] Hunsberger, E., & Eliasmith, C. (2015). Spiking deep networks with LIF
   neurons. arXiv preprint arXiv:1510.08829.
"""

import warnings

import numpy as np
from nengo.exceptions import BuildError, SimulationError, ValidationError
from nengo.neurons import (
    LIF,
    AdaptiveLIF,
    AdaptiveLIFRate,
    Direct,
    Izhikevich,
    LIFRate,
    NeuronType,
    RatesToSpikesNeuronType,
    RectifiedLinear,
    Sigmoid,
    SpikingRectifiedLinear,
    Tanh,
)

from nengo_fa import derivative_kernels

try:
    from nengo_extras.neurons import SoftLIFRate
except ImportError:  # pragma: no cover  (nengo_extras is optional)
    SoftLIFRate = None

LIF_SIGMA = 0.02
"""Default smoothing ``sigma`` of the LIF surrogate derivative.

In units of input current, where the LIF threshold is ``J = 1``. The surrogate
differs from the exact LIF derivative only within a few ``sigma`` of the threshold
(by less than one part in 1e10 for ``J >= 1 + 25 * sigma``). Learning was
insensitive to ``sigma`` between 0.01 and 1 in our experiments; a small value keeps
the surrogate close to the true tuning curve. See `smoothed_lif_derivative`.
"""

# Number of points in a tabulated derivative (numerical fallback).
_TABLE_POINTS = 1001
_MAX_TABLE_POINTS = 16001

# Gaussian smoothing (standard deviation, in units of input current) applied to
# the tabulated Izhikevich tuning curve; see `_izhikevich_derivative`.
_IZHIKEVICH_SMOOTHING = 1.0

#: Smoothed LIF: where y = (J - 1) / sigma is below this (minus log(sigma) when
#: sigma > 1), exp(y) < 1e-13 and the asymptotic form is exact to double
#: precision (shared with NengoDL's builder, `nengo_fa.dl.derivatives`).
LIF_TAIL = -30.0
#: Currents are clipped to +-J_CLIP so that no intermediate overflows.
J_CLIP = 1e30


class Derivative:
    """:math:`G'(J)` of one built ensemble: ``derivative(J, out)``.

    Calling it writes :math:`G'(J)`, elementwise, into ``out`` and returns
    ``out``; it computes into buffers allocated at build time. Instances are
    plain objects (no closures), so operators that hold one pickle.
    """

    #: (str, dict) or None: how NengoDL computes the same derivative: a
    #: family name (``"relu"``, ``"logistic"`` or ``"lif"``, see `nengo_fa.dl`)
    #: and its scalar parameters; None for derivatives that are Python code
    #: only (tabulated, registered by users, or given to a rule as a function).
    tensorflow_form = None
    #: (callable, float, tuple) or None: how the reference simulator's
    #: compiled step computes the same derivative: ``(loop, scale, params)``,
    #: where ``loop(J, out, scale, *params)`` is a plain-Python loop over the
    #: neurons that numba compiles (`nengo_fa.builder.kernels.compiled`; helper
    #: functions it calls are listed in its ``helpers`` attribute) and writes
    #: ``scale`` times :math:`G'(J)` into ``out`` (see
    #: `nengo_fa.derivative_kernels`); None for derivatives that the step calls
    #: as Python code.
    compiled_form = None

    def __call__(self, J, out):
        raise NotImplementedError


_DERIVATIVES = {}


def register_derivative(neuron_cls):
    """Register the derivative factory of a neuron type (a decorator).

    The decorated function is a factory, ``factory(neuron_type, gain, bias)``,
    called once at build time with the neuron type instance and the ensemble's
    built ``gain`` and ``bias`` (arrays of shape ``(n,)``). It returns a
    callable ``step(J, out)`` that writes :math:`G'(J)`, the derivative of the
    rate response with respect to the input current, elementwise into ``out``
    (and returns ``out``). ``step`` is called every simulation step, so it
    should compute into buffers allocated by the factory. A `Derivative`
    subclass (or any module-level callable) pickles; a closure, as in the
    example below, works everywhere except in ``pickle.dumps(sim)``.

    Lookup walks the neuron type's method resolution order, as
    `nengo.builder.Builder` does, so a subclass uses its parent's factory unless
    it has its own.

    Parameters
    ----------
    neuron_cls : type
        A subclass of `nengo.neurons.NeuronType`.

    Examples
    --------
    .. testcode::

       class Softplus(nengo.neurons.NeuronType):
           def step(self, dt, J, output):
               output[...] = np.logaddexp(0, J)

       @nengo_fa.neurons.register_derivative(Softplus)
       def softplus_derivative(neuron_type, gain, bias):
           def step(J, out):
               np.negative(J, out=out)
               np.exp(out, out=out)
               out += 1
               return np.reciprocal(out, out=out)

           return step
    """
    if not (isinstance(neuron_cls, type) and issubclass(neuron_cls, NeuronType)):
        raise ValidationError(
            f"Expected a NeuronType subclass, got {neuron_cls!r}", attr="neuron_cls"
        )

    def register(factory):
        if neuron_cls in _DERIVATIVES:
            warnings.warn(
                f"Type '{neuron_cls.__name__}' already has a derivative. Overwriting."
            )
        _DERIVATIVES[neuron_cls] = factory
        return factory

    return register


def _lookup(neuron_type, gain, bias):
    """Build the registered ``step`` for ``neuron_type`` (MRO lookup)."""
    if isinstance(neuron_type, Direct):
        raise BuildError(
            f"{neuron_type} has no neurons, so it has no derivative G'(J); "
            "learning hidden-layer encoders needs an Ensemble with a neuron "
            "type such as nengo.LIF or nengo.RectifiedLinear"
        )
    for cls in type(neuron_type).__mro__:
        if cls in _DERIVATIVES:
            return _DERIVATIVES[cls](neuron_type, gain, bias)
    raise BuildError(  # pragma: no cover  (NeuronType itself is registered)
        f"No derivative registered for neuron type '{type(neuron_type).__name__}'"
    )


def make_derivative(neuron_type, gain, bias, derivative=None):
    """Return ``step(J, out)`` that writes :math:`G'(J)` into ``out``.

    :math:`G'(J)` is the derivative of the neuron type's rate response with
    respect to the input current :math:`J`, elementwise. ``step`` also returns
    ``out``.

    Parameters
    ----------
    neuron_type : NeuronType
        The ensemble's neuron type. Its derivative comes from the registry
        (see `register_derivative`); types without a registered derivative get
        a numerical one, tabulated once from ``neuron_type.rates``.
    gain : (n,) array_like
        The built per-neuron gains.
    bias : (n,) array_like
        The built per-neuron biases. ``gain`` and ``bias`` set the size of the
        buffers and, for tabulated derivatives, the range of currents
        ``[min(bias - 1.5 |gain|), max(bias + 1.5 |gain|)]`` that is tabulated;
        currents outside that range get the derivative at its nearest end.
    derivative : callable, optional
        A user function ``derivative(J) -> G'(J)`` (an array of shape ``(n,)``)
        that replaces the registry. It is called once here, on ``J = bias``, to
        check its output.

    Returns
    -------
    step : callable
        ``step(J, out)`` for ``J`` and ``out`` of shape ``(n,)``: a
        `Derivative` for the built-in types and for ``derivative``, or what a
        registered factory returns.

    Raises
    ------
    nengo.exceptions.BuildError
        For `nengo.Direct` (no neurons, so no derivative), for ``gain`` and
        ``bias`` of different shapes, and for a ``derivative`` that is not
        callable or whose output has the wrong shape or is not finite.
    """
    if not isinstance(neuron_type, NeuronType):
        raise BuildError(f"Expected a NeuronType instance, got {neuron_type!r}")
    gain = np.asarray(gain, dtype=float).reshape(-1)
    bias = np.asarray(bias, dtype=float).reshape(-1)
    if gain.shape != bias.shape:
        raise BuildError(
            f"gain and bias must have the same shape, got {gain.shape} and "
            f"{bias.shape}"
        )

    if derivative is None:
        return _lookup(neuron_type, gain, bias)

    if isinstance(neuron_type, Direct):
        _lookup(neuron_type, gain, bias)  # raises the BuildError for Direct
    return _user_derivative(derivative, neuron_type, gain, bias)


def _user_derivative(derivative, neuron_type, gain, bias):
    if not callable(derivative):
        raise BuildError(
            f"derivative must be a callable derivative(J) -> G'(J), "
            f"got {derivative!r}"
        )

    J = bias.copy()
    try:
        value = np.asarray(derivative(J), dtype=float)
    except Exception as e:
        raise BuildError(
            f"derivative {derivative!r} for {neuron_type} failed on an input "
            f"current of shape {J.shape}: {e}"
        ) from e
    if value.shape != bias.shape:
        raise BuildError(
            f"derivative {derivative!r} for {neuron_type} must return an array "
            f"of shape {bias.shape} (one value per neuron) for J of that shape; "
            f"got shape {value.shape}"
        )
    if not np.all(np.isfinite(value)):
        raise BuildError(
            f"derivative {derivative!r} for {neuron_type} returned non-finite "
            "values (NaN or inf) at J = bias"
        )

    return UserDerivative(derivative)


class UserDerivative(Derivative):
    """A rule's own ``derivative(J) -> G'(J)`` function, as a `Derivative`."""

    def __init__(self, function):
        self.function = function

    def __call__(self, J, out):
        value = self.function(J)
        if value is None or np.shape(value) != out.shape:
            got = "None" if value is None else f"shape {np.shape(value)}"
            raise SimulationError(
                f"the derivative function {self.function!r} returned {got} for "
                f"input currents of shape {np.shape(J)}; it must return one value "
                f"per neuron, shape {out.shape}"
            )
        out[...] = value
        return out


# --- Rectified linear --------------------------------------------------------


@register_derivative(SpikingRectifiedLinear)
@register_derivative(RectifiedLinear)
def _rectified_linear_derivative(neuron_type, gain, bias):
    """:math:`G'(J) = a [J > 0]`, with ``a`` the amplitude.

    At the kink, ``J = 0``, the derivative is taken as 0, so that a neuron that
    receives no current does not learn.
    """
    return RectifiedLinearDerivative(neuron_type.amplitude)


class RectifiedLinearDerivative(Derivative):
    """:math:`G'(J) = a [J > 0]` (see ``_rectified_linear_derivative``)."""

    def __init__(self, amplitude):
        self.amplitude = amplitude
        self.tensorflow_form = ("relu", {"scale": amplitude})
        self.compiled_form = (derivative_kernels.relu_loop, float(amplitude), ())

    def __call__(self, J, out):
        # measured 3x faster than np.heaviside, despite the cast from bool
        np.greater(J, 0.0, out=out)
        if self.amplitude != 1:
            np.multiply(out, self.amplitude, out=out)
        return out


# --- Sigmoid and tanh ---------------------------------------------------------


@register_derivative(Sigmoid)
def _sigmoid_derivative(neuron_type, gain, bias):
    """Derivative of :math:`G(J) = \\tau_{ref}^{-1} / (1 + e^{-J})`.

    :math:`G'(J) = \\tau_{ref}^{-1} e^{-|J|} / (1 + e^{-|J|})^2`, which is the
    usual :math:`\\tau_{ref}^{-1} s (1 - s)` written so that nothing overflows.
    """
    return LogisticDerivative(1.0 / neuron_type.tau_ref, 1.0, gain.shape)


@register_derivative(Tanh)
def _tanh_derivative(neuron_type, gain, bias):
    """Derivative of :math:`G(J) = \\tau_{ref}^{-1} \\tanh(J)`.

    :math:`G'(J) = \\tau_{ref}^{-1} \\mathrm{sech}^2(J)
    = \\tau_{ref}^{-1} 4 e^{-2|J|} / (1 + e^{-2|J|})^2` (no overflow).
    """
    return LogisticDerivative(4.0 / neuron_type.tau_ref, 2.0, gain.shape)


class LogisticDerivative(Derivative):
    """:math:`G'(J) = c \\, e^{-k|J|} / (1 + e^{-k|J|})^2`: `nengo.Sigmoid`
    (:math:`c = 1/\\tau_{ref}, k = 1`) and `nengo.Tanh`
    (:math:`c = 4/\\tau_{ref}, k = 2`)."""

    def __init__(self, scale, slope, shape):
        self.scale = scale
        self.slope = slope
        self.tensorflow_form = ("logistic", {"scale": scale, "slope": slope})
        self.compiled_form = (
            derivative_kernels.logistic_loop,
            float(scale),
            (float(slope),),
        )
        self._e = np.empty(shape)
        self._denom = np.empty(shape)

    def __call__(self, J, out):
        e, denom = self._e, self._denom
        np.abs(J, out=e)
        # times -1 is exact: the same bits as np.negative
        np.multiply(e, -self.slope, out=e)
        np.exp(e, out=e)
        np.add(e, 1.0, out=denom)
        np.square(denom, out=denom)
        np.divide(e, denom, out=e)
        return np.multiply(e, self.scale, out=out)


# --- LIF ----------------------------------------------------------------------


def _check_lif_params(tau_rc, tau_ref, amplitude, sigma):
    for name, value, low in (
        ("tau_rc", tau_rc, "positive"),
        ("tau_ref", tau_ref, "non-negative"),
        ("amplitude", amplitude, "positive"),
        ("sigma", sigma, "positive"),
    ):
        ok = np.isfinite(value) and (value >= 0 if name == "tau_ref" else value > 0)
        if not ok:
            raise ValidationError(f"must be finite and {low}, got {value}", attr=name)


class SmoothedLIFDerivative(Derivative):
    """Allocation-free `smoothed_lif_derivative` for currents of one shape."""

    def __init__(self, shape, tau_rc, tau_ref, amplitude, sigma):
        _check_lif_params(tau_rc, tau_ref, amplitude, sigma)
        self.tau_rc = tau_rc
        self.tau_ref = tau_ref
        self.amplitude = amplitude
        self.sigma = sigma
        self.tensorflow_form = (
            "lif",
            {
                "scale": amplitude * tau_rc,
                "tau_rc": tau_rc,
                "tau_ref": tau_ref,
                "sigma": sigma,
            },
        )
        self._log_sigma = np.log(sigma)
        self._y_tail = LIF_TAIL - max(self._log_sigma, 0.0)
        self._buffers = tuple(np.empty(shape) for _ in range(4))
        constants = (tau_rc, tau_ref, sigma, self._log_sigma, self._y_tail)
        self.compiled_form = (
            derivative_kernels.smoothed_lif_loop,
            float(amplitude * tau_rc),
            tuple(float(v) for v in constants)
            + (np.empty(shape, dtype=np.intp), self._buffers[0]),
        )
        self._tail = np.empty(shape, dtype=bool)

    def __call__(self, J, out):
        tau_rc, tau_ref, sigma = self.tau_rc, self.tau_ref, self.sigma
        log_sigma, y_tail = self._log_sigma, self._y_tail
        scale = self.amplitude * tau_rc
        y, a, b, c = self._buffers
        tail = self._tail
        # y = (J - 1) / sigma
        np.clip(J, -J_CLIP, J_CLIP, out=y)
        np.subtract(y, 1.0, out=y)
        np.divide(y, sigma, out=y)
        np.less(y, y_tail, out=tail)

        # Main branch, on y clipped below at y_tail (so exp(-y) cannot overflow):
        # j = sigma * softplus(y), written as max(y, 0) + log1p(exp(-|y|))
        np.maximum(y, y_tail, out=a)
        np.abs(a, out=b)
        np.negative(b, out=b)
        np.exp(b, out=b)
        np.log1p(b, out=b)
        np.maximum(a, 0.0, out=c)
        np.add(b, c, out=b)
        np.multiply(b, sigma, out=b)  # b = j > 0
        np.negative(a, out=a)
        np.exp(a, out=a)
        np.add(a, 1.0, out=a)  # a = 1 / sigmoid(y) = 1 / (dj/dJ)
        np.reciprocal(b, out=c)
        np.log1p(c, out=c)
        np.multiply(c, tau_rc, out=c)
        np.add(c, tau_ref, out=c)  # c = amplitude / r
        # G' = r^2 tau_rc sigmoid(y) / (amplitude j (j + 1))
        #    = amplitude tau_rc / ((amplitude / r)^2 j (j + 1) / sigmoid(y))
        np.square(c, out=c)
        np.multiply(c, a, out=c)
        np.multiply(c, b, out=c)
        np.add(b, 1.0, out=b)
        np.multiply(c, b, out=c)
        np.divide(scale, c, out=out)

        # Tail, y < y_tail: j = sigma exp(y) to double precision, so
        # log1p(1 / j) = -log(sigma) - y, sigmoid(y) / j = 1 / sigma, j + 1 = 1.
        np.minimum(y, y_tail, out=a)
        np.negative(a, out=a)
        np.subtract(a, log_sigma, out=a)
        np.multiply(a, tau_rc, out=a)
        np.add(a, tau_ref, out=a)  # a = amplitude / r
        np.square(a, out=a)
        np.multiply(a, sigma, out=a)
        np.divide(scale, a, out=a)
        np.copyto(out, a, where=tail)
        return out


def smoothed_lif_derivative(
    J, tau_rc=0.02, tau_ref=0.002, amplitude=1.0, sigma=LIF_SIGMA, out=None
):
    """The smoothed (soft) LIF derivative, a surrogate for :math:`G'(J)`.

    The LIF rate response [1]_ is

    .. math:: G(J) = \\frac{a}{\\tau_{ref} + \\tau_{RC} \\log(1 + 1 / (J - 1))}

    for :math:`J > 1` and 0 otherwise, with amplitude :math:`a`. Its derivative,

    .. math:: G'(J) = \\frac{\\tau_{RC} \\, G(J)^2}{a \\, J (J - 1)},

    diverges at the threshold :math:`J = 1`. Following Hunsberger & Eliasmith
    [2]_, the threshold is smoothed by replacing :math:`j = J - 1` with

    .. math:: j = \\sigma \\log(1 + e^{(J - 1) / \\sigma}),

    a softplus, giving the soft-LIF rate
    :math:`r = a / (\\tau_{ref} + \\tau_{RC} \\log(1 + 1/j))` and its derivative
    by the chain rule (:math:`dj/dJ` is the logistic sigmoid of
    :math:`(J - 1) / \\sigma`):

    .. math::

       G'(J) = \\frac{\\tau_{RC} \\, r^2}{a \\, j (j + 1)}
               \\frac{1}{1 + e^{-(J - 1) / \\sigma}}.

    This is finite and positive everywhere. Above threshold, it equals the exact
    derivative up to terms in :math:`e^{-(J - 1)/\\sigma}`; below threshold, it
    decays as :math:`a \\sigma / (\\tau_{RC} (1 - J)^2)`.

    Parameters
    ----------
    J : array_like
        Input current.
    tau_rc : float
        Membrane RC time constant, in seconds.
    tau_ref : float
        Absolute refractory period, in seconds.
    amplitude : float
        Scaling factor on the output, :math:`a`.
    sigma : float
        Smoothing of the threshold, in units of current (the threshold is at
        ``J = 1``). Larger values mean more smoothing. Defaults to `LIF_SIGMA`.
    out : ndarray, optional
        Array of ``J``'s shape to write the result into.

    Returns
    -------
    out : ndarray
        :math:`G'(J)`, the same shape as ``J``.

    Notes
    -----
    The computation is arranged so that it neither overflows nor warns for any
    ``J``: the sigmoid and softplus use :math:`e^{-|y|}`; far below threshold,
    where :math:`e^{(J - 1)/\\sigma}` would underflow, the asymptotic form
    (exact to double precision there) is used; and ``J`` is clipped to
    :math:`\\pm 10^{30}`, where :math:`G'` is zero to within :math:`10^{-60}`.
    NaN in ``J`` gives NaN.

    This is the derivative of `nengo_extras.neurons.SoftLIFRate`'s rates with
    its own ``sigma`` (there 1 by default).

    References
    ----------
    .. [1] Eliasmith, C., & Anderson, C. H. (2003). Neural Engineering:
       Computation, Representation, and Dynamics in Neurobiological Systems.
       MIT Press.
    .. [2] Hunsberger, E., & Eliasmith, C. (2015). Spiking deep networks with
       LIF neurons. arXiv preprint arXiv:1510.08829.
    """
    J = np.asarray(J, dtype=float)
    if out is None:
        out = np.empty_like(J)
    elif out.shape != J.shape:
        raise ValidationError(
            f"out must have the shape of J, {J.shape}; got {out.shape}", attr="out"
        )
    return SmoothedLIFDerivative(J.shape, tau_rc, tau_ref, amplitude, sigma)(J, out)


@register_derivative(AdaptiveLIF)
@register_derivative(AdaptiveLIFRate)
@register_derivative(LIF)
@register_derivative(LIFRate)
def _lif_derivative(neuron_type, gain, bias):
    """`smoothed_lif_derivative` with ``sigma = LIF_SIGMA``.

    Spiking `nengo.LIF` uses the derivative of its rate response. For the
    adaptive types, the derivative is that of the LIF response to ``J``: the
    adaptation state, which subtracts from the input current, is ignored.
    """
    return SmoothedLIFDerivative(
        gain.shape,
        neuron_type.tau_rc,
        neuron_type.tau_ref,
        neuron_type.amplitude,
        LIF_SIGMA,
    )


if SoftLIFRate is not None:

    @register_derivative(SoftLIFRate)
    def _soft_lif_rate_derivative(neuron_type, gain, bias):
        """`smoothed_lif_derivative` with the neuron type's own ``sigma``.

        This equals ``neuron_type.derivative(J, gain=1, bias=0)``: nengo_extras'
        ``derivative(x, gain, bias)`` is with respect to ``x``, so it includes
        the gain. Note that in nengo 4 the simulator runs `SoftLIFRate` as plain
        `nengo.LIFRate` (its ``step_math`` is not called); this derivative is then
        a smoothed surrogate of the LIF derivative with the chosen ``sigma``.
        """
        return SmoothedLIFDerivative(
            gain.shape,
            neuron_type.tau_rc,
            neuron_type.tau_ref,
            neuron_type.amplitude,
            neuron_type.sigma,
        )


# --- Spiking wrappers -----------------------------------------------------------


@register_derivative(RatesToSpikesNeuronType)
def _rates_to_spikes_derivative(neuron_type, gain, bias):
    """The derivative of ``base_type``, times ``amplitude``.

    `nengo.RegularSpiking`, `nengo.PoissonSpiking` and `nengo.StochasticSpiking`
    emit spikes of height ``amplitude / dt`` at the base type's rate, so their
    mean output is ``amplitude * base_rate(J)``. (Their ``rates`` method returns
    the base type's rates without the amplitude.)
    """
    base_step = _lookup(neuron_type.base_type, gain, bias)
    if neuron_type.amplitude == 1:
        return base_step
    return ScaledDerivative(base_step, neuron_type.amplitude)


class ScaledDerivative(Derivative):
    """:math:`a \\, G_{base}'(J)`: a spiking wrapper's derivative."""

    def __init__(self, base, amplitude):
        self.base = base
        self.amplitude = amplitude
        base_form = getattr(base, "tensorflow_form", None)
        if base_form is not None:
            family, params = base_form
            params = dict(params, scale=params["scale"] * amplitude)
            self.tensorflow_form = (family, params)
        base_compiled = getattr(base, "compiled_form", None)
        if base_compiled is not None:
            loop, scale, params = base_compiled
            self.compiled_form = (loop, scale * amplitude, params)

    def __call__(self, J, out):
        self.base(J, out)
        out *= self.amplitude
        return out


# --- Tabulated derivatives --------------------------------------------------------


def _current_range(gain, bias):
    """The range of currents the neurons can reach, with margin."""
    if gain.size == 0:
        return -1.0, 1.0
    reach = 1.5 * np.abs(gain)
    lo = float(np.min(bias - reach))
    hi = float(np.max(bias + reach))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise BuildError("gain and bias must be finite to tabulate a derivative")
    if hi - lo < 1e-6 * max(1.0, abs(lo), abs(hi)):
        lo, hi = lo - 1.0, hi + 1.0
    return lo, hi


def _gaussian_smooth(values, sigma_points):
    """Convolve with a Gaussian, continuing the ends by point reflection.

    Point ("odd") reflection continues a linear trend, so the smoothing does not
    bend the curve (or lower its slope) at the ends of the table.
    """
    k = int(np.ceil(4 * sigma_points))
    x = np.arange(-k, k + 1)
    weights = np.exp(-0.5 * (x / sigma_points) ** 2)
    np.divide(weights, weights.sum(), out=weights)
    padded = np.pad(values, k, mode="reflect", reflect_type="odd")
    return np.convolve(padded, weights, mode="valid")


def _tabulate(neuron_type, lo, hi, n_points, smoothing=0.0):
    """Tabulate :math:`G'` on ``n_points`` uniform currents in ``[lo, hi]``.

    ``G`` comes from ``neuron_type.rates(J, gain=1, bias=0)``, optionally smoothed
    by a Gaussian with standard deviation ``smoothing`` (units of current), and is
    differentiated with `numpy.gradient`.
    """
    J = np.linspace(lo, hi, n_points)
    dJ = J[1] - J[0]
    rates = np.asarray(neuron_type.rates(J, np.ones(1), np.zeros(1)), dtype=float)
    if rates.size != n_points:
        raise BuildError(
            f"{neuron_type}.rates returned shape {rates.shape} for {n_points} "
            f"currents; cannot tabulate its derivative"
        )
    rates = rates.reshape(-1)
    if not np.all(np.isfinite(rates)):
        raise BuildError(
            f"{neuron_type}.rates is not finite on [{lo:.3g}, {hi:.3g}]; cannot "
            "tabulate its derivative. Pass a derivative function instead."
        )
    if smoothing > 0:
        rates = _gaussian_smooth(rates, smoothing / dJ)
    return J, np.gradient(rates, dJ, edge_order=2)


class InterpolatedDerivative(Derivative):
    """:math:`G'(J)` interpolated linearly in a table, clamped at its ends."""

    def __init__(self, J_table, table, n):
        self.J0 = J_table[0]
        # from the whole range: 1 / (J[1] - J[0]) carries the rounding of
        # J[0] into every position, multiplied by the number of points
        self.inv_dJ = (len(J_table) - 1) / (J_table[-1] - J_table[0])
        self.last = len(table) - 1
        self.values = np.array(table, dtype=float)
        self.slopes = np.diff(self.values)
        self.compiled_form = (
            derivative_kernels.interpolated_loop,
            1.0,
            (float(self.J0), float(self.inv_dJ), self.values, self.slopes),
        )
        self._pos = np.empty(n)
        self._index_f = np.empty(n)
        self._index = np.empty(n, dtype=np.intp)
        self._scratch = np.empty(n)
        self._left = np.empty(n)

    def __call__(self, J, out):
        pos, index_f, index = self._pos, self._index_f, self._index
        scratch, left = self._scratch, self._left
        # fractional position in the table, clamped to its ends (NaN stays NaN)
        np.subtract(J, self.J0, out=pos)
        np.multiply(pos, self.inv_dJ, out=pos)
        np.clip(pos, 0, self.last, out=pos)
        # index of the left point (fmax maps NaN to 0, a valid index). At the top
        # end, index = last: take's mode="clip" picks slopes[last - 1], with
        # weight pos - index = 0, so the result is values[last].
        np.floor(pos, out=index_f)
        np.fmax(index_f, 0, out=index_f)
        np.copyto(index, index_f, casting="unsafe")
        np.subtract(pos, index_f, out=pos)  # weight of the right point
        np.take(self.slopes, index, out=scratch, mode="clip")
        np.multiply(scratch, pos, out=scratch)
        np.take(self.values, index, out=left, mode="clip")
        return np.add(left, scratch, out=out)


def _tabulated_derivative(neuron_type, gain, bias, n_points=None, smoothing=0.0):
    lo, hi = _current_range(gain, bias)
    if n_points is None:
        n_points = _TABLE_POINTS
        if smoothing > 0:
            # resolve the smoothing kernel with a few points per sigma
            n_points = int(np.ceil(4 * (hi - lo) / smoothing)) + 1
            n_points = min(max(n_points, _TABLE_POINTS), _MAX_TABLE_POINTS)
    J, table = _tabulate(neuron_type, lo, hi, n_points, smoothing=smoothing)
    if not np.any(table):
        warnings.warn(
            f"The tabulated derivative of {neuron_type} is zero everywhere on the "
            f"currents the neurons can reach, [{lo:.3g}, {hi:.3g}], so these "
            "neurons will not learn. Pass a derivative function, or check the "
            "ensemble's gains and biases (are the neurons below threshold?).",
            UserWarning,
        )
    return InterpolatedDerivative(J, table, gain.size)


@register_derivative(NeuronType)
def _numerical_derivative(neuron_type, gain, bias):
    """The fallback: the derivative of ``neuron_type.rates``, tabulated.

    ``rates(J, gain=1, bias=0)`` is evaluated once, at build time, on
    ``_TABLE_POINTS`` uniformly spaced currents covering
    ``[min(bias - 1.5 |gain|), max(bias + 1.5 |gain|)]``, and differentiated with
    `numpy.gradient`. Each step interpolates linearly in that table; currents
    outside it get the value at its nearest end. A `UserWarning` is raised if the
    tabulated derivative is zero everywhere.
    """
    return _tabulated_derivative(neuron_type, gain, bias)


@register_derivative(Izhikevich)
def _izhikevich_derivative(neuron_type, gain, bias):
    """The derivative of ``rates``, smoothed and tabulated.

    `nengo.Izhikevich.rates` [1]_ counts spikes in 1 s of simulation with
    ``dt = 0.001``, so it is quantised to 1 Hz and, at high rates, flat between
    integer inter-spike intervals. Differentiated on a fine grid, it is zero
    almost everywhere, with isolated spikes; differentiated on currents below the
    threshold (``J`` of about 3.8 with the default parameters; with ``gain = 1``,
    ``bias = 0`` an ``x`` in [-1, 1] is below it), it is zero everywhere.
    So the tuning curve is tabulated over the currents the neurons reach (see
    `make_derivative`) and smoothed with a Gaussian of standard deviation
    ``_IZHIKEVICH_SMOOTHING`` (1, in units of current) before differentiating.
    With the default (regular spiking) parameters, the result is typically
    within 30% of a precise estimate (20 s of simulation, central differences
    over +-2.5) where the tuning curve rises. Above about 100 Hz (``J`` > 45),
    the discrete-time (``dt = 0.001``) tuning curve has flat stretches (e.g.
    near 171, 206 and 256 Hz, and at 500 Hz, two steps per spike, for ``J``
    from about 240 to 300); the derivative dips towards zero there, as it
    should.

    References
    ----------
    .. [1] Izhikevich, E. M. (2003). Simple model of spiking neurons. IEEE
       Transactions on Neural Networks, 14(6), 1569-1572.
    """
    return _tabulated_derivative(
        neuron_type, gain, bias, smoothing=_IZHIKEVICH_SMOOTHING
    )
