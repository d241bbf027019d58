import warnings

import nengo
import pytest

# Import names from the module, not `nengo_fa.version` itself: the package
# binds ``version`` to other things, and ``from nengo_fa.version import ...``
# always reaches the module.
from nengo_fa.version import (
    check_nengo_version,
    nengo_latest,
    nengo_minimum,
    version,
    version_info,
)


def test_version_string_matches_version_info():
    assert version.startswith(".".join(str(v) for v in version_info[:3]))
    assert nengo_minimum <= nengo_latest


@pytest.mark.parametrize("nengo_version", ["3.2.0", "3.99.99", "2.8.0"])
def test_too_old_nengo_warns(nengo_version):
    with pytest.warns(UserWarning, match="older than that"):
        assert not check_nengo_version(nengo_version)


@pytest.mark.parametrize("nengo_version", ["4.2.0", "4.2.0.dev0", "5.0.0"])
def test_too_new_nengo_warns(nengo_version):
    with pytest.warns(UserWarning, match="newer than that"):
        assert not check_nengo_version(nengo_version)


@pytest.mark.parametrize("nengo_version", ["4.0.0", "4.1.0", "4.1.7", "4.1.1.dev0"])
def test_tested_nengo_does_not_warn(nengo_version):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_nengo_version(nengo_version)


def test_installed_nengo_is_checked_by_default(monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_nengo_version()  # the installed nengo is in the tested range

    monkeypatch.setattr(nengo, "__version__", "5.0.0")
    with pytest.warns(UserWarning, match="Nengo 5.0.0 is newer"):
        assert not check_nengo_version()

    monkeypatch.setattr(nengo, "__version__", "3.2.0")
    with pytest.warns(UserWarning, match="Nengo 3.2.0 is older"):
        assert not check_nengo_version()


def test_unparseable_version_raises():
    with pytest.raises(ValueError, match="Cannot parse"):
        check_nengo_version("unknown")
