"""The hand-written backward pass on the circles network, untrained and trained.

For each layer l: the mean |δ_l| (δ_l = ∂L/∂z_l, the error signal fnn.backprop propagates by
hand) and ‖∂L/∂(w_l, b_l)‖₂, on the circles training set, for a fresh start and for the network
after training; then a check that fnn.backprop.gradients equals jax.grad(fnn.objective(...)) on
both, in float32 and in float64.

    python experiments/backprop.py --out results/backprop
"""
from __future__ import annotations

import functools
import sys

import jax
import numpy as np

import fnn
from _common import (CIRCLES_QUICK, CirclesConfig, Summary, bar_groups, circles_data, circles_fit, circles_init,
                     circles_model, layer_names, layer_report, output_dir, parser, plt, savefig)

LOSS = "binary_cross_entropy"


_hand_gradients = jax.jit(fnn.backprop.gradients, static_argnums=(0, 1))


@functools.lru_cache(maxsize=None)
def _jax_gradients(model: fnn.Sequential):
    return jax.jit(jax.grad(fnn.objective(model, LOSS)))


def max_gradient_difference(model, params, x, y) -> tuple[float, float]:
    """(max |hand − jax.grad| over every parameter, max |jax.grad|)."""
    hand = _hand_gradients(model, LOSS, params, x, y)
    auto = _jax_gradients(model)(params, x, y)
    diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
               for a, b in zip(jax.tree.leaves(hand), jax.tree.leaves(auto)))
    scale = max(float(np.max(np.abs(np.asarray(b)))) for b in jax.tree.leaves(auto))
    return diff, scale


def main(argv=None) -> dict:
    p = parser("backprop", __doc__.splitlines()[0])
    args = p.parse_args(argv)
    s = Summary("Backprop by hand on the circles network (2-4-6-6-4-1 ReLU, binary cross-entropy)")
    out = output_dir(args.out)
    cfg = CIRCLES_QUICK if args.quick else CirclesConfig()

    data = circles_data(cfg.n_train, cfg.n_test, cfg.noise, args.seed)
    x, y = data[0], data[1]
    model = circles_model()
    untrained = circles_init(model, args.seed, cfg.hidden_bias)
    result = circles_fit(model, untrained, data, cfg, shuffle_seed=1000 + args.seed)
    trained = result.params
    test_acc = fnn.evaluate(model, trained, data[2], data[3])["accuracy"]
    nets = {"untrained": untrained, "trained": trained}
    reports = {name: layer_report(model, params, x, y) for name, params in nets.items()}

    s.add(f"circles data as in circles.py ({cfg.n_train} training points); trained: {cfg.epochs} epochs of momentum "
          f"SGD, test accuracy {test_acc:.2%}")
    s.add("per layer, on the whole training set: mean |δ_l| = mean |∂L/∂z_l| and ‖∂L/∂(w_l, b_l)‖₂ "
          "(L is the mean loss, so δ carries a 1/n)")
    names = layer_names(model)
    rows = [(name, reports["untrained"].mean_abs_delta[i], reports["trained"].mean_abs_delta[i],
             reports["untrained"].grad_norm[i], reports["trained"].grad_norm[i],
             f"{reports['untrained'].dead[i]}/{reports['trained'].dead[i]}")
            for i, name in enumerate(names)]
    s.table(["layer", "mean|δ| untrained", "mean|δ| trained", "‖grad‖ untrained", "‖grad‖ trained",
             "dead u/t"], rows, ["{}", "{:.3e}", "{:.3e}", "{:.3e}", "{:.3e}", "{}"], name="layers")
    s.add(f"loss: untrained {reports['untrained'].loss:.4f}, trained {reports['trained'].loss:.2e}: the trained "
          "network's error signals are small because its residuals ŷ − y are")

    s.add()
    s.add("fnn.backprop.gradients (by hand) vs jax.grad(fnn.objective(model, loss)), max |difference| over all "
          "parameters:")
    checks = {}
    for name, params in nets.items():
        diff32, scale32 = max_gradient_difference(model, params, x, y)
        with jax.enable_x64(True):
            p64 = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
            diff64, scale64 = max_gradient_difference(model, p64, x.astype(np.float64), y)
        checks[name] = {"float32": diff32, "float64": diff64, "scale": scale32}
        s.add(f"  {name:9s}: float32 {diff32:.2e}, float64 {diff64:.2e} (largest gradient entry {scale32:.2e})")
    worst32 = max(c["float32"] for c in checks.values())
    worst64 = max(c["float64"] for c in checks.values())
    s.add("  (the float32 differences are rounding, largest where σ(z) − y is a difference of two numbers near 1; "
          "in float64 the two agree to ~1e-16)")
    s.record("max_abs_diff", {"float32": worst32, "float64": worst64})
    s.record("checks", checks)
    s.record("test_accuracy", test_acc)
    s.add(f"HEADLINE  hand-written backprop matches jax.grad: max |diff| {worst32:.1e} in float32, "
          f"{worst64:.1e} in float64")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    bar_groups(axes[0], {k: r.mean_abs_delta for k, r in reports.items()}, names, "mean |δ| = mean |∂L/∂z|")
    axes[0].set_title("error signal per layer")
    bar_groups(axes[1], {k: r.grad_norm for k, r in reports.items()}, names, "‖∂L/∂(w, b)‖₂")
    axes[1].set_title("gradient norm per layer")
    fig.suptitle(f"hand-written backprop, circles net (trained: test acc {test_acc:.1%}); "
                 f"max |hand − jax.grad| = {worst32:.1e} (float32)", fontsize=10)
    savefig(fig, out, "backprop.png")
    s.write(out)
    return {"max_abs_diff": worst32, "max_abs_diff_float64": worst64, "checks": checks,
            "mean_abs_delta": {k: r.mean_abs_delta for k, r in reports.items()},
            "grad_norm": {k: r.grad_norm for k, r in reports.items()}, "test_accuracy": test_acc}


if __name__ == "__main__":
    main(sys.argv[1:])
