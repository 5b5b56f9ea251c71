"""What a run returns beside its state: the History of its epochs and, if it met a non-finite
loss, gradient or update, a DivergenceInfo saying where."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from fnn import callbacks as fnn_callbacks
from fnn import engine
from fnn.engine import TrainState

__all__ = ["DivergenceInfo", "History", "divergence"]


class DivergenceInfo(NamedTuple):
    """Where training met a non-finite loss, gradient or update."""

    epoch: int  # 0-based epoch
    step: int  # 0-based mini-batch within that epoch; -1: the params overflowed somewhere in the epoch
    loss: float  # the loss of that step (may be nan or inf)
    leaf: str  # the first non-finite gradient leaf, e.g. "[2].w", else "update ..." or "loss"


class History:
    """What `Trainer.run` recorded: `history[name]` is one float per epoch run (Keras' History.history);
    `stop_reason` is "epochs", "interrupted" or the reason of the callback that stopped the run."""

    def __init__(self, names):
        self.history: dict[str, list[float]] = {name: [] for name in names}
        self.epoch: list[int] = []
        self.stop_reason = "epochs"
        self.records: dict = {}  # what compiled callbacks kept: snapshots, step_loss, ...
        self.best_epoch: int | None = None
        self.divergence: DivergenceInfo | None = None
        self.rejected_steps = 0
        self.first_rejected: tuple | None = None

    def __getitem__(self, name: str) -> list[float]:
        return self.history[name]

    def last_logs(self) -> dict:
        return {k: v[-1] for k, v in self.history.items() if v}

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, stop_reason={self.stop_reason!r}, names={list(self.history)})"


def advice(scale: tuple[float, float] | None) -> str:
    """What to try after a divergence, from the largest |x| and |y| (None: unknown): the data's scale
    where it is the cause, else the learning rate."""
    if scale is not None:
        x_max, y_max = scale
        if not (x_max <= DATA_SCALE):
            return (
                f"The features reach {x_max:.3g}: standardise them first, e.g. x = (x - x.mean(0)) / x.std(0); "
                "a smaller learning rate will not fix data of that scale."
            )
        if not (y_max <= DATA_SCALE):
            return (
                f"The targets reach {y_max:.3g}: scale them first, e.g. y = (y - y.mean()) / y.std(), and "
                "undo it on the predictions; a smaller learning rate will not fix targets of that scale."
            )
    return "Try a smaller learning rate."


DATA_SCALE = 1e4  # |x| or |y| past this is named as the likely cause of a divergence
TINY_SCALE = 1e-6  # every |x| below this: the first layer sees little but its biases


def scale_warning(x) -> str | None:
    """Why features (n, d) at their scale leave a network little to learn, or None: one column past
    DATA_SCALE (its units saturate or blow up) or every one below TINY_SCALE. One pass, no copy."""
    x = np.asarray(x)
    if x.size == 0 or x.dtype.kind not in "fc":
        return None
    scale = np.maximum(np.abs(np.max(x, axis=0)), np.abs(np.min(x, axis=0))).astype(np.float64)
    fix = "standardise x first, e.g. x = (x - x.mean(0)) / x.std(0) (fnn.data.standardize does it for a split)"
    if scale.max() > DATA_SCALE:
        j = int(np.argmax(scale))
        return f"x's column {j} reaches {scale[j]:.3g} in magnitude (past {DATA_SCALE:g}): {fix}"
    if scale.max() < TINY_SCALE:
        return f"every feature of x is below {scale.max():.3g} in magnitude (under {TINY_SCALE:g}): {fix}"
    return None


def divergence(rules, state: TrainState, guard, leaf_names, scale=None) -> DivergenceInfo:
    """What a run stopped by TerminateOnNaN met, and the warning that says so and what was kept.
    scale: (max |x|, max |y|) of the training data, for the advice."""
    epochs = int(state.epoch)
    epoch, step = (int(v) for v in guard.last)
    if epoch < epochs - 1 or epoch < 0:  # no step of the last epoch was refused: an applied update overflowed
        info = DivergenceInfo(epochs - 1, -1, float("nan"), "update (the params overflowed during this epoch)")
    else:
        leaf = int(guard.bad_leaf)
        name = "loss" if leaf == engine.LOSS_LEAF else leaf_names[leaf] if 0 <= leaf < len(leaf_names) else "update"
        info = DivergenceInfo(epoch, step, float(guard.last_loss), name)
    nan_state = next(s for r, s in zip(rules, state.callbacks) if isinstance(r, fnn_callbacks.TerminateOnNaN))
    good = int(nan_state.best_epoch)
    if good > 0:
        kept = (
            f"the params after epoch {good}, from which epoch {good + 1} trained with the lowest training "
            f"loss seen ({float(nan_state.best_loss):.4g})"
        )
    else:
        kept = "the initial params"
    where = f"epoch {info.epoch + 1}, step {info.step}" if info.step >= 0 else f"the end of epoch {info.epoch + 1}"
    warnings.warn(
        f"training stopped at {where}: non-finite loss {info.loss} (first non-finite: {info.leaf}); "
        f"returning {kept}. {advice(scale)}",
        RuntimeWarning,
        stacklevel=5,
    )
    return info
