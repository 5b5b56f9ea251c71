"""The READMEs' figures, made from the committed experiment results (experiments/results/*.json).

README.md, experiments/README.md and experiments/RELIABILITY.md quote the experiments only between
markers,

    <!-- figures:NAME -->...<!-- /figures -->

and this script makes what goes between them from the summary.json files of one run of the
experiments, committed as experiments/results/<run>.json. Nothing there is copied by hand.

    python experiments/readme_figures.py --check   # exit 1 and print the difference if a README is stale
    python experiments/readme_figures.py --write   # rewrite the generated blocks
    python experiments/readme_figures.py --run     # rerun every experiment into experiments/results, then --write

`--run NAME ...` reruns only the named runs (see RUNS); `make figures` is `--run`. A run's pictures
that the READMEs show are copied into docs/img (see IMAGES), so they too come from the run. The runs take
4 to 8 minutes on two shared CPU cores, one after another. Run-to-run, the figures are bitwise the
same on the same machine (every script seeds its data, starts and shuffles); the timings are not.
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from statistics import mean

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
READMES = (os.path.join(ROOT, "README.md"), os.path.join(HERE, "README.md"), os.path.join(HERE, "RELIABILITY.md"))

# run name -> the script and its arguments, in the modes the READMEs quote (the scripts' defaults)
RUNS: dict[str, tuple[str, ...]] = {
    "circles": ("circles.py",),
    "circles_seeds64": ("circles.py", "--seeds", "64"),
    "seed_recipes": ("seed_recipes.py",),
    "derivative": ("derivative.py",),
    "regression": ("regression.py",),
    "regression_real": ("regression_real.py",),
    "digits": ("digits.py",),
    "optimizers": ("optimizers.py",),
    "backprop": ("backprop.py",),
    "sweep": ("sweep.py",),
    "reliability": ("reliability.py", "--mutants"),
    "initializers": ("initializers.py",),
    "tour": ("tour.py",),
    "playground_speed": ("playground_speed.py",),
    "bench": ("bench.py",),  # about 10 minutes with every peer installed (`make bench`): only when named
}
DEFAULT_RUNS = [name for name in RUNS if name != "bench"]
# run name -> (a picture it writes, the docs/img file the READMEs show): copied after each run
IMAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "circles": (("boundary.gif", "circles_boundary.gif"), ("decision_boundary.png", "circles_boundary.png"),
                ("history.png", "circles_history.png")),
    "derivative": (("ascent.png", "derivative_ascent.png"), ("descent.png", "derivative_descent.png")),
    "optimizers": (("optimizers.png", "optimizers.png"),),
    "sweep": (("loss_vs_learning_rate.png", "sweep_learning_rate.png"),),
    "tour": (("gradient.png", "tour_gradient.png"), ("sharpness.png", "tour_sharpness.png"),
             ("activations.png", "tour_activations.png")),
    "playground_speed": (("playground_circles.png", "playground_circles.png"),
                         ("playground_spiral.png", "playground_spiral.png")),
    "bench": (("bench_sweep.png", "bench_w1_sweep.png"),),
}
IMG = os.path.join(ROOT, "docs", "img")

MARKER = re.compile(r"(<!-- figures:([\w.-]+) -->)(.*?)(<!-- /figures -->)", flags=re.S)


# --------------------------------------------------------------------------- formats
def pct(value: float, digits: int = 1) -> str:
    """0.98 -> '98.0%' (digits after the point)."""
    return f"{value:.{digits}%}"


def fixed(value: float, digits: int = 3) -> str:
    """0.4819 -> '0.482'."""
    return f"{value:.{digits}f}"


def signed(value: float, digits: int = 3) -> str:
    """0.003 -> '+0.003', -0.02 -> '−0.020' (a minus sign, not a hyphen)."""
    return f"{value:+.{digits}f}".replace("-", "−")


def sci(value: float, digits: int = 1) -> str:
    """1.74e-4 -> '1.7e-4' (no zero padding in the exponent)."""
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def seconds(value: float) -> str:
    """A time in seconds with three significant digits: '0.015 s', '1.45 s'."""
    return f"{value:.3g} s" if value < 100 else f"{value:.0f} s"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def block(text: str) -> str:
    """Content of a block on lines of its own: a blank line on either side, so Markdown sees it alone."""
    return "\n\n" + text + "\n\n"


# --------------------------------------------------------------------------- the blocks
def _fig(results: dict, run: str) -> dict:
    if run not in results:
        raise SystemExit(f"experiments/results/{run}.json is missing: run `python experiments/readme_figures.py "
                         f"--run {run}` (or `make figures`) to make it")
    return results[run]["figures"]


def seed_recipes_table(r: dict) -> str:
    f = _fig(r, "seed_recipes")
    n, k = f["n_seeds"], f["reached"]
    return block(table(["recipe", f"seeds reaching ≥ {pct(f['target'], 0)} test accuracy"], [
        ["the seed's: Adam 1e-3, 50 epochs, batch 32, zero biases", f"{k['seed_recipe']} / {n}"],
        ["fnn's recommended (`circles.py`): momentum 0.02/0.9, 150 epochs, hidden biases 0.1",
         f"{k['recommended']} / {n}"],
        ["Adam at `fnn.lr_find`'s suggestion for each start, 50 epochs, zero biases", f"{k['lr_find']} / {n}"]]))


def seed_recipes_lr_find(r: dict) -> str:
    f = _fig(r, "seed_recipes")
    k = f["reached"]
    return f"{k['lr_find']} of {f['n_seeds']} starts (the seed's fixed 1e-3: {k['seed_recipe']}"


def regression_real_table(r: dict) -> str:
    f = _fig(r, "regression_real")
    rows = []
    for name, label in (("diabetes", "diabetes (442 × 10, {n_test} test)"),
                        ("friedman1", "friedman1 (noise 1.0, {n_train} / {n_test})")):
        d = f[f"{name}_r2"]
        rows.append([label.format(n_test=d["n_test"], n_train=d["n_train"]),
                     fixed(mean(d["fnn"])), fixed(mean(d["mlp"])),
                     f"{signed(d['diff_mean'])} ({signed(d['diff_worst'])})"])
    return block(table(["data set", "fnn", "MLPRegressor", "difference (worst seed)"], rows))


def _regression_real_verdict(f: dict) -> str:
    return (f"the target, a mean at most {f['target']:g} below `MLPRegressor`'s on both, is "
            + ("met" if f["met"] else "**not met**"))


def regression_real_spread(r: dict) -> str:
    f = _fig(r, "regression_real")
    d = f["diabetes_r2"]
    n = len(d["fnn"])
    return block(f"On diabetes two `MLPRegressor` runs that differ only in `random_state` differ by up to "
                 f"{fixed(d['spread_max'])} in R² over {n} seeds, against a mean fnn − `MLPRegressor` "
                 f"difference of {signed(d['diff_mean'])}; {_regression_real_verdict(f)}.")


def regression_real_row(r: dict) -> str:
    f = _fig(r, "regression_real")
    d, e = f["diabetes_r2"], f["friedman1_r2"]
    spread = max(abs(m - a) for m, a in zip(d["mlp"], d["mlp_again"]))
    diffs = max(abs(a - b) for a, b in zip(d["fnn"], d["mlp"]))
    compare = "larger than" if spread > diffs else "smaller than"
    return (f"fnn {fixed(mean(d['fnn']))} vs {fixed(mean(d['mlp']))} on diabetes, {fixed(mean(e['fnn']))} vs "
            f"{fixed(mean(e['mlp']))} on friedman1; {_regression_real_verdict(f)}. A second `MLPRegressor` per "
            f"seed, another `random_state`, shows the run-to-run spread: on diabetes up to {fixed(spread, 3)}, "
            f"{compare} the largest fnn − `MLPRegressor` difference of a seed ({fixed(diffs, 3)})")


def points(value: float, digits: int = 2) -> str:
    """A difference of two accuracies in percentage points: 0.0015 -> '+0.15', -0.02 -> '−2.00'."""
    return signed(100 * value, digits)


INIT_TASKS = {  # initializers.py's tasks, as the READMEs name them
    "circles": "circles, the seed network 2-4-6-6-4-1, fnn's recipe (momentum 0.02/0.9, 150 epochs, biases 0.1)",
    "circles_keras": "circles, the seed network, the seed's Keras recipe (Adam 1e-3, 50 epochs)",
    "digits": "digits, 64-128-10 (`digits.py`'s recipe, a held-out quarter)",
    "tabular": "`make_classification`, {rows:,} × 20, {n_test:,} held out, 20-64-64-1, Adam, {epochs} epochs",
}
RULE_NAMES = {"he_uniform": "He", "glorot_uniform": "Glorot"}


def _initializers(r: dict) -> tuple[dict, dict, list]:
    """(initializers.py's figures, (task, rule) -> its accuracy row, the paired rows)."""
    f = _fig(r, "initializers")
    return f, {(row["task"], row["rule"]): row for row in f["accuracy"]}, f["paired"]


def _init_verdict(verdict: str) -> str:
    return {"he": "He", "glorot": "Glorot"}.get(verdict, verdict)


def initializers_table(r: dict) -> str:
    f, acc, paired = _initializers(r)

    def cell(row: dict) -> str:
        return f"{pct(row['mean'], 2)} ({pct(row['min'], 2)} – {pct(row['max'], 2)})"

    rows = [[INIT_TASKS[p["task"]].format(**f["tabular"]), str(acc[p["task"], "he_uniform"]["seeds"]),
             cell(acc[p["task"], "he_uniform"]), cell(acc[p["task"], "glorot_uniform"]),
             f"{points(p['glorot - he'])} ± {100 * p['2 SE']:.2f}", _init_verdict(p["verdict"])] for p in paired]
    return block(table(["task (held-out accuracy)", "seeds", "He: mean (range)", "Glorot: mean (range)",
                        "Glorot − He, points (± 2 SE)", "verdict"], rows)
                 + f"\n\nBy the rule, the evidence picks **{RULE_NAMES[f['choice']]}** "
                 f"(`{f['choice']}`) for ReLU layers.")


def initializers_row(r: dict) -> str:
    f, _, paired = _initializers(r)
    parts = [f"{p['task']} {points(p['glorot - he'])} ± {100 * p['2 SE']:.2f} ({_init_verdict(p['verdict'])})"
             for p in paired]
    return (f"Glorot − He in points of mean held-out accuracy (± 2 SE, paired over seeds): {', '.join(parts)}; "
            f"the default chosen by the evidence: `{f['choice']}`")


def _reach(epoch) -> str | None:
    return None if epoch in (None, "-") else str(epoch)


def experiments_table(r: dict) -> str:
    c, c64, sr = _fig(r, "circles"), _fig(r, "circles_seeds64"), _fig(r, "seed_recipes")
    dv, rg, rr = _fig(r, "derivative"), _fig(r, "regression"), _fig(r, "regression_real")
    dg, op, bp, sw = _fig(r, "digits"), _fig(r, "optimizers"), _fig(r, "backprop"), _fig(r, "sweep")
    ini, ini_acc, _ = _initializers(r)
    tab = {rule: ini_acc["tabular", rule] for rule in RULE_NAMES}
    reached = c["reached"]
    epochs = {row["optimizer"]: _reach(row["epoch"]) for row in op["table1"]}
    # optimizers.py's defaults: the loss threshold 0.1, circles.py's 150 epochs (its table does not repeat them)
    sgd = f"in {epochs['sgd']}" if epochs["sgd"] else "not within the 150 epochs"
    a = dv["ascent"]
    d, e = rr["diabetes_r2"], rr["friedman1_r2"]
    best = min((row for row in sw["learning_rates"] if row["median val loss"] is not None),
               key=lambda row: row["median val loss"])
    rows = [
        ["`circles.py` (`make demo`)",
         f"the seed network 2-4-6-6-4-1: {pct(c['test_accuracy'], 2)} test accuracy ({c['n_train']} train / "
         f"{c['n_test']} test points), `boundary.gif` of its start and first 30 epochs; over {reached['n_seeds']} "
         f"init seeds {reached['hidden_bias']} reach ≥ {pct(reached['target'], 0)} (with zero start biases: "
         f"{reached['zero_bias']}); narrow ReLU layers can die, and the script shows which layers did, by their "
         f"deltas"],
        ["`seed_recipes.py`",
         f"over {sr['n_seeds']} init seeds, ≥ {pct(sr['target'], 0)} test accuracy: {sr['reached']['seed_recipe']} "
         f"with the seed's Keras recipe, {sr['reached']['recommended']} with fnn's recommended one, "
         f"{sr['reached']['lr_find']} with Adam at `lr_find`'s suggestion"],
        ["`derivative.py`",
         f"P(x) = −2x² + 12x − 10: finite differences converge to P′ as h shrinks, until rounding; gradient ascent "
         f"from x = {a['start']:g} reaches x = {a['x']:.9f} in {a['iterations']} steps"],
        ["`regression.py`",
         f"sin on [−π, π] by a 1-32-32-1 tanh network: test MSE {sci(rg['test_mse'])} (threshold "
         f"{sci(rg['threshold'], 0)})"],
        ["`regression_real.py`",
         f"diabetes and friedman1 against scikit-learn's `MLPRegressor`: mean test R² {fixed(mean(d['fnn']))} vs "
         f"{fixed(mean(d['mlp']))} and {fixed(mean(e['fnn']))} vs {fixed(mean(e['mlp']))}; "
         + _regression_real_verdict(rr)],
        ["`digits.py`",
         f"scikit-learn's 8×8 digits, softmax + categorical cross-entropy: {pct(dg['test_accuracy'])} test "
         f"accuracy ({len(dg['split_accuracies'])} splits: {pct(min(dg['split_accuracies']))} to "
         f"{pct(max(dg['split_accuracies']))})"],
        ["`optimizers.py`",
         f"from the same start, momentum reaches a training loss of 0.1 in {epochs['momentum']} epochs, plain SGD at "
         f"the same rate {sgd}"],
        ["`backprop.py`",
         f"hand-written backprop vs `jax.grad`: max difference {sci(bp['max_abs_diff']['float32'])} in float32, "
         f"{sci(bp['max_abs_diff']['float64'])} in float64"],
        ["`sweep.py`",
         f"final loss against the learning rate over {sw['setup']['seeds']} seeds (`fnn.plot.learning_rates`): the "
         f"lowest median validation loss, {fixed(best['median val loss'], 4)}, at a rate of "
         f"{best['learning rate']:.2g}; and what a sweep costs"],
        ["`initializers.py`",
         f"He vs Glorot for ReLU layers over seeds, on circles (two recipes), digits and a "
         f"{ini['tabular']['rows']:,}-row `make_classification`: there {pct(tab['he_uniform']['mean'], 2)} vs "
         f"{pct(tab['glorot_uniform']['mean'], 2)}; chosen by the evidence: `{ini['choice']}`"],
    ]
    del c64  # quoted in experiments/README.md; loaded here so that a missing run is named early
    return block(table(["script", "result"], rows))


def sweep_cost(r: dict) -> str:
    sw = _fig(r, "sweep")
    t = r["sweep"]["timings"]["cost"]
    one = t[0]["sweep s"]
    rows = [[str(k["K"]), seconds(row["sweep s"]), f"{row['ms/model sweep']:.1f} ms", f"{row['ms/model fits']:.1f} ms",
             f"{row['sweep s'] / one:.{1 if row['sweep s'] / one < 10 else 0}f}×"]
            for k, row in zip(sw["cost"], t)]
    ratios = [row["ms/model sweep"] / row["ms/model fits"] for k, row in zip(sw["cost"], t) if k["K"] > 1]
    s = sw["setup"]
    return block(f"One run of it (circles 2-4-6-6-4-1, {s['n_train']} samples, {s['epochs']} epochs, momentum, "
                 "steady times after compiling):\n\n"
                 + table(["K models", "one sweep", "per model", "K sequential fits, per model", "sweep K / sweep 1"],
                         rows)
                 + f"\n\nOn two CPU cores a sweep of more than one model took per model {min(ratios):.2g} to "
                 f"{max(ratios):.2g} times what a separate fit took (timings on a shared machine vary from run to "
                 "run); it is not the near-free batching a GPU gives.")


def circles_bias(r: dict) -> str:
    c, c64, sr = _fig(r, "circles"), _fig(r, "circles_seeds64"), _fig(r, "seed_recipes")
    k, k64 = c["reached"], c64["reached"]

    def effect(reached: dict) -> str:
        more = reached["hidden_bias"] - reached["zero_bias"]
        return ("the same count either way" if more == 0 else
                f"{abs(more)} {'more' if more > 0 else 'fewer'} with the start bias")

    text = (f"Over the {k['n_seeds']} init seeds of `python experiments/circles.py`, {k['hidden_bias']}/{k['n_seeds']} "
            f"starts reach ≥ {pct(k['target'], 0)} test accuracy with these defaults and "
            f"{k['zero_bias']}/{k['n_seeds']} with zero start biases: {effect(k)}. Over {k64['n_seeds']} seeds "
            f"(`--seeds {k64['n_seeds']}`) it is {k64['hidden_bias']}/{k64['n_seeds']} against "
            f"{k64['zero_bias']}/{k64['n_seeds']}: {effect(k64)}. `seed_recipes.py`, which trains the same recipe "
            f"with other shuffles (one `fnn.sweep`), counts {sr['reached']['recommended']}/{sr['n_seeds']}.")
    return block(text)


def reliability_table(r: dict) -> str:
    f = _fig(r, "reliability")["reliability"]
    c, m = f["counts"], f["mutants"]
    rows = [
        ["bad inputs × public entry points", f"{f['cases']} cases over {f['entry_points']} entry points"],
        ["… clear fnn error (right class, message names the argument, raised before tracing)",
         f"{c['clear']} / {f['cases']}"],
        ["… raw (non-fnn) errors · silent successes · raised inside a trace",
         f"{c['raw']} · {c['silent']} · {c['traced']}"],
        ["legitimate corner cases that work", f"{f['edge_ok']} / {f['edge_cases']}"],
        ["corrupt or hostile checkpoint files caught",
         f"{f['checkpoint_detected']} / {f['checkpoint_faults']} ({f['corrupt_loads']} corrupt loads, "
         f"{f['checkpoint_raw_errors']} raw errors)"],
        ["code executed from a checkpoint file", f"{f['code_executions']} ({f['code_attempts']} attempts)"],
        ["interrupted saves that left the old checkpoint intact",
         f"{f['old_file_intact']} / {f['saves_interrupted']} ({f['temp_files_left']} temp files left after a "
         "raised error)"],
        ["reproducibility runs bitwise identical",
         f"{f['repro_in_process_identical']} / {f['repro_in_process_runs']} in one process, "
         f"{f['repro_subprocess_identical']} / {f['repro_subprocess_runs']} in a fresh process, "
         f"{f['repro_piece_identical']} / {f['repro_piece_runs']} run in pieces"],
        ["deliberately wrong derivatives caught by the gradient checks",
         "not run (`--mutants`)" if m is None else f"{m['caught']} / {m['mutants']}"],
    ]
    return block(table(["check", "result"], rows))


def reliability_checkpoint(r: dict) -> str:
    n = _fig(r, "reliability")["reliability"]["checkpoint_bytes"]
    return f"A good {n}-byte checkpoint is truncated at every length and has every one of its {8 * n} bits"


def runtimes(r: dict) -> str:
    times = {name: r[name]["timings"]["runtime"] for name in DEFAULT_RUNS if name in r}
    if len(times) < len(DEFAULT_RUNS):
        _fig(r, next(name for name in DEFAULT_RUNS if name not in times))  # names the missing run
    fastest, slowest = min(times, key=times.get), max(times, key=times.get)
    return block(f"In the committed run (one machine, two CPU cores) a script took from {times[fastest]:.0f} s "
                 f"(`{RUNS[fastest][0]}`) to {times[slowest]:.0f} s (`{' '.join(RUNS[slowest])}`), "
                 f"{sum(times.values()) / 60:.1f} minutes for all {len(times)} runs, not counting Python's start "
                 "and imports.")


# --------------------------------------------------------------------------- the bench (experiments/bench.py)
# Its tables are timings of one run: the blocks show the rows as the bench printed them.
BENCH_PEERS = {"fnn": "fnn", "jax": "hand-written JAX, epoch in `lax.scan`", "jax-step": "JAX step in a Python loop",
               "numpy": "NumPy by hand", "torch": "PyTorch eager", "keras": "Keras 3 (JAX)", "flax": "Flax",
               "equinox": "Equinox"}
BENCH_WORKLOADS = {"W1": "W1 circles 2-4-6-6-4-1", "W2": "W2 digits 64-256-256-10", "W3": "W3 784-1024-1024-10"}
BENCH_RESULT_PEERS = {"numpy": "NumPy by hand", "sklearn": "scikit-learn `MLPClassifier`",
                      "torch": "PyTorch eager", "torch-1thread": "PyTorch eager, 1 thread",
                      "keras": "Keras 3 `model.fit`, JAX backend", "fnn-cold": "fnn, empty cache folder",
                      "fnn-warm": "fnn, warm cache"}


def bench_machine(r: dict) -> str:
    m = _fig(r, "bench")["machine"]
    loads = [f"{m[k][0]:.1f}" if m.get(k) else "?" for k in ("load_average_at_start", "load_average_at_end")]
    return (f"One run of {r['bench']['timings']['runtime'] / 60:.1f} minutes on a {m['cpu_count']}-core {m['cpu']}, jax "
            f"{m['jax']}, float32, load average {loads[0]} at the start and {loads[1]} at the end")


def bench_steady(r: dict) -> str:
    rows = _fig(r, "bench")["steady"]
    peers = [k for k in rows[0] if k != "case"]
    cells = []
    for row in rows:
        workload, optimizer, batch = row["case"].split()
        cells.append([f"{BENCH_WORKLOADS.get(workload, workload)}, batch {batch[1:]}, {optimizer}"]
                     + [row[p] for p in peers])
    return block(table(["workload"] + [BENCH_PEERS.get(p, p) for p in peers], cells))


def bench_memory(r: dict) -> str:
    rows = _fig(r, "bench").get("memory", [])
    return block(table(["workload", "peer", "peak RSS MB", "before training MB", "training adds MB"],
                       [[row["workload"], BENCH_PEERS.get(row["peer"], row["peer"]), row["peak RSS"],
                         row["before training"], row["training adds"]] for row in rows]))


def bench_result(r: dict) -> str:
    rows = _fig(r, "bench")["time_to_result"]
    return block(table(["peer", "spawn to exit s (median)", "min–max s", "imports s", "test accuracy"],
                       [[BENCH_RESULT_PEERS.get(row["peer"], row["peer"]), row["wall s"], row["min–max"],
                         row["imports s"], row["test acc"]] for row in rows]))


def bench_rates(r: dict) -> str:
    (row,) = _fig(r, "bench")["learning_rates"]
    return (f"eight learning rates one after another in one warm process took {row['wall s']} s from spawn to "
            f"exit: the first `fit` {row['first fit s']} s (its programs loaded from the cache), each later one "
            f"{row['each later fit s']} s")


def bench_sweeps(r: dict) -> str:
    rows = _fig(r, "bench")["sweeps"]
    return block(table(["K models (rates × seeds)", "fnn.sweep s", "× K = 1", "hand-written vmap s", "× its K = 1",
                        "fnn / vmap"],
                       [[f"{row['K']} ({row['rates×seeds']})", row["fnn s"], row["fnn ×K=1"], row["vmap s"],
                         row["vmap ×own K=1"], row["fnn/vmap"]] for row in rows]))


def bench_floor(r: dict) -> str:
    """The floor (import jax, one op, import fnn) beside the seed example, and the issue's ratios."""
    f = _fig(r, "bench")
    floor = {row["process"]: row for row in f["floor"]}
    result = {row["peer"]: row for row in f["time_to_result"]}
    (rates,) = f["learning_rates"]
    names = {"import jax": '`python -c "import jax"`', "import jax + one op": "`import jax` + one small op",
             "import fnn": '`python -c "import fnn"`'}
    rows = [[names.get(k, k), v["wall s"], v["best s"]] for k, v in floor.items()]
    rows += [[f"{BENCH_RESULT_PEERS[k]}, the seed example", result[k]["wall s"], result[k]["min–max"].split("–")[0]]
             for k in ("numpy", "fnn-cold", "fnn-warm") if k in result]
    rows.append(["eight learning rates one after another, one warm process", rates["wall s"], ""])
    warm, cold = float(result["fnn-warm"]["wall s"]), float(result["fnn-cold"]["wall s"])
    op, jax_, fnn_ = (float(floor[k]["wall s"]) for k in ("import jax + one op", "import jax", "import fnn"))
    best = float(floor["import fnn"]["best s"]) - float(floor["import jax"]["best s"])
    ratios = (f"Ratios from that run: fnn warm / (`import jax` + one op) {warm / op:.2f} (target ≤ 1.1); cold / "
              f"warm {cold / warm:.2f} (target ≤ 2); eight rates − warm {float(rates['wall s']) - warm:+.2f} s "
              f"(target ≤ 0.3 s); `import fnn` − `import jax` {fnn_ - jax_:+.2f} s median, {best:+.2f} s best of "
              "each (target ≤ 0.15 s).")
    return block(table(["process", "median s", "best s"], rows) + "\n\n" + ratios)


def bench_targets(r: dict) -> str:
    rows = _fig(r, "bench")["targets"]
    return block(table(["target", "measured", ""], [[row["target"], row["measured"], row[""]] for row in rows]))


BLOCKS: dict[str, Callable[[dict], str]] = {
    "seed_recipes.table": seed_recipes_table,
    "seed_recipes.lr_find": seed_recipes_lr_find,
    "regression_real.table": regression_real_table,
    "regression_real.spread": regression_real_spread,
    "regression_real.row": regression_real_row,
    "experiments.table": experiments_table,
    "sweep.cost": sweep_cost,
    "circles.bias": circles_bias,
    "initializers.table": initializers_table,
    "initializers.row": initializers_row,
    "reliability.table": reliability_table,
    "reliability.checkpoint": reliability_checkpoint,
    "runtimes": runtimes,
    "bench.machine": bench_machine,
    "bench.steady": bench_steady,
    "bench.memory": bench_memory,
    "bench.result": bench_result,
    "bench.rates": bench_rates,
    "bench.sweeps": bench_sweeps,
    "bench.targets": bench_targets,
    "bench.floor": bench_floor,
}


# --------------------------------------------------------------------------- reading, checking, writing
def load_results(folder: str = RESULTS) -> dict:
    """run name -> its summary.json, for every experiments/results/<run>.json."""
    out = {}
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if name.endswith(".json"):
            with open(os.path.join(folder, name)) as f:
                out[name[:-5]] = json.load(f)
    return out


def render(text: str, results: dict, path: str = "README") -> str:
    """text with every figures block made anew from results."""

    def one(match: re.Match) -> str:
        name = match.group(2)
        if name not in BLOCKS:
            raise SystemExit(f"{path}: unknown figures block {name!r}; known: {', '.join(sorted(BLOCKS))}")
        return match.group(1) + BLOCKS[name](results) + match.group(4)

    return MARKER.sub(one, text)


def stale(results: dict, paths=READMES):
    """(path, its text, the text results make) for each README whose generated blocks differ."""
    for path in paths:
        with open(path) as f:
            text = f.read()
        new = render(text, results, path)
        if new != text:
            yield path, text, new


def check(results: dict, paths=READMES) -> list[str]:
    """A unified diff per README whose generated blocks differ from what results make; [] if none."""
    diffs = []
    for path, text, new in stale(results, paths):
        rel = os.path.relpath(path, ROOT)
        diffs.append("".join(difflib.unified_diff(text.splitlines(True), new.splitlines(True),
                                                  f"{rel} (as committed)", f"{rel} (from experiments/results)")))
    return diffs


def write(results: dict, paths=READMES) -> list[str]:
    """Rewrite the generated blocks; returns the paths that changed."""
    changed = []
    for path, _, new in list(stale(results, paths)):
        with open(path, "w") as f:
            f.write(new)
        changed.append(path)
    return changed


def run(names, python: str = sys.executable) -> None:
    """Rerun the named experiments (each in its own process, one after another) into experiments/results."""
    os.makedirs(RESULTS, exist_ok=True)
    for name in names:
        script, *args = RUNS[name]
        out = os.path.join("results", name)
        command = [python, os.path.join("experiments", script), "--out", out, *args]
        print("$", " ".join(command), flush=True)
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        shutil.copyfile(os.path.join(ROOT, out, "summary.json"), os.path.join(RESULTS, f"{name}.json"))
        for picture, shown in IMAGES.get(name, ()):
            shutil.copyfile(os.path.join(ROOT, out, picture), os.path.join(IMG, shown))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="experiments/readme_figures.py", description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 and print the difference if a README is stale")
    mode.add_argument("--write", action="store_true", help="rewrite the READMEs' generated blocks")
    mode.add_argument("--run", nargs="*", metavar="NAME", choices=sorted(RUNS),
                      help="rerun these experiments (default: all but bench) into experiments/results, then --write")
    args = p.parse_args(argv)
    if args.run is not None:
        run(args.run or DEFAULT_RUNS)
    results = load_results()
    if args.check:
        diffs = check(results)
        for d in diffs:
            print(d, end="")
        if diffs:
            print("\nthe READMEs differ from experiments/results: run `python experiments/readme_figures.py --write`")
        return 1 if diffs else 0
    for path in write(results):
        print(f"rewrote {os.path.relpath(path, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
