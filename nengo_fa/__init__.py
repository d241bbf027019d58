"""nengo_fa: biologically plausible credit assignment for Nengo's hidden layers.

Learning rules that train the encoders, gains and biases of hidden ensembles
from an output error, online, in spiking and rate networks.
"""

from .version import check_nengo_version
from .version import version as __version__

check_nengo_version()

# Importing the builder registers its build functions with nengo's Builder,
# as nengo/builder/__init__.py does, so that nengo.Simulator can build our rules.
from . import builder  # noqa: E402  pylint: disable=wrong-import-position
from .learning_rules import (  # noqa: E402  pylint: disable=wrong-import-position
    BackProp,
    FeedbackAlignment,
)

__copyright__ = "2026, nengo_fa contributors"
__license__ = "GNU General Public License, version 2 or later"
