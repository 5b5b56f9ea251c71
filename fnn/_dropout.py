"""fnn.Dropout, the layer's configuration, and the rates a Sequential keeps of it (fnn.models re-exports it).

The masks themselves are pure functions in fnn.layers (dropout_masks, dropout_apply) and their backward
pass is in fnn.backprop (dropout_vjp).
"""

from __future__ import annotations

import dataclasses

from fnn import _validate
from fnn.errors import FnnValueError

__all__ = ["Dropout", "rates"]


@dataclasses.dataclass(frozen=True)
class Dropout:
    """Inverted dropout on the next Dense layer's inputs, in training only: each unit is set to 0 with
    probability `rate` and the kept ones are scaled by 1/(1 − rate), so predict, evaluate and
    activations_of (which never drop) see inputs of the same expected size. Each training step draws
    new masks from the run's key (fnn.layers.dropout_key): runs stay bitwise reproducible.

    Example:
        >>> fnn.Sequential([fnn.Dense(8, activation="relu"), fnn.Dropout(0.2), fnn.Dense(1)])
        Sequential([Dense(8, activation='relu'), Dropout(0.2), Dense(1)])
    """

    rate: float

    def __post_init__(self):
        rate = _validate.real(self.rate, "Dropout rate")
        if not 0.0 <= rate < 1.0:
            raise FnnValueError(
                f"Dropout rate must be in [0, 1), the fraction of units dropped (e.g. 0.2), got {rate}; "
                "a rate of 1 would drop every unit"
            )
        object.__setattr__(self, "rate", rate)

    def __repr__(self) -> str:
        return f"Dropout({self.rate!r})"


def rates(stack, dropout=Dropout) -> tuple[float | None, ...]:
    """The rate of the Dropout before each Dense layer of `stack` (None: none), refusing a Dropout
    last (it would drop the outputs) or two in a row."""
    rates: list[float | None] = []
    pending: float | None = None
    for i, layer in enumerate(stack):
        if isinstance(layer, dropout):
            if pending is not None:
                both = 1 - (1 - pending) * (1 - layer.rate)
                raise FnnValueError(
                    f"Sequential layers {i - 1} and {i} are two Dropout layers in a row; use one, "
                    f"Dropout({both:.6g}) drops as the two do"
                )
            pending = layer.rate
            continue
        rates.append(pending)
        pending = None
    if pending is not None:
        raise FnnValueError(
            f"Sequential ends with Dropout({pending}), which would drop the model's outputs; put Dropout "
            "between Dense layers (or before the first), and end with a Dense layer"
        )
    if not rates:
        raise FnnValueError("Sequential needs at least one Dense layer, e.g. Sequential([Dense(1)])")
    return tuple(rates)
