"""The generalisation benchmark runs, and what the rules leave behind is measured.

Learning claims are train -> freeze (error gated to zero) -> test, against PES
only in the same run, with the ensemble and connection seeds fixed
(``benchmarks/generalisation.py``; issue 13).
"""

import importlib.util
import pathlib

import nengo
import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def load():
    spec = importlib.util.spec_from_file_location(
        "bench_generalisation", BENCHMARKS / "generalisation.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_prints_table(capsys):
    gen = load()
    rows, lines = gen.main(["--quick", "--tasks", "product,weights"])
    text = capsys.readouterr().out
    assert "frozen_mean" in text and "vs_pes" in text
    assert {(r["task"], r["rule"]) for r in rows} == {
        (t, r) for t in ("product", "weights") for r in ("pes", "fa", "bp")
    }
    for line in lines:
        assert line["frozen_mean"] >= 0 and line["seeds"] == 1
    fa = [line for line in lines if line["rule"] == "fa"]
    assert all("fa_fail" in line for line in fa)


@pytest.fixture(scope="module")
def product_runs():
    nengo.rc["decoder_cache"]["enabled"] = "False"
    gen = load()
    rows = gen.run_continuous(
        "product", ("pes", "bp"), seed=0, rates=None, quick=False, numpy_ref=False
    )
    return {r["rule"]: r for r in rows}


# The target on the product task: BP's frozen MSE at least 2x lower than
# PES only's. Measured with the current defaults (all rates 3.0), seed 0:
# PES 0.0434, BP 0.0265 (1.64x); over 10 seeds BP 1.43x, worse than PES only on
# 5 (benchmarks/GENERALISATION.md). With all rates 0.3, seed 0 gives 2.07x.
@pytest.mark.xfail(
    strict=True,
    reason="issue 13: at the default rates BP's frozen network is only 1.64x "
    "better than PES only on seed 0 (PES 0.0434, BP 0.0265; target 2x); "
    "flips when the fix lands",
)
def test_frozen_bp_beats_pes_only_twice(product_runs):
    pes = product_runs["pes"]["trained"]
    assert product_runs["bp"]["trained"] * 2.0 <= pes, product_runs
