"""SGD, momentum, Nesterov and Adam on the circles network, from the same start; their paths in 2-D.

The 2-4-6-6-4-1 ReLU net of circles.py, the same data, init (hidden biases 0.1), batches and
shuffling for every optimizer; SGD, momentum and Nesterov share one learning rate, so the
difference between them is the velocity alone (momentum 0.9 makes the steady-state step 10×
longer). The epoch at which each first reaches a training-loss threshold is reported for the
main seed and for a few more init seeds. (--quick runs SGD and momentum only.)

A faster epoch count is mostly a longer step, so the script also draws the paths
(fnn.optim.trajectory, fnn.plot.descent) of SGD at η, SGD at η/(1 − α) (momentum's steady-state
step), momentum, Nesterov and Adam on an ill-conditioned bowl ½(x² + κy²) and on Rosenbrock's
valley, with the steps each takes to a tolerance; and full-batch against mini-batch training of
the circles network from one start, loss per step and per epoch (fnn.callbacks.StepLoss).

    python experiments/optimizers.py --out results/optimizers
"""
from __future__ import annotations

import sys
import warnings

import numpy as np

import fnn
from _common import (CIRCLES_QUICK, CirclesConfig, Summary, circles_data, circles_fit, circles_init, circles_model,
                     first_epoch_below, output_dir, parser, plt, savefig)


def optimizers(lr: float, momentum: float, adam_lr: float) -> dict:
    return {
        "sgd": (fnn.optim.sgd(lr), f"lr {lr:g}"),
        "momentum": (fnn.optim.momentum(lr, momentum), f"lr {lr:g}, momentum {momentum:g}"),
        "nesterov": (fnn.optim.nesterov(lr, momentum), f"lr {lr:g}, momentum {momentum:g}"),
        "adam": (fnn.optim.adam(adam_lr), f"lr {adam_lr:g}"),
    }


def _epoch(e):
    return "-" if e is None else str(e)


# --------------------------------------------------------------------------- paths in two variables
KAPPA = 50.0  # the bowl's condition number: curvature 1 along x, KAPPA along y
BOWL_START, BOWL_STEPS = (-5.0, 1.2), 150
ROSENBROCK_START, ROSENBROCK_STEPS = (-1.5, 2.0), 1000
ALPHA = 0.9  # momentum and Nesterov
ADAM_RATES = (0.01, 0.03, 0.1, 0.3)  # Adam runs at the best of these (lowest final f) on each function
TOLERANCE = 1e-3  # steps to f <= TOLERANCE (both minima are f = 0)


def bowl(p):
    return 0.5 * (p[..., 0] ** 2 + KAPPA * p[..., 1] ** 2)


def rosenbrock(p):
    return (1 - p[..., 0]) ** 2 + 100 * (p[..., 1] - p[..., 0] ** 2) ** 2


# One rate η for SGD, momentum and Nesterov on each function, inside all three stability limits
# along the steepest curvature λ: SGD needs ηλ < 2, heavy ball 2(1 + α) = 3.8, Nesterov (this form)
# 2(1 + α)/(1 + 2α) ≈ 1.36. SGD at η/(1 − α) = 10η is then past its own limit: it diverges.
PROBLEMS = {  # name: (f, start, steps, η, why)
    "bowl": (bowl, BOWL_START, BOWL_STEPS, 1.25 / KAPPA, f"η = 1.25/κ: ηλ_max = 1.25, κ = {KAPPA:g}"),
    "rosenbrock": (rosenbrock, ROSENBROCK_START, ROSENBROCK_STEPS, 1e-3,
                   "η = 1e-3, just under SGD's 2/λ_max ≈ 1.05e-3 at the start"),
}


def _quiet_trajectory(opt, f, start, steps):
    """fnn.optim.trajectory, its divergence warning kept as the step it names (None if it stayed finite)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        path = fnn.optim.trajectory(opt, f, start, steps)
    diverged = next((int(np.argmax(~np.isfinite(path).all(axis=1))) for w in caught
                     if "diverged" in str(w.message)), None)
    return path, diverged


def descent_paths(name: str) -> dict:
    """Every optimizer's path on one function: {label: (path, f along it, step it diverged at or None, settings)}."""
    f, start, steps, lr, _ = PROBLEMS[name]
    adam = {}
    for rate in ADAM_RATES:  # one compiled program for all four: the rate is a value in Adam's state
        path, diverged = _quiet_trajectory(fnn.optim.adam(rate), f, start, steps)
        adam[rate] = (path, diverged)
    best = min(ADAM_RATES, key=lambda r: np.nan_to_num(float(f(adam[r][0][-1])), nan=np.inf))
    runs = {
        "SGD η": (fnn.optim.sgd(lr), f"η {lr:g}"),
        "SGD η/(1−α)": (fnn.optim.sgd(lr / (1 - ALPHA)), f"η {lr / (1 - ALPHA):g}"),
        "momentum": (fnn.optim.momentum(lr, ALPHA), f"η {lr:g}, α {ALPHA:g}"),
        "Nesterov": (fnn.optim.nesterov(lr, ALPHA), f"η {lr:g}, α {ALPHA:g}"),
    }
    out = {}
    for label, (opt, settings) in runs.items():
        path, diverged = _quiet_trajectory(opt, f, start, steps)
        out[label] = (path, np.asarray(f(path)), diverged, settings)
    path, diverged = adam[best]
    out["Adam"] = (path, np.asarray(f(path)), diverged, f"η {best:g} (best of {', '.join(map(str, ADAM_RATES))})")
    return out


def steps_to(values: np.ndarray, tolerance: float) -> int | None:
    """The first step (0 = the start) with f <= tolerance, or None."""
    hits = np.flatnonzero(values <= tolerance)
    return int(hits[0]) if hits.size else None


def plot_paths(name: str, runs: dict, out: str) -> str:
    """One panel per optimizer: its path on f's contours, the others faint for comparison (a run that
    diverged is left out and named in the title); on the right, f per step of every run."""
    f, start, steps, lr, _ = PROBLEMS[name]
    finite = {label: r[0] for label, r in runs.items() if r[2] is None}
    fig = plt.figure(figsize=(17, 9.5))
    grid = fig.add_gridspec(2, 3, width_ratios=(1, 1, 1.1))
    panels = [fig.add_subplot(grid[i // 2, i % 2]) for i in range(len(finite))]
    right = fig.add_subplot(grid[:, 2])
    colours = {}
    for ax, focus in zip(panels, finite):
        drawn = fnn.plot.descent(f, finite, ax)  # every path in every panel: one range, one set of contours
        for label, line in drawn.lines.items():
            colours[label] = line.get_color()
            if label != focus:
                line.set(color="white", alpha=0.45, lw=0.8, marker="")
                drawn.ends[label].set_visible(False)
            else:
                line.set(lw=1.6, ms=3.0 if steps <= 200 else 1.2, zorder=3)
        focal = drawn.lines[focus]
        ax.legend([focal, next(iter(drawn.starts.values())), drawn.ends[focus]],
                  [focal.get_label(), "start", "end"], fontsize=7, loc="upper right", framealpha=0.85)
        ax.set_title(f"{focus} ({runs[focus][3]}); the others in white", fontsize=9)
    gone = [f"{label} diverged at step {r[2]}, not drawn" for label, r in runs.items() if r[2] is not None]
    fig.suptitle(f"{name}: {steps} steps from {tuple(start)}" + (f"; {', '.join(gone)}" if gone else ""))
    top = 10 * float(runs["SGD η"][1][0])
    for label, (_, values, diverged, settings) in runs.items():
        colour = colours.get(label, "0.35")
        shown = values if diverged is None else values[:diverged]
        right.semilogy(np.arange(shown.size), np.maximum(shown, 1e-300), color=colour,
                       ls="-" if diverged is None else "--",
                       label=f"{label} ({settings})" + ("" if diverged is None else f", diverged at step {diverged}"))
    right.axhline(TOLERANCE, color="gray", ls=":", label=f"tolerance {TOLERANCE:g}")
    right.set_ylim(max(1e-16, right.get_ylim()[0]), top)
    right.set_xlabel("step")
    right.set_ylabel(f"{name}(x) at the step (log scale)")
    right.set_title(f"{name}(x) against step, SGD η / momentum / Nesterov at η = {lr:g}", fontsize=10)
    right.grid(alpha=0.3, which="both")
    right.legend(fontsize=7, loc="lower left")
    return savefig(fig, out, f"paths_{name}.png")


# --------------------------------------------------------------------------- full batch and mini-batches
def batch_vs_full(model, data, cfg: CirclesConfig, seed: int) -> dict:
    """The same start trained with mini-batches and with the full batch, as many steps each:
    {"mini-batch" / "full batch": (FitResult, batch size, steps per epoch)}."""
    start = circles_init(model, seed, cfg.hidden_bias)
    n = len(data[0])
    per_epoch = -(-n // cfg.batch_size)
    mini = circles_fit(model, start, data, cfg, shuffle_seed=1000 + seed, callbacks=[fnn.callbacks.StepLoss()])
    full_cfg = cfg._replace(batch_size=n, epochs=cfg.epochs * per_epoch)  # one step per epoch, the same steps
    full = circles_fit(model, start, data, full_cfg, shuffle_seed=1000 + seed, callbacks=[fnn.callbacks.StepLoss()])
    return {"mini-batch": (mini, cfg.batch_size, per_epoch), "full batch": (full, n, 1)}


def plot_batches(runs: dict, threshold: float, out: str) -> str:
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4))
    for (label, (result, batch, per_epoch)), colour in zip(runs.items(), ("C0", "C3")):
        per_step = np.concatenate(result.history["step_loss"])
        steps = np.arange(1, per_step.size + 1)
        left.semilogy(steps, per_step, color=colour, lw=0.6 if per_epoch > 1 else 1.4, alpha=0.6 if per_epoch > 1
                      else 1.0, label=f"{label} (batch {batch}): each step's batch loss")
        epochs = np.arange(1, len(result.history["loss"]) + 1)
        right.loglog(epochs, result.history["loss"], color=colour, label=f"{label} (batch {batch}, {per_epoch} "
                     f"step{'s' if per_epoch > 1 else ''} per epoch)")
        if per_epoch > 1:
            left.semilogy(epochs * per_epoch, result.history["loss"], color="k", lw=1.2,
                          label=f"{label}: the epoch's mean, at its last step")
    for ax in (left, right):
        ax.axhline(threshold, color="gray", ls=":", label=f"threshold {threshold:g}")
        ax.set_ylabel("training loss (binary cross-entropy, log scale)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    left.set_xlabel("step (one update of the params)")
    left.set_title("loss per step: same start, same optimizer, as many steps", fontsize=10)
    right.set_xlabel("epoch (one pass over the training set, log scale)")
    right.set_title("loss per epoch: the mean of its steps' batch losses", fontsize=10)
    return savefig(fig, out, "batch_vs_full.png")


def main(argv=None) -> dict:
    p = parser("optimizers", __doc__.splitlines()[0])
    d = CirclesConfig()
    p.add_argument("--lr", type=float, default=d.learning_rate,
                   help="learning rate of SGD, momentum and Nesterov (default: %(default)s)")
    p.add_argument("--momentum", type=float, default=d.momentum, help="momentum (default: %(default)s)")
    p.add_argument("--adam-lr", type=float, default=0.01, help="Adam's learning rate (default: %(default)s)")
    p.add_argument("--threshold", type=float, default=0.1, help="training-loss threshold (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=None, help="init seeds for the table (default: 3, quick: 1)")
    args = p.parse_args(argv)
    s = Summary("Optimizers on the circles network (2-4-6-6-4-1 ReLU, binary cross-entropy)")
    out = output_dir(args.out)
    cfg = (CIRCLES_QUICK if args.quick else d)._replace(learning_rate=args.lr, momentum=args.momentum)
    n_seeds = args.seeds or (1 if args.quick else 3)

    data = circles_data(cfg.n_train, cfg.n_test, cfg.noise, args.seed)
    model = circles_model()
    opts = optimizers(args.lr, args.momentum, args.adam_lr)
    if args.quick:  # each optimizer is one more compiled training program: keep the pair the claim is about
        opts = {name: opts[name] for name in ("sgd", "momentum")}
    seeds = [args.seed + i for i in range(n_seeds)]
    runs = {}  # (name, seed) -> FitResult
    for seed in seeds:
        start = circles_init(model, seed, cfg.hidden_bias)  # one start for every optimizer
        for name, (opt, _) in opts.items():
            runs[name, seed] = circles_fit(model, start, data, cfg, shuffle_seed=1000 + seed, optimizer=opt)

    reach = {name: first_epoch_below(runs[name, args.seed].history["loss"], args.threshold) for name in opts}
    final = {name: runs[name, args.seed].history["loss"][-1] for name in opts}
    test_acc = {name: runs[name, args.seed].history["val_accuracy"][-1] for name in opts}
    per_seed = {name: [first_epoch_below(runs[name, k].history["loss"], args.threshold) for k in seeds]
                for name in opts}

    s.add(f"data: circles, {cfg.n_train} train / {cfg.n_test} test, noise {cfg.noise:g}; batch {cfg.batch_size}, "
          f"{cfg.epochs} epochs, same init (seed {args.seed}, hidden biases {cfg.hidden_bias:g}) and shuffling for all")
    s.add(f"epoch at which the training loss first reaches <= {args.threshold:g} ('-' = not within {cfg.epochs}):")
    s.table(["optimizer", "settings", "epoch", "final loss", "test acc"],
            [(name, opts[name][1], _epoch(reach[name]), final[name], test_acc[name]) for name in opts],
            ["{}", "{}", "{}", "{:.2e}", "{:.2%}"])
    sgd, mom = reach["sgd"], reach["momentum"]
    if mom is not None and (sgd is None or mom < sgd):
        s.add(f"momentum reaches it at epoch {mom}, plain SGD at the same learning rate at "
              f"{'never (within the run)' if sgd is None else f'epoch {sgd}'}"
              + (f": {sgd / mom:.1f}x the epochs" if sgd else ""))
    else:
        s.add(f"momentum did NOT beat plain SGD here (momentum {_epoch(mom)}, sgd {_epoch(sgd)})")
    if n_seeds > 1:
        s.add()
        s.add(f"the same over init seeds {seeds} (epoch reaching loss <= {args.threshold:g}):")
        s.table(["optimizer"] + [f"seed {k}" for k in seeds], [[name] + [_epoch(e) for e in per_seed[name]]
                                                                for name in opts],
                ["{}"] * (n_seeds + 1))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in opts:
        h = runs[name, args.seed].history
        epochs = np.arange(1, len(h["loss"]) + 1)
        line, = axes[0].semilogy(epochs, h["loss"], label=f"{name} ({opts[name][1]})")
        if reach[name] is not None:
            axes[0].plot(reach[name], h["loss"][reach[name] - 1], "o", color=line.get_color())
        axes[1].plot(epochs, h["val_accuracy"], color=line.get_color(), label=name)
    axes[0].axhline(args.threshold, color="gray", ls=":", label=f"threshold {args.threshold:g}")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("training loss (binary cross-entropy)")
    axes[0].set_title(f"same init (seed {args.seed}), dot = first epoch <= threshold")
    axes[0].grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("test accuracy")
    axes[1].set_ylim(0.4, 1.02)
    axes[1].set_title("test accuracy")
    axes[1].grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    savefig(fig, out, "optimizers.png")

    paths = {}
    for name in PROBLEMS:
        runs2d = descent_paths(name)
        _, start, steps, _, why = PROBLEMS[name]
        plot_paths(name, runs2d, out)
        paths[name] = {label: {"steps_to_tolerance": steps_to(values, TOLERANCE),
                               "final": float(values[-1]) if diverged is None else float("nan"),
                               "diverged_at": diverged, "settings": settings}
                       for label, (_, values, diverged, settings) in runs2d.items()}
        s.add()
        s.add(f"{name} from {start}, {steps} steps ({why}): steps to f <= {TOLERANCE:g}, final f "
              f"(plot: paths_{name}.png)")
        s.table(["optimizer", "settings", "steps", "final f"],
                [(label, r["settings"], _epoch(r["steps_to_tolerance"]),
                  f"diverged at step {r['diverged_at']}" if r["diverged_at"] is not None else f"{r['final']:.2e}")
                 for label, r in paths[name].items()], ["{}", "{}", "{}", "{}"])
        r = paths[name]
        big = r["SGD η/(1−α)"]
        s.add(f"momentum reaches it in {_epoch(r['momentum']['steps_to_tolerance'])} steps, SGD at the same η in "
              f"{_epoch(r['SGD η']['steps_to_tolerance'])} ('-' = not within {steps}); SGD at momentum's steady-state "
              f"step η/(1−α) " + (f"diverges (step {big['diverged_at']}): the steep direction allows no such step, "
                                  "so here the velocity's memory, not a longer step, is what gains"
                                  if big["diverged_at"] is not None else
                                  f"takes {_epoch(big['steps_to_tolerance'])}"))

    batches = batch_vs_full(model, data, cfg, args.seed)
    plot_batches(batches, args.threshold, out)
    batch_rows = {}
    for label, (result, batch, per_epoch) in batches.items():
        epoch = first_epoch_below(result.history["loss"], args.threshold)
        batch_rows[label] = {"batch_size": batch, "steps_per_epoch": per_epoch, "epochs_to_threshold": epoch,
                             "steps_to_threshold": None if epoch is None else epoch * per_epoch,
                             "steps": int(sum(len(r) for r in result.history["step_loss"])),
                             "final_loss": result.history["loss"][-1],
                             "test_accuracy": result.history["val_accuracy"][-1]}
    s.add()
    s.add(f"full batch vs mini-batch on the circles network, same start (seed {args.seed}) and optimizer "
          f"({opts['momentum'][1] if 'momentum' in opts else 'momentum'}), the same number of steps; "
          f"epochs to an epoch's mean training loss <= {args.threshold:g}, steps = those epochs' steps "
          "(plot: batch_vs_full.png):")
    s.table(["training", "batch", "steps/epoch", "epochs", "steps", "final loss", "test acc"],
            [(label, r["batch_size"], r["steps_per_epoch"], _epoch(r["epochs_to_threshold"]),
              _epoch(r["steps_to_threshold"]), r["final_loss"], r["test_accuracy"]) for label, r in batch_rows.items()],
            ["{}", "{}", "{}", "{}", "{}", "{:.2e}", "{:.2%}"])
    m, fb = batch_rows["mini-batch"], batch_rows["full batch"]
    s.add(f"per step: full batch {_epoch(fb['steps_to_threshold'])}, mini-batch {_epoch(m['steps_to_threshold'])} "
          f"steps; per epoch: mini-batch {_epoch(m['epochs_to_threshold'])}, full batch "
          f"{_epoch(fb['epochs_to_threshold'])} epochs (a mini-batch epoch is {m['steps_per_epoch']} steps)")
    s.write(out)
    return {"threshold": args.threshold, "epochs_to_threshold": reach, "final_loss": final, "test_accuracy": test_acc,
            "seeds": seeds, "epochs_to_threshold_per_seed": per_seed, "epochs": cfg.epochs, "paths": paths,
            "tolerance": TOLERANCE, "batches": batch_rows}


if __name__ == "__main__":
    main(sys.argv[1:])
