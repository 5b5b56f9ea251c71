"""Many circles networks in one compiled call: the learning-rate lesson, and what the sweep costs.

Trains the seed network 2-4-6-6-4-1 with momentum SGD over a grid of learning rates × seeds with
fnn.sweep, plots the final validation loss against the learning rate (median and the band over
seeds), and times K = 1, 8, 64, 256 models as one sweep against K sequential fnn.fit calls.
"""
from __future__ import annotations

import time
import warnings

import jax
import numpy as np

import fnn
from _common import Summary, circles_data, circles_model, output_dir, parser, plt, savefig


def momentum(lr):
    return fnn.optim.momentum(lr, 0.9)


def _time(f, repeats=1):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None) -> dict:
    args = parser("sweep", __doc__.splitlines()[0]).parse_args(argv)
    out = output_dir(args.out)
    summary = Summary("fnn.sweep: learning rates × seeds in one compiled program")
    n_train, n_val, epochs = (256, 128, 10) if args.quick else (512, 256, 40)
    x, y, xv, yv = circles_data(n_train, n_val, noise=0.05, seed=args.seed)
    model = circles_model()
    kwargs = dict(epochs=epochs, batch_size=32, validation_data=(xv, yv))

    # The learning-rate lesson: crawl, converge, diverge.
    rates = np.logspace(-3, 1, 9 if args.quick else 17)
    seeds = list(range(3 if args.quick else 8))
    runs = fnn.sweep(model, x, y, optimizer=momentum, learning_rates=rates, seeds=seeds, **kwargs)
    final = np.where(np.isnan(runs.score), np.inf, runs.score)
    best_lr, best_seed, _ = runs.best()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    fnn.plot.learning_rates(runs, ax, metric="val_loss")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate (momentum 0.9)")
    ax.set_ylabel(f"validation loss after {epochs} epochs")
    ax.set_title("circles 2-4-6-6-4-1: too small crawls, too large stalls or diverges")
    savefig(fig, out, "loss_vs_learning_rate.png")
    shown = np.where(np.isfinite(final), final, np.nan)
    diverged = np.mean(np.asarray(runs.stop_reasons) == "non_finite_loss", axis=1)
    summary.add(f"{len(rates)} learning rates × {len(seeds)} seeds, {epochs} epochs each")
    summary.table(["learning rate", "median val loss", "best", "worst", "diverged"],
                  [(r, np.nanmedian(row) if np.isfinite(row).any() else np.nan, np.nanmin(row) if np.isfinite(row).any()
                    else np.nan, np.nanmax(row) if np.isfinite(row).any() else np.nan, d)
                   for r, row, d in zip(rates, shown, diverged)],
                  ["{:.4g}", "{:.4f}", "{:.4f}", "{:.4f}", "{:.0%}"], name="learning_rates")
    summary.add(f"best: learning rate {best_lr:.4g}, seed {best_seed}")
    summary.record("best", {"learning_rate": best_lr, "seed": best_seed})
    summary.record("setup", {"n_train": n_train, "n_val": n_val, "epochs": epochs, "seeds": len(seeds)})
    summary.add()

    # Cost: K models as one sweep against K sequential fits (both compiled once before timing).
    sizes = [1, 8, 16] if args.quick else [1, 8, 64, 256]
    timing = []
    for k in sizes:
        n_seeds = 1 if k == 1 else max(1, k // 8)
        grid = list(np.logspace(-3, 0, k // n_seeds))
        sweep = lambda: jax.block_until_ready(fnn.sweep(model, x, y, optimizer=momentum, learning_rates=grid,
                                                        seeds=list(range(n_seeds)), **kwargs).params)
        first = _time(sweep)
        steady = _time(sweep, repeats=2)

        def sequential():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for lr in grid:
                    for s in range(n_seeds):
                        r = fnn.fit(model, model.init(jax.random.key(s), 2), x, y, optimizer=momentum(lr),
                                    key=jax.random.key(s), **kwargs)
                jax.block_until_ready(r.params)

        sequential()  # compile once
        seq = _time(sequential)
        timing.append((k, first, steady, steady / k * 1e3, seq / k * 1e3, seq / steady))
    one = timing[0][2]
    summary.add("time per model: one sweep of K models vs K sequential fits (steady, compiled)")
    summary.table(["K", "sweep first call s", "sweep s", "ms/model sweep", "ms/model fits", "fits/sweep",
                   "sweep K / sweep 1"],
                  [row + (row[2] / one,) for row in timing],
                  ["{:d}", "{:.2f}", "{:.3f}", "{:.2f}", "{:.2f}", "{:.1f}x", "{:.2f}x"], name="cost",
                  timing=("sweep first call s", "sweep s", "ms/model sweep", "ms/model fits", "fits/sweep",
                          "sweep K / sweep 1"))
    k64 = [row for row in timing if row[0] == 64]
    if k64:
        summary.add(f"64 models cost {k64[0][2] / one:.2f}x one model (target < 4x)")
    summary.write(out)
    return {"best_learning_rate": best_lr, "timing": timing, "ratio_64": (k64[0][2] / one) if k64 else None,
            "diverged": diverged.tolist()}


if __name__ == "__main__":
    main()
