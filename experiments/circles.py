"""Two concentric circles with the seed network 2-4-6-6-4-1 (`make demo`).

ReLU hidden layers, a sigmoid output, binary cross-entropy, momentum SGD through fnn.fit. The
4-unit ReLU layers are fragile: some random starts lose a whole layer to dead units and stall at
50-80% accuracy. So the run is repeated over several init seeds, with the chosen defaults and
with the library's plain init (zero biases) beside them, and a failed (or deliberately bad)
start is taken apart layer by layer with fnn.backprop.dead_units and fnn.backprop.deltas.

The run of the default seed records its parameters every epoch (fnn.callbacks.Snapshots(every=1),
which also keeps the start), and fnn.plot.animate(frames="changes", loss_curve=True) turns them into
boundary.gif: a frame wherever the predicted class changed on more than 1% of the grid since the last
frame (the start and the end always), so the movie covers the epochs where the boundary takes shape
rather than many frames of one that sits still; beside it, the loss of every epoch's params.

    python experiments/circles.py --out results/circles
"""
from __future__ import annotations

import os
import sys

import numpy as np

import fnn
from _common import (CIRCLES_QUICK, CirclesConfig, Summary, bar_groups, circles_data, circles_fit, circles_init,
                     circles_model, layer_names, layer_report, output_dir, parser, plot_history, plt, savefig)

TARGET = 0.99
BAD_BIAS = -1.0  # the deliberately bad start: every hidden bias at −1, so most ReLUs begin switched off


def _decision_panel(ax, model, params, x, y, title):
    contours, _ = fnn.plot.decision_boundary(model, params, x, y, ax)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    return contours


def _diagnose(s: Summary, model, label, start, result, x, y):
    """Print per layer: dead units and mean |δ| at the start and after training; return the reports."""
    before = layer_report(model, start, x, y)
    after = layer_report(model, result.params, x, y)
    s.add(f"{label}: train loss {before.loss:.4f} -> {after.loss:.4f}")
    rows = [(name, f"{b}/{u}", f"{a}/{u}", db, da, ga)
            for name, u, b, a, db, da, ga in zip(layer_names(model), before.units, before.dead, after.dead,
                                                 before.mean_abs_delta, after.mean_abs_delta, after.grad_norm)]
    s.table(["layer", "dead@start", "dead@end", "mean|δ|@start", "mean|δ|@end", "‖grad‖@end"], rows,
            ["{}", "{}", "{}", "{:.2e}", "{:.2e}", "{:.2e}"])
    whole = [i + 1 for i, (d, u) in enumerate(zip(after.dead, after.units)) if d == u]
    zero = [i + 1 for i, v in enumerate(after.mean_abs_delta) if v == 0.0]
    if whole:
        s.add(f"  -> layer(s) {whole} entirely dead after training: no signal passes them, so δ = 0 exactly in "
              f"layer(s) {zero or 'none'} and the weights below cannot learn; the output sees a constant.")
    elif zero:
        s.add(f"  -> δ = 0 exactly in layer(s) {zero}: nothing below them learns.")
    else:
        part = [f"layer {i + 1}: {d}/{u}" for i, (d, u) in enumerate(zip(after.dead, after.units)) if d]
        if part:
            s.add(f"  -> dead units at the end ({', '.join(part)}): too few live units are left to carve out "
                  "the inner circle, and a dead unit gets no gradient to come back")
    return before, after


def main(argv=None) -> dict:
    p = parser("circles", __doc__.splitlines()[0])
    d = CirclesConfig()
    p.add_argument("--seeds", type=int, default=None, help="init seeds to sweep (default: 8, quick: 3)")
    p.add_argument("--noise", type=float, default=d.noise, help="circle noise (default: %(default)s)")
    p.add_argument("--lr", type=float, default=d.learning_rate, help="learning rate (default: %(default)s)")
    p.add_argument("--momentum", type=float, default=d.momentum, help="momentum (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=None, help=f"epochs (default: {d.epochs}, quick: "
                                                            f"{CIRCLES_QUICK.epochs})")
    p.add_argument("--hidden-bias", type=float, default=d.hidden_bias,
                   help="initial bias of the ReLU layers (default: %(default)s)")
    args = p.parse_args(argv)
    s = Summary("Circles: 2-4-6-6-4-1 ReLU net, sigmoid output, binary cross-entropy")
    out = output_dir(args.out)
    base = CIRCLES_QUICK if args.quick else d
    cfg = base._replace(noise=args.noise, learning_rate=args.lr, momentum=args.momentum,
                        hidden_bias=args.hidden_bias, epochs=args.epochs or base.epochs)
    n_seeds = args.seeds or (3 if args.quick else 8)

    data = circles_data(cfg.n_train, cfg.n_test, cfg.noise, args.seed)
    x_train, y_train, x_test, y_test = data
    model = circles_model()
    seeds = [args.seed + i for i in range(n_seeds)]

    def run(seed, bias, **record):
        start = circles_init(model, seed, bias)
        result = circles_fit(model, start, data, cfg, shuffle_seed=1000 + seed, **record)
        return start, result, fnn.evaluate(model, result.params, x_test, y_test)["accuracy"]

    # The default seed's run also records its parameters, for boundary.gif.
    runs = {args.seed: run(args.seed, cfg.hidden_bias, callbacks=[fnn.callbacks.Snapshots(every=1)])}
    runs.update({seed: run(seed, cfg.hidden_bias) for seed in seeds if seed not in runs})
    plain = {seed: run(seed, 0.0) for seed in seeds}
    acc = [runs[k][2] for k in seeds]
    acc_plain = [plain[k][2] for k in seeds]
    start, result, test_acc = runs[args.seed]
    n_ok, n_ok_plain = sum(a >= TARGET for a in acc), sum(a >= TARGET for a in acc_plain)

    s.add(f"data: make_circles, {cfg.n_train} train / {cfg.n_test} test, noise {cfg.noise:g}, factor 0.5, "
          f"data seed {args.seed}")
    s.add(f"defaults: momentum SGD (lr {cfg.learning_rate:g}, momentum {cfg.momentum:g}), batch {cfg.batch_size}, "
          f"{cfg.epochs} epochs, Glorot-uniform weights, hidden biases {cfg.hidden_bias:g} at the start")
    s.add()
    s.add(f"HEADLINE  test accuracy {test_acc:.2%} (init seed {args.seed}; final train loss "
          f"{result.history['loss'][-1]:.2e}, test loss {result.history['val_loss'][-1]:.2e})")
    s.add(f"OVER SEEDS  {n_ok}/{n_seeds} init seeds reach >= {TARGET:.0%} test accuracy with these settings "
          f"(min {min(acc):.2%}, median {np.median(acc):.2%}); with zero start biases: {n_ok_plain}/{n_seeds} "
          f"(min {min(acc_plain):.2%})")
    if n_ok == n_ok_plain:
        s.add(f"  over these {n_seeds} seeds the start bias {cfg.hidden_bias:g} made no difference to the count "
              f"({n_ok}/{n_seeds} either way)")
    else:
        s.add(f"  over these {n_seeds} seeds the start bias {cfg.hidden_bias:g} gave "
              f"{'more' if n_ok > n_ok_plain else 'fewer'} starts reaching {TARGET:.0%} than zero biases "
              f"({n_ok} vs {n_ok_plain})")
    s.table(["init seed", f"test acc (bias {cfg.hidden_bias:g})", "test acc (bias 0)"],
            list(zip(seeds, acc, acc_plain)), ["{:d}", "{:.2%}", "{:.2%}"], name="seeds")
    s.record("test_accuracy", test_acc)
    s.record("hidden_bias", cfg.hidden_bias)
    s.record("n_train", cfg.n_train)
    s.record("n_test", cfg.n_test)
    s.record("epochs", cfg.epochs)
    s.record("reached", {"target": TARGET, "n_seeds": n_seeds, "hidden_bias": n_ok, "zero_bias": n_ok_plain})
    plot_history(result.history, out, "history.png", f"circles, init seed {args.seed}", val_label="test",
                 log_loss=True)

    # Which layers die: a failed start from the sweeps if there is one, and always a deliberately bad one.
    s.add()
    s.add("Diagnosis (fnn.backprop.dead_units / deltas on the training set; δ = ∂L/∂z of the mean loss, so it "
          "carries a 1/n):")
    diag = {"default seed, at start": layer_report(model, start, x_train, y_train)}
    failed = [(k, "defaults", runs[k]) for k in seeds if runs[k][2] < TARGET]
    failed += [(k, "zero biases", plain[k]) for k in seeds if plain[k][2] < TARGET]
    failed_info = None
    if failed:
        k, how, (f_start, f_result, f_acc) = failed[0]
        _, after = _diagnose(s, model, f"failed start: init seed {k} with {how} (test acc {f_acc:.2%})",
                             f_start, f_result, x_train, y_train)
        diag[f"failed: seed {k} ({how}), end"] = after
        failed_info = {"seed": k, "init": how, "accuracy": f_acc, "dead": after.dead}
    else:
        s.add(f"no start in the sweeps stayed below {TARGET:.0%}")
    bad_start = circles_init(model, args.seed, BAD_BIAS)
    bad_result = circles_fit(model, bad_start, data, cfg, shuffle_seed=1000 + args.seed)
    bad_acc = fnn.evaluate(model, bad_result.params, x_test, y_test)["accuracy"]
    s.record("bad_start_accuracy", bad_acc)
    bad_before, bad_after = _diagnose(s, model, f"deliberately bad start: seed {args.seed}, hidden biases "
                                      f"{BAD_BIAS:g} (test acc {bad_acc:.2%})", bad_start, bad_result,
                                      x_train, y_train)
    diag[f"bad start (bias {BAD_BIAS:g}), start"] = bad_before
    diag[f"bad start (bias {BAD_BIAS:g}), end"] = bad_after

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    names = layer_names(model)
    bar_groups(axes[0], {k: [dd / u for dd, u in zip(r.dead, r.units)] for k, r in diag.items()}, names,
               "fraction of units dead", log=False)
    axes[0].set_ylim(0, 1.05)
    axes[0].set_title("dead ReLU units per layer")
    bar_groups(axes[1], {k: r.mean_abs_delta for k, r in diag.items()}, names, "mean |δ| = mean |∂L/∂z|")
    axes[1].set_title("error signal per layer (0 = nothing learns below)")
    savefig(fig, out, "diagnosis.png")

    fig, ax = plt.subplots(figsize=(7, 3.6))
    pos = np.arange(n_seeds)
    ax.bar(pos - 0.2, acc, 0.4, label=f"start bias {cfg.hidden_bias:g}")
    ax.bar(pos + 0.2, acc_plain, 0.4, label="start bias 0")
    ax.axhline(TARGET, color="k", ls="--", lw=1, label=f"{TARGET:.0%}")
    ax.set_xticks(pos)
    ax.set_xticklabels([str(k) for k in seeds])
    ax.set_xlabel("init seed")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0.4, 1.12)
    ax.set_yticks(np.arange(0.4, 1.01, 0.1))
    ax.set_title(f"{n_ok}/{n_seeds} seeds reach {TARGET:.0%} with these settings")
    ax.legend(fontsize=8, loc="upper center", ncol=3)
    savefig(fig, out, "seeds.png")

    if failed:
        k, how, (_, middle, middle_acc) = failed[0]
        middle_title = f"a failed start: seed {k}, {how}: {middle_acc:.2%}"
    else:
        k = min((j for j in seeds if j != args.seed), key=lambda j: runs[j][2], default=args.seed)
        middle, middle_acc = runs[k][1], runs[k][2]
        middle_title = f"worst other seed ({k}): {middle_acc:.2%}"
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4), layout="constrained")
    _decision_panel(axes[0], model, result.params, x_test, y_test,
                    f"init seed {args.seed} (defaults): test acc {test_acc:.2%}")
    _decision_panel(axes[1], model, middle.params, x_test, y_test, middle_title)
    cs = _decision_panel(axes[2], model, bad_result.params, x_test, y_test,
                         f"bad start (hidden biases {BAD_BIAS:g}): {bad_acc:.2%}")
    fig.colorbar(cs, ax=axes, shrink=0.9, label="P(inner circle)")
    fig.savefig(f"{out}/decision_boundary.png", dpi=110)
    plt.close(fig)
    fnn.plot.animate(model, result, x_test, y_test, os.path.join(out, "boundary.gif"), fps=4, resolution=100,
                     frames="changes", loss_curve=True)  # every epoch kept; a frame where the boundary moved
    s.write(out)

    return {
        "test_accuracy": test_acc, "seeds": seeds, "seed_accuracies": acc,
        "n_reached": n_ok, "n_seeds": n_seeds, "zero_bias_accuracies": acc_plain, "zero_bias_reached": n_ok_plain,
        "failed": failed_info, "bad_start_accuracy": bad_acc, "bad_start_dead": bad_after.dead,
        "bad_start_deltas": bad_after.mean_abs_delta, "epochs": cfg.epochs, "history": result.history,
    }


if __name__ == "__main__":
    main(sys.argv[1:])
