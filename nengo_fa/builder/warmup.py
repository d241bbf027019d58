"""A rule's warm-up: its error held at 0 while a learning readout takes shape
(`.BackProp`'s ``warmup``)."""

import numpy as np
from nengo.builder import Operator, Signal
from nengo.builder.ensemble import get_activities
from nengo.ensemble import Neurons
from nengo.exceptions import BuildError
from nengo.learning_rules import PES
from nengo.rc import rc

from nengo_fa.builder.weights import learning_rules


def readout_time_constant(model, conn):
    r"""The fastest time constant of the `nengo.PES` rule on ``conn``.

    PES changes the decoders by :math:`-(\kappa / n) \, \Delta t \, e \, a^T`,
    so the output error relaxes along the leading eigenvector of
    :math:`E[a a^T]` with time constant :math:`\tau_1 = n / (\kappa
    \lambda_{max})`. :math:`E[a a^T]` is taken over the evaluation points of
    ``conn``'s presynaptic ensemble (its rate tuning curves). Returns 0 when
    ``conn`` has no PES rule (or a rate of 0) or the activities are all 0.
    """
    pes = [rule for rule in learning_rules(conn) if isinstance(rule, PES)]
    if not pes or pes[0].learning_rate <= 0:
        return 0.0
    neurons = isinstance(conn.pre_obj, Neurons)
    ens = conn.pre_obj.ensemble if neurons else conn.pre_obj
    built = model.params[ens]
    A = get_activities(built, ens, built.eval_points)
    if neurons:  # PES reads the sliced neurons (a decoded slice is of dimensions)
        A = A[:, conn.pre_slice]
    lam = float(np.linalg.eigvalsh(A.T @ A / len(A))[-1]) if A.size else 0.0
    if not lam > 0:
        return 0.0
    # nengo.PES divides its rate by the number of activities it reads
    return A.shape[1] / (pes[0].learning_rate * lam)


def build_warmup(model, rule, error_in, name, seconds):
    """The error signal that ``rule`` reads and the warm-up's length in steps:
    ``error_in`` itself and 0, or, with a warm-up of at least one step
    (``seconds``, as the rule's build resolved its ``warmup``), a signal that
    a `SimErrorWarmup` holds at 0 for that many steps from the first error and
    then sets to ``error_in``."""
    steps = int(round(seconds / model.dt))
    if steps <= 0:
        return error_in, 0
    dtype = rc.float_dtype
    error = Signal(np.zeros(error_in.shape, dtype=dtype), name=f"{name}:error")
    count = Signal(np.zeros(1, dtype=dtype), name=f"{name}:warmup count")
    model.add_op(
        SimErrorWarmup(
            error_in, error, count, steps, tag=f"{name} on {rule.connection}: warm-up"
        )
    )
    return error, steps


def refuse_chained_warmup(rule_type, prefix):
    """A chained rule gets its error from the rule downstream of it, whose
    warm-up holds it: ``"readout"`` (the default) means that warm-up, and a
    number of seconds of its own is refused."""
    warmup = getattr(rule_type, "warmup", None)
    if warmup is not None and warmup != "readout" and warmup > 0:
        raise BuildError(
            f"{prefix}: a warm-up in seconds is for the rule that gets the output "
            "error; this rule is chained and gets its error from the rule "
            "downstream of it, whose warm-up holds it too (set warmup there)"
        )


class SimErrorWarmup(Operator):
    r"""Hold a rule's error at 0 for its first steps.

    Sets ``error`` to 0 for ``steps`` steps from the first on which
    ``error_in`` is not all zero, and to ``error_in`` from then on: the
    warm-up is the first seconds of learning, which `nengo.PES` starts when
    it first gets an error, so steps before (e.g. a test before training,
    with the error gated to 0) do not count. A non-finite ``error_in`` is
    passed on at once, so that the rule refuses it as it would without a
    warm-up.

    Parameters
    ----------
    error_in : Signal
        The error the rule's error connections write.
    error : Signal
        The error the rule reads.
    count : Signal
        The number of steps taken since the first error, shape ``(1,)``
        (updated).
    steps : int
        The length of the warm-up, in steps.
    tag : str, optional
        A label associated with the operator, for debugging purposes.

    Notes
    -----
    1. sets ``[error]``
    2. incs ``[]``
    3. reads ``[error_in]``
    4. updates ``[count]``
    """

    def __init__(self, error_in, error, count, steps, tag=None):
        super().__init__(tag=tag)
        self.steps = steps
        self.sets = [error]
        self.incs = []
        self.reads = [error_in]
        self.updates = [count]

    @property
    def error_in(self):
        return self.reads[0]

    @property
    def error(self):
        return self.sets[0]

    @property
    def count(self):
        return self.updates[0]

    @property
    def _descstr(self):
        return f"{self.error_in} -> {self.error} after {self.steps} steps"

    def make_step(self, signals, dt, rng):
        error_in = signals[self.error_in]
        error = signals[self.error]
        count = signals[self.count]
        steps = self.steps

        def step_simerrorwarmup():
            if count[0] >= steps:
                error[...] = error_in
            elif np.isfinite(error_in).all():
                error[...] = 0
                if count[0] > 0 or error_in.any():
                    count[0] += 1
            else:  # passed on, for the rule to refuse with its own message
                error[...] = error_in

        return step_simerrorwarmup
