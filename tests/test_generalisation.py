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
        "product", ("pes", "fa", "bp"), seed=0, rates=None, quick=False, numpy_ref=False
    )
    return {r["rule"]: r for r in rows}


# The targets: frozen MSE on the product task BP >= 2x, FA >= 1.5x lower
# than PES only. Measured with the current defaults (all rates 3.0), seed 0:
# PES 0.0434, FA 0.0615 (0.71x, worse than PES only), BP 0.0265 (1.64x, short of 2x);
# over 10 seeds FA 0.99x, BP 1.43x (benchmarks/GENERALISATION.md).
@pytest.mark.xfail(
    strict=True,
    reason="issue 13: at the default rates the frozen network is worse than PES "
    "only or short of the target (seed 0: PES 0.0434, FA 0.0615, BP 0.0265); "
    "flips when the fix lands",
)
@pytest.mark.parametrize("rule, factor", [("bp", 2.0), ("fa", 1.5)])
def test_frozen_beats_pes_only(product_runs, rule, factor):
    pes = product_runs["pes"]["trained"]
    assert product_runs[rule]["trained"] * factor <= pes, (rule, product_runs)
