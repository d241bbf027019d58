"""nengo_fa: biologically plausible credit assignment for Nengo's hidden layers.

Learning rules that train the encoders, gains and biases of hidden ensembles
from an output error, online, in spiking and rate networks.
"""

from .version import check_nengo_version
from .version import version as __version__

check_nengo_version()

# isort: off
# nengo_fa's settings live in nengo.rc; add their section and defaults
from . import settings  # noqa: E402

settings.install()

# Importing the builder registers its build functions with nengo's Builder,
# as nengo/builder/__init__.py does, so that nengo.Simulator can build our rules.
from . import builder  # noqa: E402

# NengoDL's TensorFlow builders for our operators (nengo_fa.dl) import TensorFlow:
# load them only when nengo_dl is imported, before or after nengo_fa.
from . import _dl_hook  # noqa: E402

_dl_hook.install()

from .feedback import (  # noqa: E402
    ActivationAlignment,
    AlignmentTerms,
    BidirectionalAlignment,
    KolenPollack,
    SymmetricAlignment,
)
from .learning_rules import (  # noqa: E402
    ERBP,
    BackProp,
    DifferenceTargetProp,
    LRA,
    FeedbackAlignment,
    SignSymmetry,
    SyntheticGradient,
    TraceRule,
)
from .exceptions import ActivityScaleWarning, StableRangeWarning  # noqa: E402
from .export import (  # noqa: E402
    freeze_params,
    learned_params,
    load_params,
    save_params,
)

# isort: on

__copyright__ = "2026, nengo_fa contributors"
__license__ = "GNU General Public License, version 2 or later"
