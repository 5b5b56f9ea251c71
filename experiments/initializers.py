"""He or Glorot as the default initializer of ReLU layers: held-out accuracy over seeds, per data set.

fnn's rule starts ReLU-family layers from He-uniform weights (Var = 2 / fan_in) and every other
layer from Glorot-uniform (Var = 2 / (fan_in + fan_out)); Keras starts every layer from
Glorot-uniform. Each task trains the same network twice per seed, once under each rule (the
ReLU layers' kernel_init set explicitly, the output layer Glorot in both), with everything else
the same: data, split, shuffles, optimizer, epochs, batch. Tasks:

  circles   the seed network 2-4-6-6-4-1 under fnn's recommended recipe (CirclesConfig: momentum
            0.02/0.9, 150 epochs, hidden biases 0.1), 1000 train / 500 test points; one fnn.sweep
  circles_keras  the same network under the seed's Keras recipe (Adam 1e-3, 50 epochs, zero biases)
  digits    digits.py's 64-128-10 recipe, a held-out quarter, a split per seed
  tabular   scikit-learn's make_classification (its defaults: 20 features, 2 informative), 100,000
            rows, 20% held out, standardised; 20-64-64-1 ReLU, Adam 1e-3, batch 128, 10 epochs

Per task: mean and range of the test accuracy under each rule, and the paired difference
(Glorot − He, seed by seed) with twice its standard error. The verdict per task is "Glorot" or
"He" when the difference's ±2 SE interval excludes 0, else "no difference"; the default moves
from the current rule only to one that wins at least one task and loses none. (Measured when the
default was He: Glorot won the tabular task and lost none, and fnn.Dense now uses Glorot.)

    python experiments/initializers.py --out results/initializers
"""
from __future__ import annotations

import sys

import jax
import numpy as np

import fnn
from _common import CIRCLES_LAYERS, CirclesConfig, Summary, circles_data, output_dir, parser

RULES = {"he": "he_uniform", "glorot": "glorot_uniform"}  # fnn's current rule for ReLU layers; Keras' rule
TASKS = ("circles", "circles_keras", "digits", "tabular")


def relu_model(hidden, rule: str, hidden_bias: float = 0.0, out_units: int = 1, out: str = "sigmoid"):
    """ReLU hidden layers started by `rule`'s initializer; the output layer Glorot-uniform (both rules agree)."""
    layers = [fnn.Dense(u, activation="relu", kernel_init=RULES[rule], bias_init=hidden_bias) for u in hidden]
    return fnn.Sequential(layers + [fnn.Dense(out_units, activation=out)])


def circles(rule: str, seeds, quick: bool, keras_recipe: bool) -> list[float]:
    """Test accuracy per seed of the seed network, every seed in one fnn.sweep."""
    cfg = CirclesConfig()
    x, y, xt, yt = circles_data(cfg.n_train, cfg.n_test, cfg.noise, seed=0)
    if keras_recipe:
        model, optimizer, rate, epochs = relu_model(CIRCLES_LAYERS, rule), fnn.optim.adam, 1e-3, 50
    else:
        model = relu_model(CIRCLES_LAYERS, rule, hidden_bias=cfg.hidden_bias)
        optimizer, rate, epochs = (lambda lr: fnn.optim.momentum(lr, cfg.momentum)), cfg.learning_rate, cfg.epochs
    runs = fnn.sweep(model, x, y, loss="binary_cross_entropy", optimizer=optimizer, learning_rates=[rate],
                     seeds=list(seeds), epochs=epochs // 5 if quick else epochs, batch_size=cfg.batch_size)
    return [float(fnn.evaluate(model, runs.run(0, j), xt, yt)["accuracy"]) for j in range(len(seeds))]


def digits(rule: str, seeds, quick: bool) -> list[float]:
    """digits.py's recipe: split seed s, init seed s, shuffle seed s + 1."""
    x, y = fnn.data.digits()
    epochs, batch_size = (10 if quick else 40), 32
    model = relu_model((128,), rule, out_units=10, out="softmax")
    n_train = x.shape[0] - round(x.shape[0] * 0.25)
    steps = epochs * -(-n_train // batch_size)
    optimizer = fnn.optim.chain(fnn.optim.add_weight_decay(1e-3),
                                fnn.optim.adam(fnn.optim.cosine_decay(3e-3, steps, alpha=0.01)))
    accs = []
    for seed in seeds:
        x_train, y_train, x_test, y_test = fnn.data.train_test_split(jax.random.key(seed), x, y, test_fraction=0.25)
        x_train, x_test = (a.astype(np.float32) for a in fnn.data.standardize(x_train, x_test))
        result = fnn.fit(model, model.init(jax.random.key(seed), x.shape[1]), x_train, y_train,
                         loss="categorical_cross_entropy", optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                         key=jax.random.key(seed + 1))
        accs.append(float(fnn.evaluate(model, result.params, x_test, y_test)["accuracy"]))
    return accs


def tabular_data(n_rows: int):
    """make_classification's defaults at n_rows; a fixed 20% held out; standardised with the training rows."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=n_rows, n_features=20, random_state=0)
    x_train, x_test, y_train, y_test = fnn.data.train_test_split(x, y.astype(np.int32), test_size=0.2,
                                                                 random_state=0)
    x_train, x_test = (a.astype(np.float32) for a in fnn.data.standardize(x_train, x_test))
    return x_train, y_train, x_test, y_test


def tabular(rule: str, seeds, data, epochs: int) -> list[float]:
    """A 20-64-64-1 ReLU network per seed (init and shuffle), Adam 1e-3, batch 128."""
    x_train, y_train, x_test, y_test = data
    model = relu_model((64, 64), rule)
    accs = []
    for seed in seeds:
        result = fnn.fit(model, model.init(seed, x_train.shape[1]), x_train, y_train, loss="binary_cross_entropy",
                         optimizer=fnn.optim.adam(1e-3), epochs=epochs, batch_size=128, key=seed)
        accs.append(float(fnn.evaluate(model, result.params, x_test, y_test)["accuracy"]))
    return accs


def compare(he, glorot) -> dict:
    """The paired difference glorot − he over seeds: mean, twice its standard error, wins, and the verdict."""
    d = np.asarray(glorot) - np.asarray(he)
    se2 = 2 * float(d.std(ddof=1)) / np.sqrt(len(d)) if len(d) > 1 else float("inf")
    mean = float(d.mean())
    verdict = "glorot" if mean - se2 > 0 else "he" if mean + se2 < 0 else "no difference"
    return {"diff_mean": mean, "diff_2se": se2, "glorot_wins": int((d > 0).sum()), "he_wins": int((d < 0).sum()),
            "verdict": verdict}


def current_rule() -> str:
    """The rule fnn.Dense follows today for a ReLU layer left to its default."""
    return {v: k for k, v in RULES.items()}[fnn.Dense(1, activation="relu").initializer]


def choose(verdicts, current: str) -> str:
    """The default by the evidence: the other rule if it wins a task and loses none; else the current one."""
    verdicts = list(verdicts)
    other = next(rule for rule in RULES if rule != current)
    return other if other in verdicts and current not in verdicts else current


def main(argv=None) -> dict:
    p = parser("initializers", __doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=None, help="seeds per task (default: 64 circles, 20 digits, "
                                                            "10 tabular; quick: 3 each)")
    p.add_argument("--rows", type=int, default=None, help="tabular rows (default: 100000, quick: 5000)")
    args = p.parse_args(argv)
    s = Summary("He or Glorot for ReLU layers: held-out accuracy over seeds, per data set")
    out = output_dir(args.out)
    counts = {t: 3 for t in TASKS} if args.quick else {"circles": 64, "circles_keras": 64, "digits": 20, "tabular": 10}
    if args.seeds:
        counts = {t: args.seeds for t in TASKS}
    rows = args.rows or (5000 if args.quick else 100_000)
    epochs = 2 if args.quick else 10
    seeds = {t: [args.seed + i for i in range(n)] for t, n in counts.items()}
    table = tabular_data(rows)

    acc = {}
    for rule in RULES:
        acc[("circles", rule)] = circles(rule, seeds["circles"], args.quick, keras_recipe=False)
        acc[("circles_keras", rule)] = circles(rule, seeds["circles_keras"], args.quick, keras_recipe=True)
        acc[("digits", rule)] = digits(rule, seeds["digits"], args.quick)
        acc[("tabular", rule)] = tabular(rule, seeds["tabular"], table, epochs)

    s.add("each task's network trained once per seed under each rule; only the ReLU layers' initializer differs")
    s.add(f"tabular: make_classification, {rows} rows x 20 features, {len(table[3])} held out; 20-64-64-1 ReLU, "
          f"Adam 1e-3, batch 128, {epochs} epochs")
    s.add()
    s.table(["task", "rule", "seeds", "mean", "min", "max"],
            [(t, RULES[r], len(acc[t, r]), float(np.mean(acc[t, r])), min(acc[t, r]), max(acc[t, r]))
             for t in TASKS for r in RULES], ["{}", "{}", "{:d}", "{:.4f}", "{:.4f}", "{:.4f}"], name="accuracy")
    s.add()
    cmp = {t: compare(acc[t, "he"], acc[t, "glorot"]) for t in TASKS}
    s.table(["task", "glorot - he", "2 SE", "glorot wins", "he wins", "verdict"],
            [(t, c["diff_mean"], c["diff_2se"], c["glorot_wins"], c["he_wins"], c["verdict"]) for t, c in cmp.items()],
            ["{}", "{:+.4f}", "{:.4f}", "{:d}", "{:d}", "{}"], name="paired")
    choice = choose((c["verdict"] for c in cmp.values()), current_rule())
    s.record("accuracies", {t: {RULES[r]: acc[t, r] for r in RULES} for t in TASKS})
    s.record("tabular", {"rows": rows, "n_test": len(table[3]), "epochs": epochs})
    s.record("choice", RULES[choice])
    verdicts = ", ".join(f"{t} {c['verdict']}" for t, c in cmp.items())
    s.add()
    s.add(f"HEADLINE  default initializer for ReLU layers by the evidence: {RULES[choice]} "
          f"(verdicts: {verdicts})")
    s.write(out)
    return {"accuracies": {t: {RULES[r]: acc[t, r] for r in RULES} for t in TASKS}, "paired": cmp,
            "choice": RULES[choice]}


if __name__ == "__main__":
    main(sys.argv[1:])
