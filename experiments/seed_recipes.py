"""How often the seed network trains, over many init seeds, under three recipes.

The seed's own Keras recipe (Adam 1e-3, 50 epochs, batch 32, zero biases), fnn's recommended
circles recipe (momentum 0.02/0.9, 150 epochs, hidden biases 0.1; see circles.py) and Adam at the
rate fnn.lr_find suggests for each start (50 epochs). The first two train all seeds as one
fnn.sweep each; every run is then scored on the same 500 test points. Prints how many seeds
reach >= 99% test accuracy.

    python experiments/seed_recipes.py [--seeds 64] [--quick]
"""
from __future__ import annotations

import time

import numpy as np

import fnn
from _common import Summary, circles_data, output_dir, parser

TARGET = 0.99


def seed_model(hidden_bias: float = 0.0) -> fnn.Sequential:
    """The seed network 2-4-6-6-4-1, hidden biases starting at hidden_bias."""
    hidden = [fnn.Dense(u, activation="relu", bias_init=hidden_bias) for u in (4, 6, 6, 4)]
    return fnn.Sequential(hidden + [fnn.Dense(1, activation="sigmoid")])


def swept_accuracies(model, optimizer, rate, epochs, seeds, data) -> np.ndarray:
    """Test accuracy of every seed's run, all seeds trained as one sweep."""
    x, y, xt, yt = data
    runs = fnn.sweep(model, x, y, loss="binary_crossentropy", optimizer=optimizer, learning_rates=[rate],
                     seeds=seeds, epochs=epochs, batch_size=32)
    return np.array([fnn.evaluate(model, runs.run(0, j), xt, yt)["accuracy"] for j in range(len(seeds))])


def main(argv=None) -> dict:
    p = parser("seed_recipes", __doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=64, help="init seeds per recipe (default: %(default)s)")
    args = p.parse_args(argv)
    out = output_dir(args.out)
    s = Summary("The seed network over init seeds: how often does each recipe reach 99% test accuracy?")
    n = 8 if args.quick else args.seeds
    scale = 5 if args.quick else 1  # --quick: a fifth of the epochs
    seeds = list(range(n))
    data = circles_data(1000, 500, 0.05, args.seed)

    start = time.perf_counter()
    seed_recipe = swept_accuracies(seed_model(), fnn.optim.adam, 1e-3, 50 // scale, seeds, data)
    t_seed = time.perf_counter() - start
    start = time.perf_counter()
    recommended = swept_accuracies(seed_model(0.1), lambda lr: fnn.optim.momentum(lr, 0.9), 0.02, 150 // scale,
                                   seeds, data)
    t_rec = time.perf_counter() - start
    start = time.perf_counter()
    model = seed_model()
    x, y, xt, yt = data
    found, rates = [], []
    for seed in seeds:
        params = model.init(seed, 2)
        rate = fnn.lr_find(model, params, x, y, optimizer=fnn.optim.adam, key=seed).suggestion
        result = fnn.fit(model, params, x, y, optimizer=fnn.optim.adam(rate), epochs=50 // scale, key=seed)
        found.append(fnn.evaluate(model, result.params, xt, yt)["accuracy"])
        rates.append(rate)
    found = np.array(found)
    t_find = time.perf_counter() - start

    rows = [("seed recipe: Adam 1e-3, 50 epochs, zero biases", seed_recipe, t_seed),
            ("recommended: momentum 0.02/0.9, 150 epochs, hidden biases 0.1", recommended, t_rec),
            ("lr_find's suggestion with Adam, 50 epochs, zero biases", found, t_find)]
    s.table(["recipe", f"seeds >= {TARGET:.0%}", "median acc", "worst acc", "seconds"],
            [(name, f"{int((acc >= TARGET).sum())}/{n}", float(np.median(acc)), float(acc.min()), t)
             for name, acc, t in rows],
            ["{}", "{}", "{:.4f}", "{:.4f}", "{:.1f}"], name="recipes", timing=("seconds",))
    s.record("n_seeds", n)
    s.record("target", TARGET)
    s.record("reached", {key: int((acc >= TARGET).sum())
                         for key, (_, acc, _) in zip(("seed_recipe", "recommended", "lr_find"), rows)})
    s.record("accuracies", {"seed_recipe": seed_recipe, "recommended": recommended, "lr_find": found})
    s.record("lr_find_rates", rates)
    s.add(f"lr_find's suggestions: median {np.median(rates):.2g}, range {min(rates):.2g} to {max(rates):.2g}")
    s.add(f"HEADLINE: seeds reaching {TARGET:.0%}: seed recipe {int((seed_recipe >= TARGET).sum())}/{n}, "
          f"recommended {int((recommended >= TARGET).sum())}/{n}, lr_find {int((found >= TARGET).sum())}/{n}")
    s.write(out)
    return {"n_seeds": n, "seed_recipe": seed_recipe.tolist(), "recommended": recommended.tolist(),
            "lr_find": found.tolist(), "lr_find_rates": rates}


if __name__ == "__main__":
    main()
