"""The Keras-like layer on top of the pure functions: Dense, Sequential and the objective.

Dense and Sequential are frozen, hashable configurations (so they can be static arguments to
jit); parameters are separate immutable pytrees made by `Sequential.init`. The checks every entry
point runs on a model, its params and its data (`check_params`, `prepare`) live here too.
"""

from __future__ import annotations

import dataclasses
import itertools
import typing
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from fnn import _compile, _dropout, _validate, activations, initializers, layers, losses, regularizers, targets
from fnn._dropout import Dropout
from fnn.errors import FnnTypeError, FnnValueError
from fnn.layers import DenseParams

__all__ = [
    "Dense",
    "DenseParams",
    "Dropout",
    "Params",
    "Sequential",
    "check_model",
    "check_params",
    "network_output",
    "objective",
    "penalty",
    "prepare",
    "resolve_loss",
]

Array = jax.Array
Params = tuple  # tuple[DenseParams, ...]


@dataclasses.dataclass(frozen=True)
class Dense:
    """A fully connected layer of `units` outputs followed by an activation.

    kernel_init: an initializer name; None picks Glorot-uniform, as Keras does, for every activation
    (ReLU layers included: experiments/initializers.py measured it against He). bias_init: the
    biases' starting value (0 by default; a small
    positive value keeps more ReLU units alive at the start of a narrow network). input_dim (or
    Keras' input_shape=(n,)): the width of the model's inputs, as in Keras; only the first layer of a Sequential may
    declare it, and then `model.init(key)` needs no input_dim. activation: a name (Keras' names
    too), None (linear), an fnn.Activation(f, df), or any callable z -> f(z), which jax.grad then
    differentiates (fit, fnn.objective) and fnn.backprop refuses, naming the fix. kernel_regularizer,
    bias_regularizer: fnn.regularizers.l1/l2/l1_l2(...) or their names, a penalty on w or b added to the
    training objective (see fnn.regularizers).

    Example:
        >>> fnn.Dense(4, activation="relu")
        Dense(4, activation='relu')
    """

    units: int
    activation: str | activations.Activation | Callable | None = "linear"
    kernel_init: str | None = None
    bias_init: float = 0.0
    input_dim: int | None = None
    input_shape: tuple[int] | None = None  # Keras' spelling of input_dim, (n,): stored as input_dim=n
    kernel_regularizer: regularizers.Regularizer | str | None = None
    bias_regularizer: regularizers.Regularizer | str | None = None

    def __post_init__(self):  # activation: a name, None, an fnn.Activation or any callable (see fnn.activations)
        units = _validate.integer(self.units, "Dense units", minimum=1)
        if self.input_shape is not None:
            object.__setattr__(self, "input_dim", _input_shape_dim(self.input_shape, self.input_dim))
            object.__setattr__(self, "input_shape", None)  # one spelling: equal to, and compiled as, input_dim=n
        if self.input_dim is not None:
            object.__setattr__(self, "input_dim", _validate.integer(self.input_dim, "Dense input_dim", minimum=1))
        name = activations.canonical(self.activation)
        if self.kernel_init is not None:
            initializers.get(self.kernel_init)
        if name == "softmax" and units == 1:
            raise FnnValueError(
                "softmax over a single unit is always 1 and cannot learn; use "
                "Dense(1, activation='sigmoid') for one output, or >= 2 softmax units"
            )
        object.__setattr__(self, "bias_init", _validate.real(self.bias_init, "Dense bias_init"))
        for field in ("kernel_regularizer", "bias_regularizer"):
            object.__setattr__(self, field, regularizers.get(getattr(self, field), f"Dense {field}"))
        object.__setattr__(self, "units", units)
        object.__setattr__(self, "activation", name)

    @property
    def regularizers(self) -> tuple[regularizers.Regularizer | None, regularizers.Regularizer | None]:
        """(kernel_regularizer, bias_regularizer) as __post_init__ made them: Regularizer records or None."""
        return typing.cast(tuple, (self.kernel_regularizer, self.bias_regularizer))

    @property
    def initializer(self) -> str:
        return "glorot_uniform" if self.kernel_init is None else self.kernel_init

    def __repr__(self) -> str:
        """The call that builds this layer: units, then the arguments that differ from their defaults."""
        args = [repr(self.units)]
        args += [f"activation={self.activation!r}"] if self.activation != "linear" else []
        args += [f"kernel_init={self.kernel_init!r}"] if self.kernel_init is not None else []
        args += [f"bias_init={self.bias_init!r}"] if self.bias_init != 0.0 else []
        args += [f"input_dim={self.input_dim!r}"] if self.input_dim is not None else []
        args += [f"kernel_regularizer={self.kernel_regularizer!r}"] if self.kernel_regularizer is not None else []
        args += [f"bias_regularizer={self.bias_regularizer!r}"] if self.bias_regularizer is not None else []
        return f"Dense({', '.join(args)})"


def _input_shape_dim(shape, input_dim) -> int:
    """n from Keras' input_shape=(n,); a Dense layer takes rows of n features, so only (n,) fits."""
    if not isinstance(shape, (tuple, list)) or len(shape) != 1:
        raise FnnValueError(
            f"Dense input_shape must be a 1-tuple (n_features,), e.g. input_shape=(2,), got {shape!r}; a Dense "
            "layer takes rows of features (flatten images first), and input_dim=n says the same"
        )
    dim = _validate.count(shape[0], "Dense input_shape[0]", minimum=1)
    if input_dim is not None and input_dim != dim:
        raise FnnValueError(
            f"Dense input_shape={tuple(shape)!r} disagrees with input_dim={input_dim!r}; give one of them"
        )
    return dim


@dataclasses.dataclass(frozen=True)
class Sequential:
    """A stack of Dense layers: the composition activation_L(… activation_1(x @ w_1 + b_1) …).

    The input width comes from `init(key, input_dim)` or, as in Keras, from the first layer's
    `Dense(..., input_dim=n)`. Dropout layers may stand before any Dense layer (not last, not two in a
    row): `layers` holds the Dense layers (one params entry each), `dropout` the rate of the Dropout
    before each of them (None: none), and `stack` the whole list as given.

    Example:
        >>> model = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(1)])
        >>> params = model.init(jax.random.key(0), input_dim=2)
        >>> model.apply(params, jnp.ones((5, 2))).shape
        (5, 1)
        >>> keras_like = fnn.Sequential([fnn.Dense(3, input_dim=2, activation="tanh"), fnn.Dense(1)])
        >>> [p.w.shape for p in keras_like.init(0)]
        [(2, 3), (3, 1)]
    """

    layers: tuple[Dense, ...]
    dropout: tuple[float | None, ...]

    def __init__(self, layers: Sequence[Dense | Dropout]):
        if isinstance(layers, Dense):
            layers = [layers]
        if not isinstance(layers, (list, tuple)):
            raise FnnTypeError(f"Sequential takes a list of Dense layers, got {type(layers).__name__}")
        if len(layers) == 0:
            raise FnnValueError("Sequential needs at least one layer, e.g. Sequential([Dense(1)])")
        for i, layer in enumerate(layers):
            if not isinstance(layer, (Dense, Dropout)):
                raise FnnTypeError(
                    f"Sequential layer {i} must be a fnn.Dense or fnn.Dropout, got {type(layer).__name__} {layer!r}"
                )
        object.__setattr__(self, "dropout", _dropout.rates(layers, Dropout))
        layers = [layer for layer in layers if isinstance(layer, Dense)]
        for i, layer in enumerate(layers[1:], start=1):
            if layer.input_dim is not None:
                raise FnnValueError(
                    f"Sequential layer {i}, Dense({layer.units}, input_dim={layer.input_dim}), declares input_dim, "
                    f"but only the first layer may: layer {i}'s inputs are layer {i - 1}'s {layers[i - 1].units} "
                    f"outputs; remove input_dim from layer {i} (put it on layer 0 to declare the model's input width)"
                )
        object.__setattr__(self, "layers", tuple(layers))

    @property
    def activations(self) -> tuple[activations.ActivationLike, ...]:
        """Each layer's activation: its registry name, or the user's fnn.Activation."""
        return tuple(_activation_name(layer) for layer in self.layers)

    @property
    def stack(self) -> tuple[Dense | Dropout, ...]:
        """Every layer in order, Dropout included: the list the model was built from."""
        out: list[Dense | Dropout] = []
        for rate, layer in zip(self.dropout, self.layers):
            out += [Dropout(rate), layer] if rate is not None else [layer]
        return tuple(out)

    @property
    def has_dropout(self) -> bool:
        """Does training drop units (a Dropout of rate > 0)? Without, the run draws no masks and no keys."""
        return any(rate for rate in self.dropout)

    @property
    def declared_input_dim(self) -> int | None:
        """The input width the first layer declares (Dense(..., input_dim=n)), or None."""
        return self.layers[0].input_dim

    @property
    def output_dim(self) -> int:
        return self.layers[-1].units

    @property
    def output_activation(self) -> activations.ActivationLike:
        return _activation_name(self.layers[-1])

    def shapes(self, input_dim: int | None = None) -> tuple[tuple[int, int], ...]:
        """Each layer's w shape (n_in, n_out) for inputs of width input_dim (by default, the declared one)."""
        dims = (self._resolve_input_dim(input_dim),) + tuple(layer.units for layer in self.layers)
        return tuple(itertools.pairwise(dims))

    def _resolve_input_dim(self, input_dim) -> int:
        """input_dim as given, else the first layer's; the two must agree when both are given."""
        declared = self.declared_input_dim
        if input_dim is None:
            if declared is None:
                raise FnnTypeError(
                    "input_dim must be an integer >= 1, got None: pass model.init(key, input_dim), "
                    "or declare it on the first layer, Dense(..., input_dim=n)"
                )
            return declared
        input_dim = _validate.integer(input_dim, "input_dim", minimum=1)
        if declared is not None and input_dim != declared:
            first = self.layers[0]
            raise FnnValueError(
                f"input_dim={input_dim} disagrees with the first layer's "
                f"Dense({first.units}, input_dim={declared}); pass input_dim={declared} "
                "or leave it out"
            )
        return input_dim

    def init(self, key: Array, input_dim: int | None = None, dtype=jnp.float32) -> Params:
        """Fresh parameters, a tuple of DenseParams(w (n_in, n_out), b (n_out,)).

        key: a JAX PRNG key or an integer seed. input_dim: the inputs' width; may be left out when
        the first layer declares it (Dense(..., input_dim=n)).

        Every weight comes from one random stream drawn with `key`, split into one slice per layer,
        so no two layers share values; the same key gives the same parameters."""
        key = _validate.key(key)
        input_dim = self._resolve_input_dim(input_dim)
        return _init(self, input_dim, _validate.float_dtype(dtype), key)

    def input_dim(self, params: Params) -> int:
        """The input width these params were built for (checks the params' structure first)."""
        check_params(self, params)
        return params[0][0].shape[0]

    def apply(self, params: Params, x: ArrayLike) -> Array:
        """(n, n_in) -> (n, n_out) outputs (probabilities for sigmoid/softmax); (n_in,) -> (n_out,)."""
        check_params(self, params)
        x, single = _validate.features(x, "x", params[0][0].shape[0], allow_single=True)
        out = layers.mlp_apply(self.activations, params, _as_float(x, params))
        return out[0] if single else out

    def logits(self, params: Params, x: ArrayLike) -> Array:
        """(n, n_in) -> (n, n_out): the last layer's pre-activation."""
        check_params(self, params)
        x, single = _validate.features(x, "x", params[0][0].shape[0], allow_single=True)
        out = layers.mlp_logits(self.activations, params, _as_float(x, params))
        return out[0] if single else out

    def __call__(self, params: Params, x: ArrayLike) -> Array:
        return self.apply(params, x)

    def __repr__(self) -> str:
        """Python that rebuilds the model: Sequential([Dense(4, activation='relu'), Dense(1)])."""
        return f"Sequential([{', '.join(map(repr, self.stack))}])"

    def count_params(self, input_dim: int | None = None) -> int:
        """The number of parameters (weights and biases) for inputs of width input_dim (by default, the
        declared one): Σ over layers of n_in · n_out + n_out.

        Example:
            >>> model.count_params(2)  # Dense(4) on 2 inputs: 2·4 + 4; Dense(1): 4·1 + 1
            17
        """
        return sum(n_in * n_out + n_out for n_in, n_out in self.shapes(input_dim))

    def summary(self, input_dim: int | None = None, print_fn: Callable[[str], object] | None = print) -> str:
        """A table of the layers (output shape, parameters, activation) and the total, as Keras' summary;
        printed with print_fn (None: not printed) and returned. Output shapes put None for the batch.

        Example:
            >>> text = model.summary(2)
            Sequential: 2 inputs -> 1 output
            layer      output shape     params  activation
            ----------------------------------------------
            0 Dense    (None, 4)            12  tanh
            1 Dense    (None, 1)             5  sigmoid
            ----------------------------------------------
            Total params: 17
        """
        shapes = self.shapes(input_dim)
        rows = []
        for (n_in, n_out), name, rate in zip(shapes, self.activations, self.dropout):
            if rate is not None:
                rows.append((f"{len(rows)} Dropout", f"(None, {n_in})", "0", f"rate {rate:g}"))
            rows.append((f"{len(rows)} Dense", f"(None, {n_out})", f"{n_in * n_out + n_out:,}", str(name)))
        head = ("layer", "output shape", "params", "activation")
        width = [max(len(r[j]) for r in [head, *rows]) for j in range(4)]
        width[:3] = [max(w, 10) for w in width[:3]]

        def line(r) -> str:
            return f"{r[0]:<{width[0]}} {r[1]:<{width[1]}} {r[2]:>{width[2]}}  {r[3]}".rstrip()

        rule = "-" * max(len(line(r)) for r in [head, *rows])
        n_out = self.output_dim
        lines = [f"Sequential: {shapes[0][0]} inputs -> {n_out} output{'s' if n_out > 1 else ''}", line(head), rule]
        lines += [line(r) for r in rows] + [rule, f"Total params: {self.count_params(input_dim):,}"]
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text


def _activation_name(layer: Dense) -> activations.ActivationLike:
    # Dense.activation is declared as the constructor takes it (None: linear); __post_init__ has
    # made it the registry name or an fnn.Activation
    return typing.cast(activations.ActivationLike, layer.activation)


@_compile.jit(static_argnums=(0, 1, 2))
def _init(model: Sequential, input_dim: int, dtype, key):
    """All layers' initialisation as one compiled call drawing every weight from one random stream
    (one generator call compiles in a fraction of the time of one per layer)."""
    shapes = model.shapes(input_dim)
    weights = initializers.draw_many(key, [layer.initializer for layer in model.layers], shapes, dtype)
    return tuple(
        layers.DenseParams(w, jnp.full((n_out,), layer.bias_init, dtype))
        for w, layer, (_, n_out) in zip(weights, model.layers, shapes)
    )


def _as_float(x, params):
    return _validate.cast(x, params[0][0].dtype, "x")


def check_model(model) -> Sequential:
    if not isinstance(model, Sequential):
        raise FnnTypeError(f"model must be a fnn.Sequential, got {type(model).__name__}")
    return model


def check_params(model: Sequential, params) -> None:
    """Refuse params that do not fit the model, naming the layer and both shapes, and concrete
    params holding NaN or ±inf, naming the leaf (under jit, grad or vmap only structure is checked)."""
    check_model(model)
    if not isinstance(params, (tuple, list)):
        raise FnnTypeError(
            f"params must be a tuple of DenseParams (one per layer), got {type(params).__name__}; "
            "make them with model.init(key, input_dim)"
        )
    if len(params) != len(model.layers):
        raise FnnValueError(f"params has {len(params)} layer entries but the model has {len(model.layers)} layers")
    n_in = None
    for i, (layer, p) in enumerate(zip(model.layers, params)):
        if not (isinstance(p, (tuple, list)) and len(p) == 2):
            raise FnnTypeError(f"params[{i}] must be DenseParams(w, b), got {type(p).__name__}")
        w, b = p
        if not hasattr(w, "shape") or not hasattr(b, "shape"):
            raise FnnTypeError(f"params[{i}].w and .b must be arrays, got {type(w).__name__} and {type(b).__name__}")
        if n_in is None:
            n_in = w.shape[0] if len(w.shape) == 2 else "n_in"
        expected_w = (n_in, layer.units)
        if tuple(w.shape) != expected_w:
            raise FnnValueError(
                f"params[{i}].w (layer {i}, Dense({layer.units})) has shape {tuple(w.shape)}, "
                f"expected ({n_in}, {layer.units})"
            )
        if tuple(b.shape) != (layer.units,):
            raise FnnValueError(
                f"params[{i}].b (layer {i}, Dense({layer.units})) has shape {tuple(b.shape)}, expected {(layer.units,)}"
            )
        for leaf, nm in ((w, "w"), (b, "b")):
            if not jnp.issubdtype(leaf.dtype, jnp.floating):
                raise FnnTypeError(f"params[{i}].{nm} has dtype {leaf.dtype}; parameters must be floating point")
        n_in = layer.units
    leaves = [leaf for p in params for leaf in p]
    if all(map(_validate.is_concrete, leaves)) and not _validate.all_finite(leaves):
        _refuse_non_finite(params)


def _refuse_non_finite(params) -> None:
    """Raise, naming the first leaf holding NaN or ±inf (called only once a check has found one)."""
    bad = [(f"params[{i}].{nm}", np.asarray(leaf)) for i, p in enumerate(params) for nm, leaf in zip("wb", p)]
    bad = [(name, values, ~np.isfinite(values)) for name, values in bad if not np.isfinite(values).all()]
    if not bad:
        return
    name, values, mask = bad[0]
    index = tuple(int(j) for j in np.argwhere(mask)[0])
    where = f"row {index[0]}, column {index[1]}" if len(index) == 2 else f"index {index[0]}"
    others = f", as do {', '.join(other for other, _, _ in bad[1:])}" if len(bad) > 1 else ""
    raise FnnValueError(
        f"{name} contains {int(mask.sum())} non-finite value(s) (first: {values[index]} at {where})"
        f"{others}; the params are unusable: retrain (e.g. with a smaller learning rate), or "
        "reload a checkpoint"
    )


def resolve_loss(model: Sequential, loss: losses.LossLike) -> losses.Loss:
    """The loss paired with the model's output layer (fused on logits where that is exact)."""
    check_model(model)
    return losses.resolve(loss, model.output_activation, model.output_dim)


def network_output(
    model: Sequential, spec: losses.Loss, params: Params, x: Array, small: bool = False, key: Array | None = None
) -> Array:
    """What the loss is computed from: logits for the fused pairs, outputs otherwise. No checks.
    small: see layers.dense_apply. key: training, with the model's dropout masks drawn from it (None:
    no dropout, as in predict)."""
    f = layers.mlp_logits if spec.from_logits else layers.mlp_apply
    masks = None
    if key is not None and model.has_dropout:
        masks = layers.dropout_masks(key, model.dropout, params, x.shape[0])
    return f(model.activations, params, x, small, masks)


def penalty(model: Sequential, params: Params) -> Array | None:
    """Σ over layers of the kernel and bias regularizers' penalties (a scalar), or None when the
    model has no regularizer (then nothing is traced). No checks."""
    terms = [
        reg(leaf)
        for layer, p in zip(model.layers, params)
        for reg, leaf in zip(layer.regularizers, p)
        if reg is not None
    ]
    return sum(terms[1:], terms[0]) if terms else None


def with_penalty(model: Sequential, params: Params, loss: Array) -> Array:
    """loss plus the model's regularization penalty (loss itself when there is none)."""
    extra = penalty(model, params)
    return loss if extra is None else loss + extra.astype(loss.dtype)


def prepare(
    model: Sequential, spec: losses.Loss, params: Params, x, y, xname: str = "x", yname: str = "y", host: bool = False
):
    """Check (params, x, y) against the model and loss; returns x and y as (n, ·) float arrays.

    xname, yname: the argument names the messages use (e.g. "x_val" for validation data). host=True:
    a host x stays on the host (no copy of it when it has the params' dtype already).
    """
    check_params(model, params)
    x, _ = _validate.features(x, xname, params[0][0].shape[0])
    dtype = params[0][0].dtype
    y = targets.prepare(y, spec.targets, model.output_dim, dtype, yname, loss=spec.name)
    _validate.same_length(x, y, xname, yname)
    return _validate.cast(x, dtype, xname, host), y


def objective(model: Sequential, loss: losses.LossLike) -> Callable[..., Array]:
    """The training objective as a pure function of the parameters: loss(params, x, y, key=None) -> scalar.

    With sigmoid + binary CE or softmax + categorical CE it is computed from the logits, so it
    and its gradient stay finite and exact for any logits. loss: a name, a record
    (fnn.losses.huber_loss(delta=2.0)) or a callable loss(pred, y) -> (n,) per-sample losses.
    The layers' regularization penalties are added (fnn.regularizers); key (a PRNG key or an int
    seed) draws the Dropout layers' masks, as one training step does (None: no dropout).

    Example:
        >>> loss = fnn.objective(model, "binary_cross_entropy")
        >>> g = jax.grad(loss)(params, x, y)
    """
    spec = resolve_loss(model, loss)

    def loss_fn(params: Params, x: Array, y: Array, key: Array | int | None = None) -> Array:
        x, y = prepare(model, spec, params, x, y)
        key = None if key is None else _validate.key(key)
        return with_penalty(model, params, losses.value(spec, network_output(model, spec, params, x, key=key), y))

    loss_fn.__name__ = f"{spec.name}_objective"
    return loss_fn
