"""Small helpers for nengo_fa's example scripts."""

import pathlib
import sys


def show_or_save(name, save_dir=None):
    """Show the open figures, or save them as PNG files.

    They are saved in ``save_dir`` (``--save DIR``) or, when matplotlib has no
    interactive backend (a headless machine, where ``plt.show()`` would drop
    them), in the current folder, as ``NAME.png`` or ``NAME_LABEL.png``.
    Under sphinx-gallery, which collects the figures itself, nothing happens.
    """
    import matplotlib.pyplot as plt  # deferred: nengo_fa does not need it

    if save_dir is None and "sphinx_gallery" in sys.modules:
        return
    non_interactive = ("agg", "cairo", "pdf", "pgf", "ps", "svg", "template")
    if save_dir is None and plt.get_backend().lower() not in non_interactive:
        plt.show()
        return
    folder = pathlib.Path(save_dir or ".")
    folder.mkdir(parents=True, exist_ok=True)
    for number in plt.get_fignums():
        fig = plt.figure(number)
        label = f"_{fig.get_label()}" if fig.get_label() else ""
        path = folder / f"{name}{label}.png"
        fig.savefig(path, dpi=100)
        print(f"saved {path}")
