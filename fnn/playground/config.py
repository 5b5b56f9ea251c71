"""A playground run's configuration: its keys, defaults and ranges, checked into one normal form.

A Config is a plain dict (JSON, and the page's URL hash). `normalise(given, base)` returns the
full, checked dict: `base`'s values (or the defaults) where `given` has none. Numbers may come as
numbers or as strings ("0.03"), lists as lists or as comma-separated strings ("4,6,6,4"). Which
keys are numbers (taking effect at the next epoch), data or structure (starting the run again)
is said by NUMBERS, DATA and STRUCTURE.
"""

from __future__ import annotations

import math

from fnn import activations, initializers
from fnn.errors import FnnValueError
from fnn.playground import datasets

__all__ = ["DATA", "DEFAULTS", "FEATURES", "LIMITS", "NUMBERS", "OPTIMIZERS", "STRUCTURE", "normalise", "options"]

FEATURES = ("x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
ACTIVATIONS = tuple(sorted(set(activations.ACTIVATIONS) - {"softmax"}))  # softmax is an output layer's
INITIALIZERS = ("default", *sorted(initializers.INITIALIZERS))  # "default": fnn's choice for the activation
MAX_LAYERS = 8
MAX_UNITS = 32

DEFAULTS = {
    "dataset": "circles",
    "problem": "classification",
    "n_points": 1000,
    "noise": 0.1,
    "train_fraction": 0.5,
    "classes": 2,
    "seed": 0,
    "features": ["x1", "x2"],
    "layers": [4, 6, 6, 4],
    "activation": "tanh",
    "initializer": "default",
    "l2": 0.0,
    "optimizer": "sgd",
    "learning_rate": 0.03,
    "momentum": 0.9,
    "batch_size": 10,
    "epochs_per_update": 1,
}

# key -> (low, high, integer): every number's closed range
LIMITS = {
    "n_points": (50, 2000, True),
    "noise": (0.0, 0.5, False),
    "train_fraction": (0.1, 0.9, False),
    "classes": (2, datasets.MAX_CLASSES, True),
    "seed": (0, 2**31 - 1, True),
    "l2": (0.0, 1.0, False),
    "learning_rate": (1e-5, 10.0, False),
    "momentum": (0.0, 0.999, False),
    "batch_size": (1, 2000, True),
    "epochs_per_update": (1, 100, True),
}

NUMBERS = frozenset({"learning_rate", "momentum", "l2"})
DATA = frozenset({"dataset", "noise", "train_fraction", "n_points", "classes", "seed"})
STRUCTURE = frozenset({"layers", "activation", "features", "optimizer", "initializer", "batch_size", "problem"})


def options() -> dict:
    """What the page offers: every choice, every range, and the defaults (GET /api/options)."""
    limits = {k: {"min": lo, "max": hi, "integer": integer} for k, (lo, hi, integer) in LIMITS.items()}
    limits["layers"] = {"max_layers": MAX_LAYERS, "min_units": 1, "max_units": MAX_UNITS}
    return {
        "datasets": list(datasets.BUILTIN),
        "regression": sorted(datasets.REGRESSION),
        "multiclass": sorted(datasets.MULTICLASS),
        "activations": list(ACTIVATIONS),
        "optimizers": list(OPTIMIZERS),
        "initializers": list(INITIALIZERS),
        "features": list(FEATURES),
        "limits": limits,
        "defaults": dict(DEFAULTS),
    }


def _number(key: str, value):
    low, high, integer = LIMITS[key]
    kind = "an integer" if integer else "a number"
    allowed = f"{low}..{high}"
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise FnnValueError(f"{key} must be {kind} in {allowed}, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FnnValueError(f"{key} must be {kind} in {allowed}, got {value!r}")
    if not math.isfinite(value) or (integer and value != int(value)):
        raise FnnValueError(f"{key} must be {kind} in {allowed}, got {value!r}")
    if not low <= value <= high:
        raise FnnValueError(f"{key} = {value!r} is out of range; allowed: {allowed}")
    return int(value) if integer else float(value)


def _choice(key: str, value, allowed) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise FnnValueError(f"{key} = {value!r} is not one of {list(allowed)}")
    return value


def _items(key: str, value) -> list:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)):
        raise FnnValueError(f"{key} must be a list (or a comma-separated string), got {value!r}")
    return list(value)


def _layers(value) -> list[int]:
    units = _items("layers", value)
    if len(units) > MAX_LAYERS:
        raise FnnValueError(f"layers has {len(units)} hidden layers; allowed: 0..{MAX_LAYERS}")
    out = []
    for i, u in enumerate(units):
        try:
            n = float(u) if isinstance(u, str) else u
        except ValueError:
            n = None
        if isinstance(n, bool) or not isinstance(n, (int, float)) or n != int(n) or not 1 <= n <= MAX_UNITS:
            raise FnnValueError(f"layers[{i}] = {u!r}: each hidden layer has 1..{MAX_UNITS} units (an integer)")
        out.append(int(n))
    return out


def _features(value) -> list[str]:
    names = _items("features", value)
    for name in names:
        _choice("features", name, FEATURES)
    if not names:
        raise FnnValueError(f"features is empty; choose at least one of {list(FEATURES)}")
    return [f for f in FEATURES if f in names]  # one order: the same set is the same structure


def normalise(given: dict | None, base: dict | None = None) -> dict:
    """The full checked Config: `given` over `base` (default: DEFAULTS). Refuses unknown keys,
    unknown names and numbers out of range, naming the key, the value and what is allowed.

    Example:
        >>> from fnn.playground import config
        >>> cfg = config.normalise({"learning_rate": "0.1", "layers": "8,8"})
        >>> cfg["learning_rate"], cfg["layers"], cfg["dataset"]
        (0.1, [8, 8], 'circles')
    """
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise FnnValueError(f"config must be a JSON object of settings, got {type(given).__name__}")
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise FnnValueError(f"unknown config key(s) {unknown}; the keys are {sorted(DEFAULTS)}")
    out = dict(DEFAULTS if base is None else base)
    for key, value in given.items():
        if key in LIMITS:
            out[key] = _number(key, value)
        elif key == "dataset":
            out[key] = _choice(key, value, (*datasets.BUILTIN, "csv"))
        elif key == "problem":
            out[key] = _choice(key, value, ("classification", "regression"))
        elif key == "activation":
            out[key] = _choice(key, value, ACTIVATIONS)
        elif key == "initializer":
            out[key] = _choice(key, value, INITIALIZERS)
        elif key == "optimizer":
            out[key] = _choice(key, value, OPTIMIZERS)
        elif key == "layers":
            out[key] = _layers(value)
        elif key == "features":
            out[key] = _features(value)
    if out["dataset"] != "csv":  # derived from the data set (a CSV's from its labels, set by the session)
        out["problem"] = "regression" if out["dataset"] in datasets.REGRESSION else "classification"
    return out
