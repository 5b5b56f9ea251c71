"""SGD, momentum, Nesterov and Adam on the circles network, from the same start.

The 2-4-6-6-4-1 ReLU net of circles.py, the same data, init (hidden biases 0.1), batches and
shuffling for every optimizer; SGD, momentum and Nesterov share one learning rate, so the
difference between them is the velocity alone (momentum 0.9 makes the steady-state step 10×
longer). The epoch at which each first reaches a training-loss threshold is reported for the
main seed and for a few more init seeds. (--quick runs SGD and momentum only.)

    python experiments/optimizers.py --out results/optimizers
"""
from __future__ import annotations

import sys

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
    s.write(out)
    return {"threshold": args.threshold, "epochs_to_threshold": reach, "final_loss": final, "test_accuracy": test_acc,
            "seeds": seeds, "epochs_to_threshold_per_seed": per_seed, "epochs": cfg.epochs}


if __name__ == "__main__":
    main(sys.argv[1:])
