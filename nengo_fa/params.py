"""Parameters shared by nengo_fa's declarations. Internal."""

import math

from nengo.dists import DistOrArrayParam
from nengo.exceptions import ValidationError
from nengo.params import NumberParam, Parameter
from nengo.utils.numpy import is_array, is_number


class FiniteNumberParam(NumberParam):
    """A `nengo.params.NumberParam` that must also be finite.

    A rate of ``np.inf`` or ``np.nan`` cannot give a finite step; it is refused
    when the object is made, naming the parameter, instead of surfacing as NaN
    parameters or a numpy error during the simulation.
    """

    def coerce(self, instance, num):  # pylint: disable=arguments-renamed
        value = num.item() if is_array(num) and num.shape == () else num
        if is_number(value) and not math.isfinite(value):
            raise ValidationError(
                f"must be a finite number (got {value}); an infinite or NaN value "
                "cannot give a finite step",
                attr=self.name,
                obj=instance,
            )
        return super().coerce(instance, num)


class WarmupParam(Parameter):
    """A warm-up: None, a finite number of seconds at least 0, or
    ``"readout"`` (the downstream PES readout's fastest time constant,
    computed at build time)."""

    def coerce(self, instance, value):  # pylint: disable=arguments-renamed
        value = value.item() if is_array(value) and value.shape == () else value
        if value is None or (isinstance(value, str) and value == "readout"):
            return super().coerce(instance, value)
        if not (
            is_number(value)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value >= 0
        ):
            raise ValidationError(
                "must be None, a finite number of seconds at least 0, or "
                f"'readout' (got {value!r})",
                attr=self.name,
                obj=instance,
            )
        return super().coerce(instance, float(value))


class FeedbackParam(DistOrArrayParam):
    """A rule's fixed feedback matrix: a distribution, or an array.

    Its hash does not depend on its value. `nengo_fa.freeze_params` writes a
    learned feedback into the rule type, and Nengo keys a simulator's data by
    the hash of the rule type (``sim.data[conn.learning_rule]``): a hash that
    followed the value would lose them. Equality still compares the values.
    """

    def hashvalue(self, instance):
        return None
