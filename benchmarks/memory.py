"""Memory of a built simulator whose hidden layer learns, relative to PES only.

Builds the networks of ``speed.py`` (``pes``, ``fa``, ``bp`` and the ``node``
sketch) and reports, for each:

- ``signals``: the bytes held by the simulator's signals (``sim.signals``),
  the state that lives for the whole simulation;
- ``peak``: the peak of memory allocated while building the simulator and
  running a few steps (``tracemalloc``), which also counts build temporaries
  such as decoder solves and operator scratch arrays (but not one-time costs
  such as importing numba and loading nengo_fa's compiled loops: a small
  warm-up run does those first).

Both are in MiB; ``x/pes`` columns are ratios to PES only. Memory does not
depend on timing, so one measurement is enough.

Run ``python benchmarks/memory.py`` (``--quick`` for a small subset).
"""

import argparse
import gc
import itertools
import os
import sys
import tracemalloc

import nengo
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from speed import VARIANTS, make_simulator  # noqa: E402

COLUMNS = (
    "n",
    "d",
    "d_out",
    "pes_MiB",
    "fa/pes",
    "bp/pes",
    "node/pes",
    "fa_ref/pes",
    "pes_peak",
    "fa/pes_pk",
    "bp/pes_pk",
    "node/pes_pk",
    "fa_ref/pes_pk",
)

MIB = 2.0**20


def measure(variant, n, d, d_out, steps=5):
    """``(signal bytes, peak traced bytes)`` of one built and stepped network."""
    gc.collect()
    tracemalloc.start()
    try:
        with make_simulator(variant, n, d, d_out) as sim:
            sim.run_steps(steps)
            signal_bytes = sum(
                v.nbytes for v in sim.signals.values() if isinstance(v, np.ndarray)
            )
            # the Node sketch keeps its state outside the signals
            for node in sim.model.toplevel.all_nodes:
                for value in getattr(node.output, "__dict__", {}).values():
                    if isinstance(value, np.ndarray):
                        signal_bytes += value.nbytes
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return signal_bytes, peak


def run(sizes, out=sys.stdout):
    """Measure every configuration in ``sizes`` and print the table."""
    rows = []
    # one-time costs are not per-simulator memory: importing numba and
    # loading (or compiling) nengo_fa's kernels happen in this warm-up
    for v in VARIANTS:
        measure(v, 10, 2, 1)
    print(format_header(), file=out)
    for n, d, d_out in sizes:
        m = {v: measure(v, n, d, d_out) for v in VARIANTS if v != "bp_ref"}
        row = {"n": n, "d": d, "d_out": d_out}
        row["pes_MiB"] = m["pes"][0] / MIB
        row["pes_peak"] = m["pes"][1] / MIB
        for v in VARIANTS[1:]:
            if f"{v}/pes" not in COLUMNS:
                continue
            row[f"{v}/pes"] = m[v][0] / m["pes"][0]
            row[f"{v}/pes_pk"] = m[v][1] / m["pes"][1]
        rows.append(row)
        print(format_row(row), file=out, flush=True)
    return rows


def format_header():
    return " ".join(f"{c:>11}" for c in COLUMNS)


def format_row(row):
    return " ".join(
        f"{row[c]:>11d}" if isinstance(row[c], int) else f"{row[c]:>11.2f}"
        for c in COLUMNS
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="two small sizes, seconds")
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--d", type=int, nargs="+", default=[2, 64])
    parser.add_argument("--d-out", type=int, nargs="+", default=[10])
    args = parser.parse_args(argv)
    nengo.rc["decoder_cache"]["enabled"] = "False"
    if args.quick:
        sizes = [(100, 2, 1), (500, 64, 10)]
    else:
        sizes = list(itertools.product(args.n, args.d, args.d_out))
    print("# MiB of signals (and peak traced MiB while building); ratios to PES only")
    return run(sizes)


if __name__ == "__main__":
    main()
