"""nengo_fa version information, and the range of Nengo versions it is tested with.

We use semantic versioning (https://semver.org/) and conform to PEP 440.
``setup.py`` reads this file without importing the package, so it must not
import nengo (or anything else that may not be installed yet) at module level.
"""

import re
import warnings

name = "nengo_fa"
version_info = (0, 1, 0, "dev0")  # (major, minor, patch, optional pre/dev suffix)

version = ".".join(str(v) for v in version_info[:3])
if len(version_info) > 3:
    version += f".{version_info[3]}"

# The tested range of Nengo versions. Any patch release of ``nengo_latest``'s
# minor version counts as tested; a newer minor or major version gets a warning.
nengo_minimum = (4, 0, 0)
nengo_latest = (4, 1, 0)


def _version_tuple(version_string):
    """Return the leading ``(major, minor, patch)`` integers of a version string.

    Pre-release, dev and local suffixes are dropped (``"4.1.1.dev0"`` gives
    ``(4, 1, 1)``); missing parts count as 0.
    """
    match = re.match(r"\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(version_string))
    if match is None:
        raise ValueError(f"Cannot parse version string {version_string!r}")
    return tuple(int(part) if part is not None else 0 for part in match.groups())


def _dotted(version_tuple):
    return ".".join(str(part) for part in version_tuple)


def check_nengo_version(nengo_version=None):
    """Warn if the Nengo version is outside the range nengo_fa is tested with.

    The tested range is ``nengo_minimum <= version < (nengo_latest[0],
    nengo_latest[1] + 1, 0)``: every patch release of the latest tested minor
    version is accepted without a warning.

    Parameters
    ----------
    nengo_version : str, optional
        The version to check. Defaults to the installed ``nengo.__version__``.

    Returns
    -------
    bool
        True if the version is in the tested range (no warning was emitted).
    """
    if nengo_version is None:
        import nengo  # pylint: disable=import-outside-toplevel

        nengo_version = nengo.__version__

    installed = _version_tuple(nengo_version)
    upper = (nengo_latest[0], nengo_latest[1] + 1, 0)
    tested = (
        f"nengo_fa {version} is tested with Nengo {_dotted(nengo_minimum)} "
        f"to {_dotted(nengo_latest[:2])}.x"
    )

    if installed < nengo_minimum:
        warnings.warn(
            f"{tested}; Nengo {nengo_version} is older than that and may not work. "
            f"Upgrade it with: pip install 'nengo>={_dotted(nengo_minimum)}'",
            UserWarning,
            stacklevel=2,
        )
        return False
    if installed >= upper:
        warnings.warn(
            f"{tested}; Nengo {nengo_version} is newer than that. It may work, "
            "but it has not been tested: please report any problems.",
            UserWarning,
            stacklevel=2,
        )
        return False
    return True
