"""Weight penalties for one layer's kernel or bias, with Keras' names and defaults: l1, l2, l1_l2.

`Dense(n, kernel_regularizer=fnn.regularizers.l2(1e-4))` adds 1e-4·Σw² of that layer's kernel to the
objective the run minimises (fnn.fit, fnn.Trainer, fnn.objective, fnn.backprop, fnn.gradcheck). As in
Keras, the penalty is part of the reported figures: the history's `loss` and `val_loss` include it.
The strengths are part of the model's structure: a model with a new λ compiles its run once.

Each penalty sits beside its hand-written gradient (fnn.backprop adds it to ∂L/∂w):

    l1:  λ·Σ|w|   gradient λ·sign(w)   (0 at w == 0, as Keras' TensorFlow gradient of abs)
    l2:  λ·Σw²    gradient 2λ·w
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from fnn import _validate
from fnn.errors import FnnTypeError, FnnValueError

__all__ = [
    "NAMES",
    "Regularizer",
    "get",
    "l1",
    "l1_l2",
    "l1_penalty",
    "l1_penalty_grad",
    "l2",
    "l2_penalty",
    "l2_penalty_grad",
]

Array = jax.Array


def l1_penalty(w: Array) -> Array:
    """Σ|w| over every entry: a scalar."""
    # w·sign(w) is |w|, and jax.grad of it is sign(w), 0 at w == 0 (as TensorFlow's abs), where
    # jax.grad(jnp.abs) gives 1: zero biases are common, and fnn.backprop must agree with jax.grad there
    return jnp.sum(w * jnp.sign(w))


def l1_penalty_grad(w: Array) -> Array:
    """d Σ|w| / dw = sign(w), shaped like w; 0 at w == 0 (the subgradient TensorFlow takes)."""
    return jnp.sign(w)


def l2_penalty(w: Array) -> Array:
    """Σw² over every entry: a scalar."""
    return jnp.sum(w * w)


def l2_penalty_grad(w: Array) -> Array:
    """d Σw² / dw = 2w, shaped like w."""
    return 2.0 * w


@dataclasses.dataclass(frozen=True)
class Regularizer:
    """The penalty l1·Σ|w| + l2·Σw² on one array; built by l1, l2 and l1_l2 (kind: which one, for repr).

    Example:
        >>> reg = fnn.regularizers.l2(0.5)
        >>> float(reg(jnp.array([1.0, -2.0])))  # 0.5 · (1 + 4)
        2.5
        >>> reg.grad(jnp.array([1.0, -2.0])).tolist()  # 2 · 0.5 · w
        [1.0, -2.0]
    """

    l1: float = 0.0
    l2: float = 0.0
    kind: str = "l1_l2"

    def __post_init__(self):
        if self.kind not in NAMES:
            raise FnnValueError(f"unknown regularizer kind {self.kind!r}; choose one of {list(NAMES)}")
        for name in ("l1", "l2"):
            value = _validate.real(getattr(self, name), f"regularizer strength {name}")
            if value < 0:
                raise FnnValueError(
                    f"regularizer strength {name} must be >= 0, got {value}: a negative penalty rewards large "
                    "weights without bound; use e.g. fnn.regularizers.l2(1e-4), or no regularizer"
                )
            object.__setattr__(self, name, value)

    def __call__(self, w: Array) -> Array:
        """The penalty on w: a scalar of w's dtype."""
        total = jnp.zeros((), w.dtype)
        if self.l1:
            total = total + self.l1 * l1_penalty(w)
        if self.l2:
            total = total + self.l2 * l2_penalty(w)
        return total

    def grad(self, w: Array) -> Array:
        """∂penalty/∂w, shaped like w."""
        g = jnp.zeros_like(w)
        if self.l1:
            g = g + self.l1 * l1_penalty_grad(w)
        if self.l2:
            g = g + self.l2 * l2_penalty_grad(w)
        return g

    def __repr__(self) -> str:
        if self.kind == "l1":
            return f"l1({self.l1!r})"
        if self.kind == "l2":
            return f"l2({self.l2!r})"
        return f"l1_l2(l1={self.l1!r}, l2={self.l2!r})"


def l1(l1: float = 0.01) -> Regularizer:
    """λ·Σ|w| with λ = l1 (Keras' default 0.01)."""
    return Regularizer(l1=_strength(l1, "fnn.regularizers.l1"), kind="l1")


def l2(l2: float = 0.01) -> Regularizer:
    """λ·Σw² with λ = l2 (Keras' default 0.01).

    Example:
        >>> fnn.Dense(4, activation="relu", kernel_regularizer=fnn.regularizers.l2(1e-4))
        Dense(4, activation='relu', kernel_regularizer=l2(0.0001))
    """
    return Regularizer(l2=_strength(l2, "fnn.regularizers.l2"), kind="l2")


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> Regularizer:
    """l1·Σ|w| + l2·Σw² (Keras' defaults 0.01 and 0.01)."""
    return Regularizer(_strength(l1, "fnn.regularizers.l1_l2 l1"), _strength(l2, "fnn.regularizers.l1_l2 l2"), "l1_l2")


NAMES = {"l1": l1, "l2": l2, "l1_l2": l1_l2}


def _strength(value, name: str) -> float:
    value = _validate.real(value, f"{name} strength")
    if value < 0:
        raise FnnValueError(
            f"{name} strength must be >= 0, got {value}: a negative penalty rewards large weights without "
            "bound; use a small positive strength such as 1e-4"
        )
    return value


def get(identifier, name: str = "regularizer") -> Regularizer | None:
    """A Regularizer from None, a name ("l1", "l2", "l1_l2": Keras' defaults), a Regularizer, or its
    config dict {"l1": ..., "l2": ..., "kind": ...} (as a checkpoint stores it)."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        if identifier not in NAMES:
            raise FnnValueError(
                f"unknown {name} {identifier!r}; choose one of {list(NAMES)}, or pass e.g. fnn.regularizers.l2(1e-4)"
            )
        return NAMES[identifier]()
    if isinstance(identifier, dict) and set(identifier) <= {"l1", "l2", "kind"}:
        return Regularizer(**identifier)
    raise FnnTypeError(
        f"{name} must be None, a name ({', '.join(map(repr, NAMES))}) or fnn.regularizers.l1/l2/l1_l2(...), "
        f"got {type(identifier).__name__} {identifier!r:.60}"
    )
