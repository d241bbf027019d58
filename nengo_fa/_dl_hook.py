"""Load `nengo_fa.dl` (NengoDL's builders for our operators) once nengo_dl is used.

`nengo_fa.dl` imports TensorFlow, which takes seconds and may not be installed,
so ``import nengo_fa`` does not import it. Instead, `install` makes sure it is
imported as soon as ``nengo_dl`` is: at once if ``nengo_dl`` is already
imported, otherwise right after ``import nengo_dl`` finishes, through a
`sys.meta_path` finder that wraps the loader of the ``nengo_dl`` package. The
finder does nothing for other modules and removes itself once it has fired.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

_DL_MODULE = "nengo_fa.dl"


def _load_dl():
    try:
        importlib.import_module(_DL_MODULE)
    except Exception as e:  # pylint: disable=broad-except
        # a failure here must not make `import nengo_dl` fail for models that
        # do not use nengo_fa; building one that does will then report
        # "No registered builder for operators of type SimHiddenLayerRule"
        warnings.warn(f"nengo_fa could not load its NengoDL builders: {e!r}")


class _LoadAfter(importlib.abc.Loader):
    """Wraps nengo_dl's loader: execute nengo_dl, then import nengo_fa.dl."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        _load_dl()

    def __getattr__(self, name):  # get_resource_reader, is_package, ...
        return getattr(self.loader, name)


class NengoDLFinder(importlib.abc.MetaPathFinder):
    """Finds ``nengo_dl`` with the other finders and wraps its loader."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "nengo_dl":
            return None
        uninstall()  # fire once; also keeps the lookup below from recursing
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _LoadAfter(spec.loader)
        return spec


_FINDER = NengoDLFinder()


def install():
    """Import `nengo_fa.dl` now if nengo_dl is imported, else right after it is."""
    if "nengo_dl" in sys.modules:
        _load_dl()
    elif _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall():
    """Remove the finder (`nengo_fa.dl` is then no longer loaded automatically)."""
    while _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
