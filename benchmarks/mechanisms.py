"""Why trained layers lose to PES only once frozen: the measurements.

The numpy reference of ``generalisation.py`` (the same maths as the Nengo
runs, from the same built networks: RectifiedLinear rate neurons, PES
readout, ``FeedbackAlignment`` at its default rates and ``BackProp`` through
the live readout (``feedback_synapse=None``) at its default rates for that,
0.3, from the first step, without its default warm-up, except in the
``warmup`` table, which measures it),
instrumented, on the continuous rate tasks (``product``, ``white1`` ..
``white4``), 10 seeds each. Eight tables (docs/theory.rst, "Feedback
alignment on small networks", "What the rules' harm is not", "What the
trained layer is worth" and "What backpropagation's first second does"):

``activity``
    The growth of the hidden layer's mean squared activity :math:`|a|^2`
    (initial against trained layer, over the test input), the correlation of
    the per-seed log frozen ratio with its log, the effective rank of
    :math:`E[a a^T]` before and after, and the frozen ratio to PES only (seeds
    worse) as run, with the readout's effective rate held at PES only's (PES
    rate times PES only's low-passed :math:`|a|^2` over the rule's), and with
    synaptic scaling of the layer (one common factor on gains and biases
    driving a low-pass of :math:`|a|^2` back to its mean over the first 5 s).
``alignment``
    Feedback alignment, per seed: the frozen ratio with all paths and with
    the encoder, gain or bias path off, and the fraction of active neurons
    whose readout weight has the sign of their feedback weight, and the angle
    between FA's and backprop's local errors, over the last quarter of
    training.
``warmup``
    Both rules with the hidden rule off for the first seconds of training
    (fixed, or the readout's fastest time constant
    :math:`\\tau_1 = n / (\\kappa_{PES} \\lambda_{max}(E[a a^T]))` over the
    training input), and for BackProp the size of its change of
    :math:`(S, b)` over the first :math:`\\tau_1` against its whole change.
``features``
    The trained layer apart from the readout trained with it: the frozen
    ratio to PES only as run, with a *fresh readout* (the trained layer
    frozen, and a PES readout trained from zero on it over the same training
    input), and of least-squares decoders fitted offline on the trained layer
    against those of the built one; for the seeds where the rule's frozen
    network is worse than PES only's, the last two ratios per seed.
``duration``
    The frozen ratio to PES only trained as long, with the training input
    played once, twice and four times; and the layer trained once, then
    frozen under a fresh readout trained once more, against PES only trained
    twice; last, the seeds worse than PES only at each length, with their
    ratios.
``projection``
    Both rules learning from the residual of the best readout of the current
    layer instead of the error: a recursive-least-squares fit of the error
    from the activities over a 10 s or 100 s window, subtracted from it
    (variable projection, Golub & Pereyra 1973: the gradient of the loss with
    the readout at its optimum).
``signs``
    Feedback alignment on each seed where its frozen network is worse than
    PES only's: its ratio with the sign of one feedback weight flipped, for
    each neuron in turn (how many flips make it better than PES only, and
    the best), and with every feedback weight given the sign of PES only's
    trained readout weight.
``width``
    Both rules with the task's hidden layer, then with 2, 4 and 8 times as
    many neurons (the same seeds): the frozen ratio to PES only of the same
    width, the seeds worse and the worst ratio, and how far PES only's
    frozen error is above the least-squares error of its random layer.

Run ``python benchmarks/mechanisms.py`` (about 20 minutes on two busy cores),
``--tables activity,warmup``, ``--tasks product --seeds 3``.
"""

import argparse
import copy
import os
import sys
import time
import warnings

import nengo
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generalisation as gen  # noqa: E402

DT = gen.DT
_hidden_step = gen._hidden_step
TASKS = ("product", "white1", "white2", "white3", "white4")
KPES = 1e-4


def _reference(S0, b0, F1, X, Y, code, n_train, kE, kg, kb, kpes, c, opts):
    """`generalisation._numpy_continuous` with its measurements and options.

    ``opts``: (held, scaling, warm, tau_p, tau_h, n0, forget) with ``held``
    an array (PES only's low-passed :math:`|a|^2` at every step; empty: the
    readout's rate is not held), ``scaling`` 1 for synaptic scaling, ``warm``
    the steps before the hidden rule starts, and ``forget`` (0: off) the
    forgetting factor of a recursive-least-squares fit :math:`P` of the
    error from the activities, whose residual :math:`e - P \\cdot a` the
    hidden rule then learns from (through :math:`D - P`, the readout that
    fit implies, for backprop): the error the best readout of the current
    layer would leave."""
    held, scaling, warm, tau_p, tau_h, n0, forget = opts
    n, d = S0.shape
    S, b = S0.copy(), b0.copy()
    P = np.zeros(n)
    Q = np.eye(n) * 1e-3
    gain = np.sqrt((S * S).sum(axis=1))
    ghat = gain.mean()
    gmin, gmax = 1e-3 * ghat, 1e3 * ghat
    imax = max(0.95, np.max(-b / gain))
    D = np.zeros(n)
    xf = np.zeros(d)
    af = np.zeros(n)
    x_seen = np.zeros(d)
    J_seen = np.zeros(n)
    y = yd = td = e = 0.0
    out = np.empty(len(X))
    lp = np.empty(len(X))
    sign = np.full(len(X) // 100 + 1, np.nan)
    cos = np.full(len(X) // 100 + 1, np.nan)
    cp = np.exp(-DT / tau_p)
    lp_a = 0.0
    target = 0.0
    for k in range(len(X)):
        xf = c * xf + (1 - c) * X[k]
        J = S @ xf + b
        x_seen = c * x_seen + (1 - c) * xf
        J_seen = c * J_seen + (1 - c) * J
        a = np.maximum(J, 0)
        y = c * y + (1 - c) * (D @ a)
        yd = c * yd + (1 - c) * y
        td = c * td + (1 - c) * Y[k, 0]
        out[k] = yd - td
        e = c * e + (1 - c) * ((yd - td) if k < n_train else 0.0)
        af = c * af + (1 - c) * a
        lp_a = cp * lp_a + (1 - cp) * (af @ af)
        lp[k] = lp_a
        if k % 100 == 0:
            active = (J > 0).astype(np.float64)
            na = active.sum()
            u = F1 * active
            v = D * active
            uv = np.sqrt(u @ u) * np.sqrt(v @ v)
            if na > 0 and uv > 0:
                sign[k // 100] = (active * (np.sign(D) == np.sign(F1))).sum() / na
                cos[k // 100] = (u @ v) / uv
        if k >= n_train:
            continue
        rate = kpes
        if len(held) > 0:
            rate = kpes * held[k] / max(lp_a, 1e-12)
        D -= (rate / n) * DT * e * af
        if code == 0 or k < warm:
            continue
        Fm = D if code == 2 else F1
        el = e
        if forget > 0:
            # recursive least squares: e ~ P . af over a forgetting window
            Qa = Q @ af
            g = Qa / (forget + af @ Qa)
            P += g * (e - P @ af)
            Q = (Q - np.outer(g, Qa)) / forget
            el = e - P @ af
            if code == 2:
                Fm = D - P
        if not np.any(Fm):
            continue  # no feedback yet: no step, and no scaling either
        S, b, gain = _hidden_step(
            Fm, el, J_seen, x_seen, S, b, gain, kE, kg, kb, DT * ghat, gmin, gmax, imax
        )
        if scaling == 1:
            # for rectified-linear neurons a common factor f on gains and
            # biases scales every activity by f
            if k < n0:
                target += (af @ af) / n0
            else:
                f = (target / max(lp_a, 1e-12)) ** (0.5 * DT / tau_h)
                S *= f
                b *= f
                gain *= f
    return out, S, b, D, lp, sign, cos


try:
    import numba

    _reference = numba.njit(cache=False)(_reference)
except ImportError:  # pragma: no cover
    pass


class Case:
    """One task and seed: its inputs and the built initial network."""

    def __init__(self, task, seed, quick=False, width=1):
        t_train = 2.0 if quick else (40.0 if task == "product" else 60.0)
        t_test = 1.0 if quick else 20.0
        self.X, self.Y, self.windows = gen.continuous_inputs(
            task, seed, t_train, t_test
        )
        self.n_tr = int(round(t_train / DT))
        n = width * (10 if task == "product" else 10 * self.X.shape[1] + 10)
        self.seed, self.quick = seed, quick  # for `width_table`
        net = gen.continuous_network(task, "fa", seed, self.X, self.Y, t_train, None, n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with nengo.Simulator(net, progress_bar=False) as sim:
                self.S0 = sim.data[net.hidden].scaled_encoders
                self.b0 = sim.data[net.hidden].bias
                self.F = sim.data[net.layer1.learning_rule].feedback[:, 0].copy()
        self._trained = {}
        self._tau1 = None
        self._filtered = None

    def run(
        self,
        rule,
        rates=(0.0, 0.0, 0.0),
        held=False,
        scaling=False,
        warm=0.0,
        layer=None,
        projection=0.0,
        feedback=None,
    ):
        """Train, then freeze; ``layer``: the hidden layer's ``(S, b)`` to
        start from, instead of the built one; ``projection``: the window (s)
        of the least-squares fit whose residual the hidden rule learns from
        (0: the error itself); ``feedback``: FA's feedback weights, instead
        of the built ones."""
        code = {"pes": 0, "fa": 1, "bp": 2}[rule]
        S0, b0 = (self.S0, self.b0) if layer is None else layer
        h = self.pes()["lp"] if held else np.zeros(0)
        forget = 1 - DT / projection if projection > 0 else 0.0
        opts = (h, int(scaling), int(round(warm / DT)), 10.0, 0.0, 0, forget)
        if scaling:
            n0 = min(5000, self.n_tr // 2)
            opts = (h, 1, int(round(warm / DT)), 2.0, 5.0, n0, forget)
        out, S, b, D, lp, sign, cos = _reference(
            S0,
            b0,
            self.F if feedback is None else feedback,
            self.X,
            self.Y,
            code,
            self.n_tr,
            *map(float, rates),
            KPES,
            gen._lowpass(0.005),
            opts,
        )
        return dict(
            frozen=gen.mse(out, self.windows["trained"]),
            out=out,
            S=S,
            b=b,
            D=D,
            lp=lp,
            sign=sign,
            cos=cos,
        )

    def replayed(self, k):
        """This case with its training input played ``k`` times before the
        tests (`generalisation.replayed`)."""
        case = copy.copy(self)
        case.X, case.Y, case.windows = gen.replayed(
            self.X, self.Y, self.windows, self.n_tr, k
        )
        case.n_tr = k * self.n_tr
        case._trained = {}
        case._tau1 = case._filtered = None
        return case

    def pes(self):
        return self.trained("pes")

    def trained(self, rule):
        """The run of ``rule`` at its default rates (computed once)."""
        if rule not in self._trained:
            self._trained[rule] = self.run(rule, rates(rule) or (0.0, 0.0, 0.0))
        return self._trained[rule]

    def filtered(self):
        """The input and the target through the 5 ms synapse through which
        the layer and the error see them (computed once)."""
        if self._filtered is None:
            c = gen._lowpass(0.005)
            XY = np.hstack([self.X, self.Y])
            xyf = np.zeros(XY.shape[1])
            F = np.empty_like(XY)
            for k in range(len(XY)):
                xyf = c * xyf + (1 - c) * XY[k]
                F[k] = xyf
            d = self.X.shape[1]
            self._filtered = F[:, :d], F[:, d]
        return self._filtered

    def activities(self, S, b, lo, hi):
        return np.maximum(self.filtered()[0][lo:hi] @ S.T + b, 0)

    def lsq(self, S, b):
        """The test MSE of least-squares decoders (and a constant) fitted
        offline on the layer ``(S, b)`` over the test input, against the
        target as the output sees it (``generalisation.py``'s ``lsq``)."""
        lo, hi = self.windows["trained"]
        A = self.activities(S, b, lo, hi)
        A1 = np.hstack([A, np.ones((len(A), 1))])
        seen = self.filtered()[1][lo:hi]
        dec = np.linalg.lstsq(A1, seen, rcond=None)[0]
        return float(np.mean((A1 @ dec - seen) ** 2))

    def tau1(self):
        """The PES readout's fastest time constant over the training input."""
        if self._tau1 is None:
            A = self.activities(self.S0, self.b0, 0, self.n_tr)
            self._tau1 = len(self.b0) / (KPES * second_moments(A)[0])
        return self._tau1


def second_moments(A):
    """Eigenvalues of :math:`E[a a^T]`, largest first."""
    return np.sort(np.linalg.eigvalsh(A.T @ A / len(A)))[::-1]


def rates(rule):
    """The default rates of ``rule`` as this reference runs it: BackProp
    through the live readout (``bp0`` in ``generalisation.py``), whose
    default is the rate of a feedback that tracks."""
    return gen.default_rates("bp0" if rule == "bp" else rule)


def ratio_cell(p, w):
    return f"{p.mean() / w.mean():.2f}, {int(np.sum(w > p))}/{len(w)}"


def activity_table(cases):
    print(
        "task     rule  |a|^2 after/before (range)  corr  erank before/after  "
        "default      held         scaling"
    )
    pooled = [[], []]
    for task, cs in cases.items():
        p = np.array([c.pes()["frozen"] for c in cs])
        for rule in ("bp", "fa"):
            growth, erank, frozen, held, scaled = [], [], [], [], []
            for c in cs:
                lo, hi = c.windows["trained"]
                r = c.trained(rule)
                ev0 = second_moments(c.activities(c.S0, c.b0, lo, hi))
                ev1 = second_moments(c.activities(r["S"], r["b"], lo, hi))
                growth.append(ev1.sum() / ev0.sum())
                erank.append([(e.sum() ** 2 / (e**2).sum()) for e in (ev0, ev1)])
                frozen.append(r["frozen"])
                held.append(c.run(rule, rates(rule), held=True)["frozen"])
                scaled.append(c.run(rule, rates(rule), scaling=True)["frozen"])
            growth, frozen = np.array(growth), np.array(frozen)
            logr = np.log(p / frozen)
            corr = np.corrcoef(logr, np.log(growth))[0, 1] if len(cs) > 2 else np.nan
            pooled[0] += list(logr)
            pooled[1] += list(np.log(growth))
            er = np.mean(erank, axis=0)
            print(
                f"{task:<8} {rule:<4}  {growth.mean():.2f} ({growth.min():.2f}-"
                f"{growth.max():.2f})          {corr:5.2f}  {er[0]:.2f} / {er[1]:.2f}"
                f"         {ratio_cell(p, frozen):<12} "
                f"{ratio_cell(p, np.array(held)):<12} "
                f"{ratio_cell(p, np.array(scaled))}"
            )
    if len(pooled[0]) > 2:
        print(f"pooled correlation {np.corrcoef(*pooled)[0, 1]:.2f}")


def alignment_table(cases):
    k = rates("fa")[0]
    paths = {
        "all": (k, k, k),
        "no enc": (0.0, k, k),
        "no gain": (k, 0.0, k),
        "no bias": (k, k, 0.0),
    }
    print(
        "task     seed   all    no enc no gain no bias  sign  angle  "
        "(FA; ratio to PES only; sign agreement and angle over the last quarter)"
    )
    for task, cs in cases.items():
        for seed, c in enumerate(cs):
            p = c.pes()["frozen"]
            ratios = {}
            for name, r3 in paths.items():
                r = c.run("fa", r3)
                ratios[name] = p / r["frozen"]
                if name == "all":
                    m = c.n_tr // 100
                    q = slice(3 * m // 4, m)
                    sign = np.nanmean(r["sign"][q])
                    angle = np.degrees(np.arccos(np.nanmean(r["cos"][q])))
            print(
                f"{task:<8} {seed:>4} "
                + " ".join(f"{ratios[n]:6.2f}" for n in paths)
                + f"  {sign:5.2f} {angle:5.0f}"
                + ("  worse" if ratios["all"] < 1 else "")
            )


def warmup_table(cases):
    settings = [("none (default)", lambda c: 0.0), ("0.5 s", lambda c: 0.5)]
    settings += [("tau_1", lambda c: c.tau1()), ("2 s", lambda c: 2.0)]
    settings += [("3 tau_1", lambda c: 3 * c.tau1()), ("10 s", lambda c: 10.0)]
    print("rule warm-up        " + "  ".join(f"{t:<18}" for t in cases))
    print("     (frozen ratio to PES only, seeds worse, worst seed's ratio)")
    for rule in ("bp", "fa"):
        for label, warm in settings:
            cells = []
            for cs in cases.values():
                p = np.array([c.pes()["frozen"] for c in cs])
                w = np.array(
                    [c.run(rule, rates(rule), warm=warm(c))["frozen"] for c in cs]
                )
                cells.append(f"{ratio_cell(p, w)}, {np.min(p / w):.2f}")
            print(f"{rule:<4} {label:<14} " + "  ".join(f"{x:<18}" for x in cells))
    print("BackProp's change of (S, b) over the first tau_1 / over training:")
    for task, cs in cases.items():
        size, cos = [], []
        for c in cs:
            P0 = np.hstack([c.S0, c.b0[:, None]])
            whole = c.trained("bp")
            n_tr, c.n_tr = c.n_tr, int(round(c.tau1() / DT))
            try:
                early = c.run("bp", rates("bp"))
            finally:
                c.n_tr = n_tr
            dw = np.hstack([whole["S"], whole["b"][:, None]]) - P0
            de = np.hstack([early["S"], early["b"][:, None]]) - P0
            size.append(np.linalg.norm(de) / np.linalg.norm(dw))
            cos.append((de * dw).sum() / (np.linalg.norm(de) * np.linalg.norm(dw)))
        print(
            f"{task:<8} size {np.mean(size):.2f} ({np.min(size):.2f}-"
            f"{np.max(size):.2f}), cosine to the whole change {np.mean(cos):.2f}"
        )


def features_table(cases):
    """The trained layer's features against the readout that uses them."""
    print(
        "task     rule  frozen        fresh readout  lsq           "
        "PES only frozen/lsq  seeds worse: (lsq, fresh)"
    )
    print(
        "     (ratios to PES only's, seeds worse; fresh: PES from zero on the "
        "frozen trained layer; lsq: offline decoders on it)"
    )
    for task, cs in cases.items():
        p = np.array([c.pes()["frozen"] for c in cs])
        l0 = np.array([c.lsq(c.S0, c.b0) for c in cs])
        for rule in ("bp", "fa"):
            frozen, fresh, lsq = [], [], []
            for c in cs:
                r = c.trained(rule)
                frozen.append(r["frozen"])
                fresh.append(c.run("pes", layer=(r["S"], r["b"]))["frozen"])
                lsq.append(c.lsq(r["S"], r["b"]))
            frozen, fresh, lsq = map(np.array, (frozen, fresh, lsq))
            worse = [
                f"{s}: ({l0[s] / lsq[s]:.2f}, {p[s] / fresh[s]:.2f})"
                for s in np.flatnonzero(frozen > p)
            ]
            print(
                f"{task:<8} {rule:<4}  {ratio_cell(p, frozen):<13} "
                f"{ratio_cell(p, fresh):<14} {ratio_cell(l0, lsq):<13} "
                f"{np.mean(p / l0):<20.1f} " + "; ".join(worse)
            )


def duration_table(cases):
    """The frozen ratio against the training time; last column: the layer
    trained for 1x, then frozen under a readout trained from zero for 1x more
    (2x in all), against PES only trained 2x."""
    lengths = (1, 2, 4)
    print(
        "task     rule  "
        + "  ".join(f"{f'{k}x training':<12}" for k in lengths)
        + "  1x + fresh 1x  (frozen ratio to PES only trained as long, "
        "seeds worse; then which seeds, and their ratios)"
    )
    for task, cs in cases.items():
        cells = {"bp": [], "fa": []}
        worse = {"bp": [], "fa": []}
        layers, pes = {}, {}
        for k in lengths:
            runs = cs if k == 1 else [c.replayed(k) for c in cs]
            p = pes[k] = np.array([c.pes()["frozen"] for c in runs])
            for rule in cells:
                trained = [c.trained(rule) for c in runs]
                w = np.array([r["frozen"] for r in trained])
                cells[rule].append(ratio_cell(p, w))
                lost = ", ".join(
                    f"{s}: {p[s] / w[s]:.2f}" for s in np.flatnonzero(w > p)
                )
                worse[rule].append(f"{k}x {lost or '-'}")
                if k == 1:
                    layers[rule] = [(r["S"], r["b"]) for r in trained]
        # the 1x layers under fresh readouts, against PES only trained 2x
        for rule in cells:
            fresh = [
                c.run("pes", layer=lb)["frozen"] for c, lb in zip(cs, layers[rule])
            ]
            cells[rule].append(ratio_cell(pes[2], np.array(fresh)))
        for rule, row in cells.items():
            print(
                f"{task:<8} {rule:<4}  "
                + "  ".join(f"{x:<12}" for x in row)
                + "  seeds worse: "
                + "; ".join(worse[rule])
            )


def projection_table(cases):
    """The hidden rule learning from the residual of the best readout of its
    current layer (a least-squares fit over a window) instead of the error."""
    windows = (0.0, 10.0, 100.0)
    print(
        "task     rule  error         residual 10 s  residual 100 s  "
        "(frozen ratio to PES only, seeds worse)"
    )
    for task, cs in cases.items():
        p = np.array([c.pes()["frozen"] for c in cs])
        for rule in ("bp", "fa"):
            cells = []
            for window in windows:
                w = [
                    (
                        c.run(rule, rates(rule), projection=window)["frozen"]
                        if window
                        else c.trained(rule)["frozen"]
                    )
                    for c in cs
                ]
                cells.append(ratio_cell(p, np.array(w)))
            print(f"{task:<8} {rule:<4}  " + "  ".join(f"{x:<13}" for x in cells))


def signs_table(cases):
    """Feedback alignment's losing seeds against the signs of its feedback."""
    print(
        "task     seed  FA     rescued by one flip (best)  signs of PES only's "
        "readout  (FA's frozen ratio to PES only)"
    )
    k = rates("fa")
    for task, cs in cases.items():
        for seed, c in enumerate(cs):
            p = c.pes()["frozen"]
            ratio = p / c.trained("fa")["frozen"]
            if ratio >= 1:
                continue
            flips = []
            for i in range(len(c.F)):
                F = c.F.copy()
                F[i] = -F[i]
                flips.append(p / c.run("fa", k, feedback=F)["frozen"])
            F = np.abs(c.F) * np.sign(c.pes()["D"])
            matched = p / c.run("fa", k, feedback=F)["frozen"]
            flips = np.array(flips)
            rescued = f"{np.sum(flips > 1)}/{len(c.F)} ({flips.max():.2f})"
            print(f"{task:<8} {seed:>4}  {ratio:.2f}   {rescued:<27} {matched:.2f}")


def width_table(cases):
    """Both rules against the width of the hidden layer: the task's own
    width, then 2, 4 and 8 times as many neurons (the same seeds)."""
    widths = (1, 2, 4, 8)
    print(
        "task     n    FA            BP            worst FA  worst BP  "
        "PES only  PES/lsq  (frozen ratio to PES only of the same width, "
        "seeds worse; PES only's frozen MSE over its layer's least squares)"
    )
    for task, cs in cases.items():
        for w in widths:
            runs = cs if w == 1 else [Case(task, c.seed, c.quick, width=w) for c in cs]
            p = np.array([c.pes()["frozen"] for c in runs])
            fa = np.array([c.trained("fa")["frozen"] for c in runs])
            bp = np.array([c.trained("bp")["frozen"] for c in runs])
            l0 = np.array([c.lsq(c.S0, c.b0) for c in runs])
            print(
                f"{task:<8} {len(runs[0].b0):<4} {ratio_cell(p, fa):<13} "
                f"{ratio_cell(p, bp):<13} {np.min(p / fa):<9.2f} "
                f"{np.min(p / bp):<9.2f} {p.mean():<9.4f} {np.mean(p / l0):.1f}"
            )


TABLES = {
    "activity": activity_table,
    "alignment": alignment_table,
    "warmup": warmup_table,
    "features": features_table,
    "duration": duration_table,
    "projection": projection_table,
    "signs": signs_table,
    "width": width_table,
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument(
        "--tables", default=",".join(TABLES), help=f"some of {', '.join(TABLES)}"
    )
    parser.add_argument(
        "--quick", action="store_true", help="one seed, 2 s of training"
    )
    args = parser.parse_args(argv)
    nengo.rc.set("decoder_cache", "enabled", "False")
    tasks = args.tasks.split(",")
    for t in tasks:
        if t not in TASKS:
            parser.error(f"unknown task {t!r}; choose from {', '.join(TASKS)}")
    for name in args.tables.split(","):
        if name not in TABLES:
            parser.error(f"unknown table {name!r}; choose from {', '.join(TABLES)}")
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, not {args.seeds}")
    seeds = range(1 if args.quick else args.seeds)
    t0 = time.time()
    cases = {t: [Case(t, s, args.quick) for s in seeds] for t in tasks}
    for name in args.tables.split(","):
        print(f"# {name}")
        TABLES[name](cases)
    print(f"# {time.time() - t0:.0f} s")
    return cases


if __name__ == "__main__":
    main()
