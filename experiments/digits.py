"""scikit-learn's 8×8 handwritten digits with a 64-128-10 network: ReLU, softmax, categorical cross-entropy.

A held-out quarter of the 1797 images is the test set (it is also drawn as the validation curve,
but nothing is tuned or stopped on it). Inputs are standardised with the training statistics;
Adam with a cosine-decayed rate and a little L2 weight decay. The split is redrawn a few times
to show the spread of the test accuracy, not just one split.

    python experiments/digits.py --out results/digits
"""
from __future__ import annotations

import sys

import jax
import numpy as np

import fnn
from _common import Summary, output_dir, parser, plot_history, plt, savefig

TARGET = 0.97


def split(x, y, seed: int):
    """Held-out quarter as the test set; features standardised with the training statistics (float32)."""
    x_train, y_train, x_test, y_test = fnn.data.train_test_split(jax.random.key(seed), x, y, test_fraction=0.25)
    x_train, x_test = (a.astype(np.float32) for a in fnn.data.standardize(x_train, x_test))
    return x_train, np.asarray(y_train), x_test, np.asarray(y_test)


def confusion(y_true, y_pred, k: int = 10) -> np.ndarray:
    """counts[i, j] = test images of digit i predicted as j."""
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    return counts


def main(argv=None) -> dict:
    p = parser("digits", __doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=128, help="hidden ReLU units (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: 40, quick: 10)")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam's initial learning rate (default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=1e-3, help="L2 rate on the weights (default: %(default)s)")
    p.add_argument("--splits", type=int, default=None, help="train/test splits to repeat on (default: 5, quick: 1)")
    args = p.parse_args(argv)
    s = Summary(f"Digits: 64-{args.hidden}-10, ReLU + softmax, categorical cross-entropy")
    out = output_dir(args.out)
    epochs = args.epochs or (10 if args.quick else 40)
    n_splits = args.splits or (1 if args.quick else 5)
    batch_size = 32

    x, y = fnn.data.digits()
    model = fnn.Sequential([fnn.Dense(args.hidden, activation="relu"), fnn.Dense(10, activation="softmax")])
    n_train = x.shape[0] - int(round(x.shape[0] * 0.25))
    steps = epochs * -(-n_train // batch_size)
    optimizer = fnn.optim.chain(fnn.optim.add_weight_decay(args.weight_decay),
                                fnn.optim.adam(fnn.optim.cosine_decay(args.lr, steps, alpha=0.01)))

    def run(seed):
        x_train, y_train, x_test, y_test = split(x, y, seed)
        result = fnn.fit(model, model.init(jax.random.key(seed), x.shape[1]), x_train, y_train,
                         loss="categorical_cross_entropy", optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                         key=jax.random.key(seed + 1), validation_data=(x_test, y_test))
        pred = np.asarray(fnn.predict_classes(model, result.params, x_test))
        return (x_train, y_train, x_test, y_test), result, pred, float(np.mean(pred == y_test))

    (x_train, y_train, x_test, y_test), result, pred, test_acc = run(args.seed)
    others = [run(args.seed + i)[3] for i in range(1, n_splits)]
    accs = [test_acc] + others
    counts = confusion(y_test, pred)
    wrong = np.flatnonzero(pred != y_test)

    s.add(f"data: {x.shape[0]} images of 8x8 = 64 features; {len(y_train)} train / {len(y_test)} test "
          f"(split seed {args.seed}), standardised")
    s.add(f"training: Adam lr {args.lr:g} cosine-decayed over {epochs} epochs, L2 {args.weight_decay:g}, "
          f"batch {batch_size}")
    verdict = ">=" if test_acc >= TARGET else "BELOW"
    s.add(f"HEADLINE  test accuracy {test_acc:.2%} ({verdict} {TARGET:.0%}; {len(wrong)} of {len(y_test)} wrong; "
          f"final training loss {result.history['loss'][-1]:.4f})")
    if n_splits > 1:
        s.add(f"over {n_splits} train/test splits (seeds {args.seed}..{args.seed + n_splits - 1}): "
              + ", ".join(f"{a:.2%}" for a in accs)
              + f"; mean {np.mean(accs):.2%}, min {min(accs):.2%}, {sum(a >= TARGET for a in accs)}/{n_splits} >= "
              f"{TARGET:.0%}")
    s.record("test_accuracy", test_acc)
    s.record("target", TARGET)
    s.record("split_accuracies", accs)
    s.record("n_wrong", len(wrong))
    s.record("n_test", len(y_test))
    s.add()
    s.add("confusion counts (rows: true digit, columns: predicted):")
    s.table([""] + [str(j) for j in range(10)], [[f"{i}"] + list(counts[i]) for i in range(10)],
            ["{}"] + ["{:d}"] * 10, name="confusion")
    pairs = sorted(((counts[i, j], i, j) for i in range(10) for j in range(10) if i != j and counts[i, j]),
                   reverse=True)
    s.add("most confused (true -> predicted: count): " + ", ".join(f"{i}->{j}: {c}" for c, i, j in pairs[:5]))

    plot_history(result.history, out, "history.png", "digits", val_label="test", log_loss=True)
    shown = wrong[:12]
    raw_test = fnn.data.train_test_split(jax.random.key(args.seed), x, y, test_fraction=0.25)[2]
    cols, pad = 6, 2
    rows = max(1, -(-len(shown) // cols))
    montage = np.full((rows * (8 + pad) + pad, cols * (8 + pad) + pad), np.nan)  # one image: cheap to draw
    fig, ax = plt.subplots(figsize=(1.5 * cols, 1.6 * rows + 0.5))
    for t, i in enumerate(shown):
        r, c = divmod(t, cols)
        top, left = pad + r * (8 + pad), pad + c * (8 + pad)
        montage[top:top + 8, left:left + 8] = np.asarray(raw_test[i]).reshape(8, 8)
        ax.text(left + 3.5, top - 0.7, f"{y_test[i]} → {pred[i]}", ha="center", va="bottom", fontsize=8)
    ax.imshow(montage, cmap="gray_r", vmin=0, vmax=1)
    ax.axis("off")
    ax.set_title(f"misclassified test digits, true → predicted ({len(wrong)} in all)", fontsize=10)
    savefig(fig, out, "misclassified.png")

    fig, ax = plt.subplots(figsize=(5, 4.4))
    ax.imshow(np.log1p(counts), cmap="Blues")
    for i in range(10):
        for j in range(10):
            if counts[i, j]:
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if i == j else "black")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion counts, test accuracy {test_acc:.2%}")
    savefig(fig, out, "confusion.png")
    s.write(out)
    return {"test_accuracy": test_acc, "split_accuracies": accs,
            "confusion": counts.tolist(), "n_wrong": int(len(wrong)), "n_test": int(len(y_test)), "epochs": epochs}


if __name__ == "__main__":
    main(sys.argv[1:])
