"""A tour of the seeds: INIT → LOSS → GRADIENT → STEP → STOP on the circles network, then the
learning rate, P(x) by gradient ascent, softmax on a digit and three kinds of hidden layer.

Each step draws one or more pictures with fnn.plot (PNG, one GIF) and writes two or three sentences
about them, with the numbers of this run, into tour.md in the --out folder (default results/tour),
which links the pictures by relative path. Everything is seeded: a second run writes the same
numbers. It trains small networks for few epochs and reuses one model, loss and batch size where
it can, so that it runs in well under two minutes on two CPU cores.

    python experiments/tour.py                # results/tour/tour.md and its pictures
"""
from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from _common import CIRCLES_LAYERS, Summary, circles_data, circles_init, circles_model, output_dir, parser, plt, savefig
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

import fnn

LOSS = "binary_cross_entropy"
N_TRAIN, N_TEST, NOISE = 500, 250, 0.05
LR, ALPHA, BATCH = 0.02, 0.9, 32  # the circles recipe (experiments/_common.py's CirclesConfig)
HIDDEN_BIAS = 0.1
TARGET = 0.03  # STOP: TargetLoss stops the run once its training loss is this low
MAX_EPOCHS = 200
LN2 = math.log(2.0)  # binary cross-entropy of predicting 0.5 everywhere: the chance level
POINTS = "points: the training data, blue the outer circle (y = 0), orange the inner circle (y = 1)"

SECTIONS = (  # (name, heading): the order of the tour, one function per name below
    ("network", "A network is composed functions"),
    ("init", "INIT: the network before it has learned"),
    ("loss", "LOSS: how wrong the start is"),
    ("gradient", "GRADIENT: the chain rule for one example"),
    ("step", "STEP: momentum on an ill-conditioned bowl"),
    ("stop", "STOP: a loss that is good enough"),
    ("learned", "The network after learning"),
    ("learning_rate", "The learning rate"),
    ("derivative", "P(x) by gradient ascent"),
    ("softmax", "Softmax: ten probabilities for one digit"),
    ("activations", "Linear, ReLU and tanh hidden layers"),
)


class Section(NamedTuple):
    name: str
    heading: str
    pictures: list  # file names in the out folder
    text: str  # Markdown: two or three sentences


class Tour:
    """What the steps share: the output folder, the summary, the circles data, model, start and run."""

    def __init__(self, out: str, seed: int, summary: Summary):
        self.out, self.seed, self.s = out, seed, summary
        self.data = circles_data(N_TRAIN, N_TEST, NOISE, seed)
        self.x, self.y, self.x_test, self.y_test = self.data
        self.model = circles_model()  # 2-4-6-6-4-1, ReLU, one sigmoid unit
        self.params0 = circles_init(self.model, seed, HIDDEN_BIAS)
        self.run = None  # the circles run, trained in "stop"

    def save(self, fig, name: str) -> str:
        savefig(fig, self.out, name)
        return name

    def fit(self, model, params, callbacks=(), epochs: int = MAX_EPOCHS, **kwargs) -> fnn.FitResult:
        """The circles recipe (momentum 0.02/0.9, batch 32), the test set as validation data."""
        kwargs.setdefault("optimizer", fnn.optim.momentum(LR, ALPHA))
        return fnn.fit(model, params, self.x, self.y, loss=LOSS, epochs=epochs, batch_size=BATCH,
                       key=jax.random.key(self.seed), validation_data=(self.x_test, self.y_test), verbose=0,
                       callbacks=list(callbacks), **kwargs)


def _boundary(ax, model, params, x, y, title: str):
    contours, points = fnn.plot.decision_boundary(model, params, x, y, ax, resolution=80)
    ax.set(title=title, xlabel="x1", ylabel="x2")
    handles, _ = points.legend_elements()
    ax.legend(handles, ["outer circle (y = 0)", "inner circle (y = 1)"], fontsize=7, loc="upper right",
              framealpha=0.85)
    return contours


# --------------------------------------------------------------------------- (a) the network
def network(t: Tour) -> Section:
    fig, ax = plt.subplots(figsize=(8.5, 5.2))
    fnn.plot.network(t.model, t.params0, ax)
    ax.set_title("2-4-6-6-4-1 at init: y = σ(relu(relu(relu(relu(x·W1+b1)·W2+b2)·W3+b3)·W4+b4)·W5+b5)", fontsize=9)
    n = t.s.record("n_params", t.model.count_params(2))
    summary = t.model.summary(2, print_fn=None)
    text = (
        "The seed's Keras model `Sequential([Dense(4, activation=\"relu\"), Dense(6, ...), Dense(6, ...), "
        "Dense(4, ...), Dense(1, activation=\"sigmoid\")])` is one function of x: each layer computes "
        "`a @ W + b` and applies its activation, and the next layer takes that as its input. "
        f"Its {n} numbers (the weights W, drawn as edges, and the biases b) are all it can change when it "
        "learns; blue edges are positive weights, red negative, width ∝ |w| within a layer.\n\n"
        f"```\n{summary.rstrip()}\n```"
    )
    return Section("network", "", [t.save(fig, "network.png")], text)


# --------------------------------------------------------------------------- (b) INIT
def init(t: Tour) -> Section:
    acc = t.s.record("init_accuracy", fnn.evaluate(t.model, t.params0, t.x, t.y)["accuracy"])
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    contours = _boundary(ax, t.model, t.params0, t.x, t.y, f"INIT: the start's P(inner circle), accuracy {acc:.0%}")
    fig.colorbar(contours, ax=ax, label="P(y = 1): predicted probability of the inner circle")
    boundary = t.save(fig, "init_boundary.png")
    fig = fnn.plot.neurons(t.model, t.params0, t.x, t.y, resolution=40)
    fig.suptitle("INIT: each unit's activation over the input plane (x1, x2), before training\n" + POINTS, fontsize=9)
    neurons = os.path.join(t.out, "init_neurons.png")
    fig.savefig(neurons, dpi=90)
    plt.close(fig)
    text = (
        f"`model.init` draws the weights at random (Glorot-uniform, as Keras; here the hidden biases start at "
        f"{HIDDEN_BIAS:g}, the circles recipe, so fewer 4-unit layers start dead). The start already computes "
        f"a function: its boundary (black, where P = 0.5) cuts the plane somewhere and gets {acc:.0%} of the "
        f"{N_TRAIN} training points right. "
        "Each small panel is one unit's output over the plane: the first layer cuts the plane by straight "
        "lines, each later one combines the previous layer's pieces."
    )
    return Section("init", "", [boundary, "init_neurons.png"], text)


# --------------------------------------------------------------------------- (c) LOSS
def loss(t: Tour) -> Section:
    p = np.asarray(fnn.predict_proba(t.model, t.params0, t.x), float)[:, 0]
    y = t.y.astype(float)
    eps = 1e-12
    each = -(y * np.log(np.maximum(p, eps)) + (1 - y) * np.log(np.maximum(1 - p, eps)))
    reported = t.s.record("init_loss", fnn.evaluate(t.model, t.params0, t.x, t.y)["loss"])
    t.s.record("init_loss_by_hand", float(each.mean()))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    ps = np.linspace(1e-3, 1 - 1e-3, 400)
    left.plot(ps, -np.log(ps), color="C0", label="y = 1: −ln p")
    left.plot(ps, -np.log(1 - ps), color="C1", label="y = 0: −ln(1 − p)")
    left.axhline(LN2, color="0.35", ls="--", lw=1, label=f"p = 0.5 for any y: ln 2 = {LN2:.3f}")
    left.set(ylim=(0, 5), xlabel="predicted probability p = P(y = 1)", ylabel="loss of one example (nats)",
             title="binary cross-entropy: −[y ln p + (1 − y) ln(1 − p)]")
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    bins = np.linspace(0, max(2.0, float(each.max())), 40)
    right.hist(each[y == 1], bins=bins, alpha=0.6, color="C0", label="inner circle (y = 1)")
    right.hist(each[y == 0], bins=bins, alpha=0.6, color="C1", label="outer circle (y = 0)")
    right.axvline(reported, color="C3", lw=2, label=f"mean = the loss: {reported:.3f}")
    right.axvline(LN2, color="0.35", ls="--", lw=1, label=f"chance, ln 2 = {LN2:.3f}")
    right.set(xlabel="loss of one training example at init (nats)", ylabel="examples",
              title=f"LOSS at init over the {N_TRAIN} training points")
    right.legend(fontsize=8)
    text = (
        "Binary cross-entropy scores a predicted probability p of the inner circle by −ln p when the "
        "point is inside and −ln(1 − p) when it is outside: 0 for a sure right answer, growing without "
        f"bound for a sure wrong one, and ln 2 = {LN2:.3f} for p = 0.5, the loss of knowing nothing. "
        f"The loss is the mean over the examples: at init it is {reported:.4f} (the histogram's red line; "
        f"by hand from `fnn.predict_proba`: {each.mean():.4f}), "
        + ("worse than that guess: the start is surely wrong about some points (the long tail on the right)."
           if reported > LN2 else "better than that guess already.")
    )
    return Section("loss", "", [t.save(fig, "loss.png")], text)


# --------------------------------------------------------------------------- (d) GRADIENT
def gradient(t: Tour) -> Section:
    x1, y1 = t.x[:1], t.y[:1]
    layers = fnn.backprop.trace(t.model, LOSS, t.params0, x1[0], y1[0])
    auto = jax.grad(fnn.objective(t.model, LOSS))(t.params0, x1, y1)
    diff = max(float(np.abs(np.asarray(layer.grad_w) - np.asarray(a.w)).max()) for layer, a in zip(layers, auto))
    t.s.record("trace_vs_jax_grad", diff)
    out = float(np.asarray(layers[-1].a_out).ravel()[0])
    t.s.record("trace_output", out)
    ax = fnn.plot.chain_rule(layers)
    ax.set_title(f"GRADIENT for the example x = ({x1[0, 0]:.3f}, {x1[0, 1]:.3f}), y = {int(y1[0])}: "
                 "forward ↓ (blue) then backward ↑ (red)", fontsize=9)
    ax.figure.savefig(os.path.join(t.out, "gradient.png"), dpi=100)
    plt.close(ax.figure)
    text = (
        "`fnn.backprop.trace` runs one forward and one backward pass by the hand-written chain rule and keeps "
        "every number. Backward, each layer turns the error signal δ = ∂L/∂z it receives into ∂L/∂W = "
        "a_inᵀ·δ and ∂L/∂b = δ, which are *stored*: they are the gradient, one entry per parameter, that "
        "the step uses; and into ∂L/∂a_in = δ·Wᵀ, which is *passed back* to the layer before and used there "
        f"only. Here the network says {out:.3f} for a point of class {int(y1[0])}, so "
        f"L = {-math.log(out if y1[0] else 1 - out):.3f} and the last δ = a_out − y = {out - int(y1[0]):.3f};"
        + (" the stored ∂L/∂W equal `jax.grad` of the loss bitwise." if diff == 0 else
           f" the stored ∂L/∂W agree with `jax.grad` of the loss to {diff:.1e}.")
    )
    return Section("gradient", "", ["gradient.png"], text)


# --------------------------------------------------------------------------- (e) STEP
KAPPA = 20.0  # the bowl's curvature along y (1 along x): condition number 20
BOWL_LR, BOWL_STEPS, BOWL_START = 0.01, 80, (-4.0, 1.0)


def bowl(p):
    return 0.5 * (p[..., 0] ** 2 + KAPPA * p[..., 1] ** 2)


def step(t: Tour) -> Section:
    big = BOWL_LR / (1 - ALPHA)
    runs = {
        f"SGD η = {BOWL_LR:g}": fnn.optim.sgd(BOWL_LR),
        f"SGD η/(1−α) = {big:g}": fnn.optim.sgd(big),
        f"momentum η = {BOWL_LR:g}, α = {ALPHA:g}": fnn.optim.momentum(BOWL_LR, ALPHA),
    }
    paths = {label: fnn.optim.trajectory(opt, bowl, BOWL_START, BOWL_STEPS) for label, opt in runs.items()}
    final = {label: float(bowl(p[-1])) for label, p in paths.items()}
    t.s.record("bowl_final", final)
    fig, ax = plt.subplots(figsize=(9, 5.4))
    fnn.plot.descent(bowl, paths, ax)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, framealpha=0.9)
    ax.set_title(f"STEP: {BOWL_STEPS} steps on ½(x[0]² + {KAPPA:g}·x[1]²) from {BOWL_START}", fontsize=10)
    sgd, fast, mom = final.values()
    text = (
        "A step moves the parameters against the gradient: θ ← θ − η∇L. On a bowl 20 times steeper "
        f"along x[1] than along x[0], SGD at η = {BOWL_LR:g} crawls along the shallow direction (f = {sgd:.3g} "
        f"after {BOWL_STEPS} steps). Momentum (Δθ ← αΔθ − η∇L) builds up a step of η/(1 − α) = {big:g} "
        f"along a steady slope, but SGD at that step sits at ηλ = {big * KAPPA:.3g} on the steep axis, the "
        f"edge of stability, and bounces across the valley for as long as it runs (f = {fast:.3g}); momentum "
        f"damps the bounce and gets there: f = {mom:.3g}."
    )
    return Section("step", "", [t.save(fig, "step.png")], text)


# --------------------------------------------------------------------------- (f) STOP
def stop(t: Tour) -> Section:
    t.run = run = t.fit(t.model, t.params0, [fnn.callbacks.TargetLoss(TARGET), fnn.callbacks.Snapshots(every=1)])
    epochs, reason = t.s.record("epochs_run", run.epochs_run), t.s.record("stop_reason", run.stop_reason)
    acc = t.s.record("test_accuracy", float(run.history["val_accuracy"][-1]))
    fig, ax = plt.subplots(figsize=(8, 4.2))
    loss_ax, _ = fnn.plot.history(run, ax, val_label="test")
    loss_ax.set_yscale("log")
    loss_ax.axhline(TARGET, color="C3", ls=":", label=f"TargetLoss({TARGET:g})")
    loss_ax.axvline(epochs, color="0.4", ls="--", lw=1)
    loss_ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    loss_ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    loss_ax.yaxis.set_minor_formatter(NullFormatter())
    loss_ax.annotate(f"TargetLoss({TARGET:g}), dotted: stopped at epoch {epochs} of at most {MAX_EPOCHS}",
                     (epochs, TARGET), xytext=(-8, 30),
                     textcoords="offset points", ha="right", fontsize=8, color="C3")
    loss_ax.set_ylabel("loss (binary cross-entropy, log scale)", color="C0")
    ax.set_title(f"STOP: the circles run, momentum {LR:g}/{ALPHA:g}, batch {BATCH}, stopped by TargetLoss")
    text = (
        f"A run needs a rule for when to stop. `fnn.callbacks.TargetLoss({TARGET:g})` is checked inside the "
        f"compiled run after every epoch and ends it once the training loss is at most {TARGET:g}: here after "
        f"{epochs} of at most {MAX_EPOCHS} epochs (stop reason `{reason}`), with {acc:.1%} of the {N_TEST} "
        "test points right. Nothing past that point would have changed the answer much; the dotted line is "
        "the target."
    )
    return Section("stop", "", [t.save(fig, "stop.png")], text)


# --------------------------------------------------------------------------- (g) after learning
LANDSCAPE_SPAN = 0.4  # α, β in [-span, span]: close enough to see the basin and the path's last steps
def learned(t: Tour) -> Section:
    run = t.run
    fig = fnn.plot.neurons(t.model, run.params, t.x, t.y, resolution=40)
    fig.suptitle(f"after {run.epochs_run} epochs: each unit's activation over the input plane (x1, x2)\n" + POINTS,
                 fontsize=9)
    fig.savefig(os.path.join(t.out, "learned_neurons.png"), dpi=90)
    plt.close(fig)
    dead = [int(np.asarray(d).sum()) for d in fnn.backprop.dead_units(t.model, run.params, t.x)]
    t.s.record("dead_units", dead)
    fnn.plot.animate(t.model, run, t.x_test, t.y_test, os.path.join(t.out, "boundary.gif"), fps=3, resolution=60,
                     frames="changes", loss_curve=True)
    surface = fnn.landscape(t.model, LOSS, run.params, t.x, t.y, span=LANDSCAPE_SPAN, resolution=21, key=t.seed,
                            path=run)
    t.s.record("landscape_centre_loss", float(surface.losses[10, 10]))
    fig, ax = plt.subplots(figsize=(6.4, 5.4))
    _, colorbar, _ = fnn.plot.landscape(surface, ax)
    colorbar.set_label("training loss (binary cross-entropy)")
    ax.set_title("the training loss on a random plane through the trained params,\n"
                 f"and the run's {len(run.snapshot_epochs)} snapshots projected onto it", fontsize=9)
    text = (
        f"After training each unit has a job: first-layer units split the plane by lines, later ones "
        f"combine them into a ring (dead units, drawn in grey, per layer: {dead}). The movie shows the "
        "boundary at each epoch where it moved (`fnn.callbacks.Snapshots(every=1)` records every epoch "
        "inside the run; `fnn.plot.animate(..., frames=\"changes\", loss_curve=True)` keeps the frames where "
        "the predicted class changed), beside the loss. The landscape is the loss on a plane through the "
        "trained params along two random filter-normalised directions, with the run's path projected onto "
        "it: random directions are nearly orthogonal to the path, so it shows only a part of how far it went."
    )
    return Section("learned", "", ["learned_neurons.png", "boundary.gif", t.save(fig, "landscape.png")], text)


# --------------------------------------------------------------------------- (h) the learning rate
SWEEP_RATES, SWEEP_SEEDS, SWEEP_EPOCHS = (1e-3, 1e-2, 0.1, 1.0, 10.0), (0, 1, 2), 30
SHARP_LR, SHARP_EPOCHS, SHARP_EVERY = 0.5, 200, 4


def learning_rate(t: Tour) -> Section:
    runs = fnn.sweep(t.model, t.x, t.y, loss=LOSS, optimizer=lambda lr: fnn.optim.momentum(lr, ALPHA),
                     learning_rates=list(SWEEP_RATES), seeds=list(SWEEP_SEEDS), epochs=SWEEP_EPOCHS,
                     batch_size=BATCH, validation_data=(t.x_test, t.y_test))
    final = np.nanmedian(runs.history["val_loss"][:, :, -1], axis=1)
    t.s.record("sweep_median_val_loss", dict(zip(map(str, SWEEP_RATES), final)))
    t.s.record("sweep_stop_reasons", runs.stop_reasons)
    fig, ax = plt.subplots(figsize=(7, 4.3))
    fnn.plot.learning_rates(runs, ax, metric="val_loss", chance=LN2)
    ax.set_ylabel("test loss after 30 epochs (binary cross-entropy)")
    ax.set_title(f"momentum (α = {ALPHA:g}) at 5 rates × 3 init seeds, {SWEEP_EPOCHS} epochs")
    sweep_png = t.save(fig, "learning_rates.png")

    found = fnn.lr_find(t.model, t.params0, t.x, t.y, optimizer=fnn.optim.adam, batch_size=BATCH,
                        key=jax.random.key(t.seed))
    t.s.record("lr_find_suggestion", found.suggestion)
    fig, ax = plt.subplots(figsize=(7, 4.3))
    fnn.plot.lr_find(found, ax)
    ax.set_title(f"lr_find: Adam, the rate growing every step from 1e-5 over {len(found.rates)} steps")
    find_png = t.save(fig, "lr_find.png")

    sharp = fnn.fit(t.model, t.params0, t.x, t.y, loss=LOSS, optimizer=fnn.optim.sgd(SHARP_LR), epochs=SHARP_EPOCHS,
                    batch_size=N_TRAIN, verbose=0, callbacks=[fnn.callbacks.Sharpness(every=SHARP_EVERY)])
    values = np.asarray(sharp.history["sharpness"], float)
    top = t.s.record("sharpness_max", float(np.nanmax(values)))
    first_edge = int(np.argmax(values >= 2 / SHARP_LR)) + 1 if (values >= 2 / SHARP_LR).any() else None
    t.s.record("sharpness_first_epoch_at_edge", first_edge)
    fig, ax = plt.subplots(figsize=(7, 4.3))
    curve, edge = fnn.plot.sharpness(sharp, SHARP_LR, ax)
    twin = ax.twinx()
    (loss_line,) = twin.semilogy(np.arange(1, SHARP_EPOCHS + 1), sharp.history["loss"], color="0.55", lw=1,
                                 label="training loss (right axis, log)")
    twin.set_ylabel("training loss (log scale)", color="0.4")
    twin.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.legend([curve, edge, loss_line], [a.get_label() for a in (curve, edge, loss_line)], fontsize=8)
    ax.set_title(f"full-batch gradient descent, η = {SHARP_LR:g}: sharpness every {SHARP_EVERY} epochs")
    sharp_png = t.save(fig, "sharpness.png")
    best = SWEEP_RATES[int(np.nanargmin(final))]
    diverged = int(sum(reason == "non_finite_loss" for row in runs.stop_reasons for reason in row))
    big = [i for i, r in enumerate(SWEEP_RATES) if r > best]
    # a run is stuck when one hidden layer is 0 on every training point: its output is a constant
    stuck = {SWEEP_RATES[i]: sum(any(bool(np.asarray(d).all()) for d in fnn.backprop.dead_units(
        t.model, runs.run(i, j), t.x)[:-1]) for j in range(len(SWEEP_SEEDS))) for i in big}
    t.s.record("sweep_runs_with_a_dead_layer", {str(r): n for r, n in stuck.items()})
    t.s.record("sweep_diverged_runs", diverged)
    large = "; ".join(f"at {r:g} the median ends at {final[SWEEP_RATES.index(r)]:.3f} "
                      f"({stuck[r]} of {len(SWEEP_SEEDS)} runs with a whole layer dead)" for r in stuck)
    edge = (f"first reaches 2/η = {2 / SHARP_LR:g} at epoch {first_edge}" if first_edge else
            f"stays below 2/η = {2 / SHARP_LR:g} (largest {top:.3g})")
    text = (
        f"The learning rate is the step's size. Over {len(SWEEP_RATES)} rates × {len(SWEEP_SEEDS)} seeds trained "
        f"as one `fnn.sweep` program (zero start biases, as `model.init` gives), {best:g} ends lowest and a smaller "
        f"rate has not got far in {SWEEP_EPOCHS} epochs. Larger rates stall near the chance level ln 2 = "
        f"{LN2:.3f} (dashed) or above it: {large}. A dead layer makes the output a constant, a stall and not a "
        f"divergence: {diverged} of the {runs.epochs_run.size} runs met a non-finite loss, and only such a run "
        "gets a ✕. "
        f"`fnn.lr_find` grows Adam's rate every step and suggests {found.suggestion:.2g}, inside the longest fall "
        "of the smoothed loss. The sharpness (the largest eigenvalue of the loss's Hessian) of full-batch descent "
        f"at η = {SHARP_LR:g} {edge}, where a step of η is unstable along that curvature: the loss jumps, the "
        "sharpness falls back and climbs again, the edge of stability (Cohen et al. 2021)."
    )
    return Section("learning_rate", "", [sweep_png, find_png, sharp_png], text)


# --------------------------------------------------------------------------- (i) P(x)
def P(x):
    return -2.0 * x ** 2 + 12.0 * x - 10.0


ASCENT_LR, ASCENT_STEPS, ASCENT_START = 0.35, 12, 0.0


def derivative(t: Tour) -> Section:
    dP = jax.grad(P)
    path = fnn.optim.trajectory(fnn.optim.sgd(ASCENT_LR), lambda p: -P(p[0]), [ASCENT_START], ASCENT_STEPS)[:, 0]
    t.s.record("ascent_end", float(path[-1]))
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    fnn.plot.descent(P, np.asarray(path, float), ax)
    for i, x0 in enumerate(path[:3]):
        slope = float(dP(jnp.asarray(x0, jnp.float32)))
        xs = np.linspace(x0 - 0.7, x0 + 0.7, 2)
        ax.plot(xs, P(x0) + slope * (xs - x0), color="C1", lw=1.5,
                label="tangent P(x₀) + P′(x₀)(x − x₀)" if i == 0 else "_tangent")
        ax.annotate(f"P′ = {slope:.3g}", (x0, P(x0)), xytext=(4, -14), textcoords="offset points", fontsize=7,
                    color="C1")
    ax.axvline(3.0, color="C3", ls="--", lw=1, label="maximum x = 3: P′(3) = 0, P(3) = 8")
    ax.set_title(f"gradient ascent x ← x + η·P′(x), η = {ASCENT_LR:g}, on P(x) = −2x² + 12x − 10", fontsize=10)
    ax.legend(fontsize=8, loc="lower center")
    text = (
        "The same idea in one variable: P′(x) = −4x + 12 is the slope of the tangent (orange), and a step "
        f"x ← x + η·P′(x) climbs it. With η = {ASCENT_LR:g} each step overshoots the top and comes back, closer: "
        f"from x = {ASCENT_START:g} it reaches x = {path[-1]:.5f} after {ASCENT_STEPS} steps, where P′ = 0 "
        "and the tangent is flat (x = 3, P = 8). Minimising a loss is this with the sign flipped."
    )
    return Section("derivative", "", [t.save(fig, "derivative.png")], text)


# --------------------------------------------------------------------------- (j) softmax
def softmax(t: Tour) -> Section:
    x, y = fnn.data.digits()
    x_train, y_train, x_test, y_test = fnn.data.train_test_split(jax.random.key(t.seed), x, y, test_fraction=0.25)
    model = fnn.Sequential([fnn.Dense(32, activation="relu"), fnn.Dense(10, activation="softmax")])
    run = fnn.fit(model, model.init(jax.random.key(t.seed), 64), x_train, y_train, loss="categorical_cross_entropy",
                  optimizer=fnn.optim.adam(1e-2), epochs=20, batch_size=64, key=jax.random.key(t.seed), verbose=0)
    acc = t.s.record("digits_test_accuracy",
                     float(np.mean(np.asarray(fnn.predict_classes(model, run.params, x_test)) == np.asarray(y_test))))
    probs = np.asarray(fnn.predict_proba(model, run.params, x_test), float)
    i = int(np.argmin(probs.max(axis=1)[:50]))  # the least sure of the first 50 test digits: more than one bar
    p, label = probs[i], int(y_test[i])
    t.s.record("digit_probabilities", p)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.9), gridspec_kw=dict(width_ratios=(1, 1.8)))
    image = left.imshow(np.asarray(x_test[i]).reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    fig.colorbar(image, ax=left, label="pixel intensity (0 = white, 1 = black)")
    left.set(title=f"test digit {i}: true label {label}", xlabel="pixel column", ylabel="pixel row")
    colours = ["C2" if k == label else "C0" for k in range(10)]
    right.bar(np.arange(10), p, color=colours)
    for k, v in enumerate(p):
        right.text(k, v + 0.01, f"{v:.2f}", ha="center", fontsize=7)
    right.set(xticks=np.arange(10), ylim=(0, 1.08), xlabel="class (digit)", ylabel="softmax probability",
              title=f"the network's 10 probabilities (sum {p.sum():.3f}); green: the true class")
    right.grid(alpha=0.3, axis="y")
    text = (
        f"With ten classes the last layer has ten units and softmax turns their values z into probabilities "
        f"e^z_k / Σ e^z_j, each in (0, 1), summing to 1. A 64-32-10 network trained for 20 epochs gets {acc:.1%} "
        f"of {len(y_test)} held-out digits right; this one (the least sure of the first 50, true label {label}) "
        + (f"puts P = {p[label]:.2f} on its class and {np.sort(p)[-2]:.2f} on the runner-up, "
           f"{int(np.argsort(p)[-2])}: unsure, and it says so." if int(p.argmax()) == label else
           f"puts P = {p[label]:.2f} on its class but {p.max():.2f} on {int(p.argmax())}: wrong, and unsure.")
    )
    return Section("softmax", "", [t.save(fig, "softmax.png")], text)


# --------------------------------------------------------------------------- (k) activations
def activations(t: Tour) -> Section:
    panels = {}
    for name in ("linear", "tanh"):
        model = fnn.Sequential([fnn.Dense(u, activation=name) for u in CIRCLES_LAYERS]
                               + [fnn.Dense(1, activation="sigmoid")])
        run = t.fit(model, circles_init(model, t.seed, HIDDEN_BIAS), [fnn.callbacks.TargetLoss(TARGET)])
        panels[name] = (model, run)
    panels = {"linear": panels["linear"], "relu": (t.model, t.run), "tanh": panels["tanh"]}
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4), layout="constrained")
    accs = {}
    for ax, (name, (model, run)) in zip(axes, panels.items()):
        accs[name] = float(run.history["val_accuracy"][-1])
        contours = _boundary(ax, model, run.params, t.x_test, t.y_test,
                             f"{name} hidden layers:\n{run.epochs_run} epochs, test accuracy {accs[name]:.1%}")
    fig.colorbar(contours, ax=axes, shrink=0.9, label="P(y = 1): predicted probability of the inner circle")
    fig.suptitle(f"the same 2-4-6-6-4-1 network and recipe, three hidden activations "
                 f"(each run stops at training loss {TARGET:g} or {MAX_EPOCHS} epochs); "
                 f"points: the {N_TEST} test points")
    path = os.path.join(t.out, "activations.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    t.s.record("activation_test_accuracy", accs)
    text = (
        "Without a nonlinearity the composition is one linear map: however many layers, a linear network's "
        f"boundary is a straight line, and it cannot beat guessing on circles ({accs['linear']:.1%} in "
        f"{panels['linear'][1].epochs_run} epochs). ReLU builds the ring from straight pieces "
        f"({accs['relu']:.1%}), tanh from smooth ones ({accs['tanh']:.1%})."
    )
    return Section("activations", "", ["activations.png"], text)


STEPS: dict[str, Callable[[Tour], Section]] = {name: globals()[name] for name, _ in SECTIONS}


def markdown(sections: list[Section]) -> str:
    """tour.md: a heading per step, its pictures (relative links), its sentences."""
    lines = ["# A tour of the seeds", "",
             "Written by `python experiments/tour.py`: each step of learning on the seed network "
             "(INIT → LOSS → GRADIENT → STEP → STOP), then the learning rate, a derivative, softmax and "
             "activations, each with the numbers of this run.", ""]
    for i, section in enumerate(sections, start=1):
        lines += [f"## {i}. {section.heading}", ""]
        lines += [f"![{section.heading}: {name}]({name})" for name in section.pictures]
        lines += ["", section.text, ""]
    return "\n".join(lines)


def main(argv=None) -> dict:
    args = parser("tour", __doc__.splitlines()[0]).parse_args(argv)
    s = Summary("A tour of the seeds, picture by picture")
    out = output_dir(args.out)
    tour = Tour(out, args.seed, s)
    sections = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # matplotlib's layout notes about the fixed-size figures
        for name, heading in SECTIONS:
            section = STEPS[name](tour)._replace(heading=heading)
            sections.append(section)
            s.add(f"{heading}: {', '.join(section.pictures)}")
    with open(os.path.join(out, "tour.md"), "w") as f:
        f.write(markdown(sections))
    s.add(f"wrote {os.path.join(out, 'tour.md')}")
    s.write(out)
    return {"pictures": [p for section in sections for p in section.pictures], "figures": s.figures}


if __name__ == "__main__":
    main(sys.argv[1:])
