"""Smoke tests of the benchmark scripts: they run and print their tables.

Benchmarks measure; they never assert timings. These tests only check that
each script's smallest run works and prints the rows and columns it promises.
"""

import importlib.util
import pathlib
import re
import sys

import numpy as np
import pytest

from nengo_fa.learning_rules import STEADY_FEEDBACK_RATE, TRACKING_FEEDBACK_RATE

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def load(name):
    """Import ``benchmarks/<name>.py`` (not a package) as a module."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))  # memory.py imports speed.py
    spec = importlib.util.spec_from_file_location(
        f"bench_{name}", BENCHMARKS / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table(text, header_start):
    """The rows of the printed table that starts with a header line."""
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0].split()[0] == header_start, text
    return [line.split() for line in lines]


def test_speed_prints_ratio_table(capsys):
    speed = load("speed")
    rows = speed.run([(20, 2, 1)], repeats=1, target_s=0.001)
    lines = table(capsys.readouterr().out, "n")
    assert lines[0] == list(speed.COLUMNS)
    assert len(lines) == 2 and len(lines[1]) == len(speed.COLUMNS)
    assert [int(v) for v in lines[1][:3]] == [20, 2, 1]
    for column, value in zip(speed.COLUMNS[3:], lines[1][3:]):
        if "+" in column:
            # a difference of noisy times: finite, of either sign at this size
            assert np.isfinite(float(value)), column
        else:
            assert float(value) > 0, column
    assert set(rows[0]) == set(speed.COLUMNS)


def test_speed_bits_prints_ratio_table(capsys):
    speed = load("speed")
    rows = speed.run_bits([(20, 3, 2)], rules=("fa", "kp"), repeats=1, target_s=0.001)
    lines = table(capsys.readouterr().out, "rule")
    assert lines[0] == list(speed.BITS_COLUMNS)
    assert [line[0] for line in lines[1:]] == ["fa", "kp"]
    for line in lines[1:]:
        assert [int(v) for v in line[1:4]] == [20, 3, 2]
        assert all(float(v) > 0 for v in line[4:])
    assert set(rows[0]) == set(speed.BITS_COLUMNS)


@pytest.mark.parametrize("kind", ["encoders", "other", "weights", "chain"])
def test_speed_rules_prints_table(capsys, kind):
    """The table of every rule (the default's, the other hidden-layer rules',
    or the weights and chain tables): ratios to PES only, synapse updates per
    second and the memory floor."""
    speed = load("speed")
    rules = {"encoders": speed.RULES, "other": speed.OTHER_RULES}
    rules = {**rules, "weights": ("fa",), "chain": ("bp",)}[kind]
    kind = "encoders" if kind == "other" else kind
    rows = speed.run_rules(
        [("lif", 20, 2, 1)], rules=rules, kind=kind, repeats=1, target_s=0.001
    )
    lines = table(capsys.readouterr().out, "neuron")
    columns = speed.rules_columns(rules)
    assert lines[0] == columns
    assert len(lines) == 2 and len(lines[1]) == len(columns)
    assert lines[1][0] == "lif" and [int(v) for v in lines[1][1:4]] == [20, 2, 1]
    assert all(float(v) > 0 for v in lines[1][4:])
    assert set(rows[0]) == set(columns)


@pytest.mark.parametrize("kind, matrices", [("encoders", 1), ("chain", 2)])
def test_speed_floor_ratio_replaces_pes_reads_by_updates(monkeypatch, kind, matrices):
    """``floor/pes`` is PES only's step with each read-only product of a
    learned matrix replaced by one rank-1 update of it in place, over PES
    only's step; ``floor_G/s`` counts every learned synapse."""
    speed = load("speed")
    steps = {"pes": np.full(3, 100e-6), "fa": np.array([130e-6, 120e-6, 140e-6])}
    monkeypatch.setattr(speed, "time_variants", lambda *args, **kwargs: steps)
    monkeypatch.setattr(speed, "memory_floor", lambda *args, **kwargs: 30e-6)
    monkeypatch.setattr(speed, "read_floor", lambda *args, **kwargs: 10e-6)
    (row,) = speed.run_rules([("lif", 50, 4, 1)], rules=("fa",), kind=kind)
    assert row["floor/pes"] == pytest.approx(1 + matrices * 0.2)
    assert row["floor_G/s"] == pytest.approx(matrices * 50 * 4 / 30e-6 * 1e-9)
    assert row["fa/pes"] == pytest.approx(1.3)
    assert row["pes_us"] == pytest.approx(100)


def test_speed_times_every_neuron_type_named(capsys):
    """``--neuron`` times the neuron types outside the default tables too,
    each hidden layer built of the type named; without it, the default
    tables run rectified linear and LIF only."""
    speed = load("speed")
    built = []
    build_network = speed.build_network

    def spy(variant, n, d, d_out, seed=0, neuron_type=None):
        built.append(type(neuron_type))
        return build_network(variant, n, d, d_out, seed=seed, neuron_type=neuron_type)

    speed.BUILDERS["encoders"] = spy
    extra = [name for name in speed.NEURONS if name not in speed.DEFAULT_NEURONS]
    assert len(extra) == 5
    argv = ["--neuron", *extra, "--n", "10", "--d", "2", "--rules", "fa"]
    speed.main(argv + ["--repeats", "1", "--target-s", "0.001"])
    lines = table(capsys.readouterr().out, "neuron")
    assert [line[0] for line in lines[1:]] == extra
    fa = lines[0].index("fa/pes")
    assert all(float(line[fa]) > 0 for line in lines[1:])
    types = [type(speed.NEURONS[name]()) for name in extra]
    assert built == [t for t in types for _ in ("pes", "fa")]
    assert {c[0] for c in speed.DEFAULT_CONFIGS} == set(speed.DEFAULT_NEURONS)


def test_memory_prints_ratio_table(capsys):
    memory = load("memory")
    memory.run([(20, 3, 2)])
    lines = table(capsys.readouterr().out, "n")
    assert lines[0] == list(memory.COLUMNS)
    assert len(lines) == 2 and len(lines[1]) == len(memory.COLUMNS)
    assert [int(v) for v in lines[1][:3]] == [20, 3, 2]
    ratios = [v for c, v in zip(memory.COLUMNS, lines[1]) if "/" in c]
    assert len(ratios) == 8 and all(float(v) > 0 for v in ratios)


def test_compare_quick_run_writes_its_files(tmp_path, capsys):
    """``compare.py --quick`` runs every method on its two small networks and
    writes the CSV files, the three figures and the summary table. No
    accuracy or timing is asserted: the run is far too short to mean
    anything."""
    compare = load("compare")
    rows, angles = compare.main(
        ["--quick", "--out", str(tmp_path), "--jobs", "1", "--no-progress"]
    )
    for name in ("results.csv", "alignment.csv"):
        assert (tmp_path / name).stat().st_size > 0, name
    for name in ("sample_efficiency", "clock_efficiency", "alignment"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10000, name
    text = capsys.readouterr().out
    assert "accuracy" in text and "ms_image" in text
    for name in compare.QUICK_NETWORKS:
        net = compare.NETWORKS[name]
        ran = {r["method"] for r in rows if r["network"] == name}
        expected = {m.key for m in compare.METHODS if compare.applicable(m, net)}
        assert ran == expected | {"mlp*"}, name
        # every rule with a feedback path is measured on every hidden layer
        measured = {(a["method"], a["layer"]) for a in angles if a["network"] == name}
        for m in compare.METHODS:
            if m.has_feedback and compare.applicable(m, net):
                for layer in range(len(net.layers)):
                    assert (m.key, f"h{layer + 1}") in measured, (name, m.key)
    # the figures can be drawn again from the CSV files alone, and the docs
    # page's three tables printed: accuracy and cost, the difference to PES
    # only per network (a signed number and the seeds below it), what each
    # method needs
    again = tmp_path / "again"
    capsys.readouterr()
    compare.main(
        ["--summarise", str(tmp_path), "--save-figures", str(again), "--docs-tables"]
    )
    assert (again / "sample_efficiency.png").exists()
    tables = capsys.readouterr().out.split(".. list-table::")[1:]
    assert len(tables) == 3
    assert "ms/image" in tables[0]
    assert re.search(r"- [+-]\d+\.\d \(\d/1\)", tables[1])
    assert "PES only" not in tables[1] and "weight transport" in tables[2]


def test_mechanisms_quick_prints_its_tables(capsys):
    """``mechanisms.py --quick`` (one seed, 2 s of training) prints each of
    its tables, with a row for every task and rule it measures."""
    mechanisms = load("mechanisms")
    TASKS = ("product", "white1")
    mechanisms.main(["--quick", "--tasks", ",".join(TASKS)])
    out = capsys.readouterr().out
    for name in mechanisms.TABLES:
        assert f"# {name}" in out
    rows = [line.split() for line in out.splitlines() if line[:2] in ("bp", "fa")]
    # the warm-up table: each rule with and without every warm-up, both tasks
    assert len(rows) == 12 and all(len(r) >= 8 for r in rows), out
    alignment = [line.split() for line in out.splitlines() if line[:6] == "white1"]
    assert any(len(r) >= 8 and float(r[2]) > 0 for r in alignment), out
    # the features, duration and projection tables: a row per task and rule,
    # every cell a ratio to PES only and its count of seeds worse
    for name, cells in (("features", 3), ("duration", 4), ("projection", 3)):
        section = out.split(f"# {name}\n")[1].split("\n# ")[0]
        rows = [r.split() for r in section.splitlines() if r[:8].strip() in TASKS]
        assert [r[:2] for r in rows] == [
            [t, rule] for t in TASKS for rule in ("bp", "fa")
        ], section
        for r in rows:
            ratios = [float(v.rstrip(",")) for v in r[2 : 2 + 2 * cells : 2]]
            worse = [v for v in r[3 : 3 + 2 * cells : 2]]
            assert all(v > 0 for v in ratios) and all(w[-2:] == "/1" for w in worse)
    # the signs table: a row for each seed FA loses on, with a flip of each
    # of its neurons' feedback signs
    section = out.split("# signs\n")[1].split("\n# ")[0]
    neurons = {"product": 10, "white1": 20}
    rows = [r.split() for r in section.splitlines() if r[:8].strip() in TASKS]
    assert rows, section  # measured: FA loses on seed 0 of both, in 2 s
    for r in rows:
        assert float(r[2]) < 1 and r[3].endswith(f"/{neurons[r[0]]}"), section
        assert float(r[4].strip("()")) > 0 and float(r[5]) > 0, section
    # the width table: each task at its own width, then 2, 4 and 8 times it
    section = out.split("# width\n")[1].split("\n# ")[0]
    rows = [r.split() for r in section.splitlines() if r[:8].strip() in TASKS]
    assert [(r[0], int(r[1])) for r in rows] == [
        (t, k * n) for t, n in neurons.items() for k in (1, 2, 4, 8)
    ], section
    for r in rows:
        assert r[3] in ("0/1", "1/1") and r[5] in ("0/1", "1/1"), section
        assert all(float(v.rstrip(",")) > 0 for v in [r[2], r[4], *r[6:10]]), section


def test_mechanisms_backprop_reads_the_live_readout_at_its_rate():
    """The mechanisms' reference runs BackProp through the live readout, so
    its default rates are those of a feedback that tracks (0.3), as
    ``bp0`` gets them in the Nengo runs, not those of `nengo_fa.BackProp`'s
    default, low-passed feedback (0.7)."""
    mechanisms = load("mechanisms")
    gen = mechanisms.gen
    live = gen.default_rates("bp0")
    assert mechanisms.rates("bp") == live == (TRACKING_FEEDBACK_RATE,) * 3
    assert gen.default_rates("bp") == (STEADY_FEEDBACK_RATE,) * 3
    assert mechanisms.rates("fa") == gen.default_rates("fa")


@pytest.mark.parametrize(
    "script, argv, message",
    [
        ("speed", ["--rules", "FA"], "unknown rule(s) FA"),
        ("speed", ["--n", "-5"], "--n must be at least 1"),
        ("speed", ["--repeats", "0"], "--repeats must be at least 1"),
        ("speed", ["--bits", "--neuron", "tanh"], "--neuron does not apply to --bits"),
        ("generalisation", ["--rules", "pes,nope"], "unknown rule 'nope'"),
        ("generalisation", ["--delay", "-1"], "--delay must not be negative"),
        ("generalisation", ["--fraction", "0"], "--fraction must be in (0, 1]"),
        ("generalisation", ["--rates", "1,2"], "--rates takes three values"),
        ("generalisation", ["--seeds", "0"], "--seeds must be at least 1"),
        (
            "generalisation",
            ["--tasks", "digits", "--replay", "2"],
            "--replay is for the continuous tasks",
        ),
        ("generalisation", ["--replay", "0"], "--replay must be at least 1"),
        (
            "generalisation",
            ["--ablation", "--replay", "2"],
            "--replay does not apply to --ablation",
        ),
        (
            "generalisation",
            ["--tasks", "digits", "--width", "2"],
            "--width is for the continuous tasks",
        ),
        ("generalisation", ["--width", "0"], "--width must be at least 1"),
        (
            "generalisation",
            ["--ablation", "--width", "2"],
            "--width does not apply to --ablation",
        ),
        ("generalisation", ["--summarise", "missing.csv"], "no such file"),
        ("compare", ["--seeds", "0"], "--seeds must be at least 1"),
        ("compare", ["--jobs", "0"], "--jobs must be at least 1"),
        ("compare", ["--summarise", "missing"], "no results.csv"),
        ("compare", ["--docs-tables"], "give --summarise"),
        ("mechanisms", ["--tables", "nope"], "unknown table 'nope'"),
        ("mechanisms", ["--seeds", "0"], "--seeds must be at least 1"),
    ],
)
def test_bad_arguments_are_refused(script, argv, message, capsys):
    """Arguments that would run something other than asked (an unknown rule
    timed as PES only, a negative delay run as none) or end in a traceback
    are refused by argparse, naming the option, before anything runs."""
    with pytest.raises(SystemExit) as exit_info:
        load(script).main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
