"""Parameters shared by nengo_fa's declarations. Internal."""

import math

from nengo.exceptions import ValidationError
from nengo.params import NumberParam
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
