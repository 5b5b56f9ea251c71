"""One bad-input battery for every public entry point (the table lives in tests/_battery.py).

Every bad input must raise the expected fnn exception, with a message naming the argument, what
was expected and what was received, before anything is traced: never a raw JAX/XLA error and
never a silent success. The legitimate corner cases (one sample, one feature, a single class,
batch_size larger than the data, (n,) targets) must work.
"""
import jax
import pytest

import fnn
from fnn import stream, trainer
from fnn.errors import FnnError

import _battery as battery
import _compiles

REQUIRED_ENTRY_POINTS = {
    "fnn.Dense", "fnn.Sequential", "model.init", "model.apply", "fnn.predict", "fnn.predict_classes",
    *(f"fnn.losses.{name}" for name in ("mse", "binary_cross_entropy", "categorical_cross_entropy",
                                         "sigmoid_binary_cross_entropy", "softmax_cross_entropy")),
    *(f"fnn.losses.{name}_grad" for name in ("mse", "binary_cross_entropy", "categorical_cross_entropy",
                                              "sigmoid_binary_cross_entropy", "softmax_cross_entropy")),
    "fnn.objective", "fnn.objective(...)(params, x, y)", "fnn.backprop.gradients", "fnn.backprop.backward",
    "fnn.backprop.deltas", "fnn.backprop.gradient_norms",
    *(f"fnn.optim.{name}" for name in ("sgd", "momentum", "nesterov", "adam", "constant", "exponential_decay",
                                        "cosine_decay", "clip_by_global_norm", "add_weight_decay", "chain")),
    "fnn.fit", "fnn.evaluate", "fnn.save", "fnn.load", "fnn.gradcheck", "fnn.numerical_gradient", "fnn.sweep",
    "fnn.lr_find", "fnn.Trainer", "trainer.init", "trainer.run",
    *(f"fnn.callbacks.{name}" for name in ("EarlyStopping", "ReduceLROnPlateau", "TargetLoss", "TerminateOnNaN",
                                            "Snapshots", "ModelCheckpoint", "CSVLogger", "LambdaCallback")),
    "fnn.optim.set_hyperparameters", "fnn.optim.learning_rate",
    *(f"fnn.data.{name}" for name in ("circles", "spiral", "train_test_split", "standardize")),
}

# what every entry point taking (x, y) must refuse, by the `what` of its cases
REQUIRED_DATA_CASES = {
    "x with NaN", "x with inf", "x 0-d", "x 1-d", "x 3-d", "x with 0 samples", "x with 0 features",
    "x with 3 features", "x of strings", "x of objects", "x complex",
    *(f"{loss}: {what}" for loss in battery.PROBLEMS
      for what in ("y with NaN", "y with 0 samples", "y shorter than x", "y of strings", "y complex")),
    "binary_cross_entropy: label 2", "binary_cross_entropy: label -1",
    "categorical_cross_entropy: label 3 of 3 classes", "categorical_cross_entropy: label -1",
    "categorical_cross_entropy: one-hot row summing to 2",
    "categorical_cross_entropy: one-hot of width 2 for 3 outputs",
    "mse, 3 outputs: y (n,) for 3 outputs",
    "binary_cross_entropy: params[1].w of the wrong shape", "binary_cross_entropy: params of 1 layer for 2",
    "binary_cross_entropy: params[1].w with NaN", "binary_cross_entropy: params[0].b with inf",
    "x 1-d, one example of the model's width",
}

# every parameter of the model-building API, each bad value it must refuse: (entry, what)
REQUIRED_MODEL_CASES = {
    *(("fnn.Dense", f"input_dim {v}") for v in ("0", "-1", "2.5", "'2'", "True")),
    ("fnn.Sequential", "input_dim on a later layer"),
    ("model.init", "input_dim disagreeing with the first layer's"), ("model.init", "input_dim left out, none declared"),
    *((entry, "key a negative int") for entry in ("model.init", "fnn.initializers.glorot_uniform", "fnn.data.circles",
                                                  "fnn.data.train_test_split")),
    ("fnn.fit", "key a negative int"), ("model.init", "key a bool"),
}
# every parameter of the training API (Trainer, its state, its callbacks), each bad value it must refuse
REQUIRED_TRAINING_CASES = {
    *(("fnn.Trainer", what) for what in ("model a string", "unknown loss", "optimizer an unknown name",
                                          "batch_size 0", "batch_size 1.5", "batch_size 'a'", "shuffle 1",
                                          "callbacks not a list", "callbacks holding a number",
                                          "callbacks holding a Callback class, not an instance", "devices a string")),
    *(("trainer.init", what) for what in ("params of 1 layer for 2", "params a dict", "key a negative int",
                                           "key a string", "opt_state of another optimizer", "opt_state a number",
                                           "opt_state with NaN")),
    *(("trainer.run", what) for what in ("epochs -1", "epochs 1.5", "epochs None", "state a number",
                                          "state of a trainer with other callbacks", "verbose 'loud'", "verbose -1",
                                          "EarlyStopping on val_loss without validation data")),
    *(("fnn.callbacks.EarlyStopping", what) for what in ("patience -1", "patience 1.5", "min_delta NaN", "mode 'up'",
                                                          "monitor 3", "restore_best_weights 'yes'",
                                                          "start_from_epoch -1")),
    *(("fnn.callbacks.ReduceLROnPlateau", what) for what in ("factor 0", "factor 1", "factor 1.5", "patience -1",
                                                              "min_lr -1", "cooldown -1")),
    ("fnn.callbacks.TargetLoss", "value NaN"), ("fnn.callbacks.TargetLoss", "value 'a'"),
    ("fnn.callbacks.TerminateOnNaN", "max_bad_steps -1"),
    ("fnn.callbacks.Snapshots", "every 0"), ("fnn.callbacks.Snapshots", "every 1.5"),
    ("fnn.callbacks.ModelCheckpoint", "path 3"), ("fnn.callbacks.ModelCheckpoint", "every 0"),
    ("fnn.callbacks.CSVLogger", "filename 3"),
    ("fnn.callbacks.LambdaCallback", "on_epoch_end=3"),
    ("fnn.callbacks.LambdaCallback", "on_batch_end (no batch-level hooks)"),
    *(("fnn.fit", what) for what in ("EarlyStopping on val_loss without validation data",
                                      "ReduceLROnPlateau with a learning-rate schedule", "initial_state a number",
                                      "initial_state that has run more epochs than epochs=",
                                      "initial_state a missing file",
                                      "initial_state a checkpoint of params, not of a TrainState",
                                      "verbose 'loud'", "callbacks not a list")),
    ("fnn.sweep", "callbacks with a host callback"),
    ("fnn.optim.set_hyperparameters", "an unknown name"),
    ("fnn.optim.set_hyperparameters", "a number for a schedule's learning_rate"),
    ("fnn.optim.learning_rate", "a user optimizer's state"),
}
# the arguments fit no longer takes: no case may still pass them
REMOVED_FIT_ARGUMENTS = ("target_loss", "patience", "min_delta", "restore_best", "max_bad_steps", "record_every",
                         "checkpoint", "checkpoint_every", "resume", "opt_state")
# where a key is taken, an int seed is a legitimate key, never refused
INT_SEED_ENTRIES = {"model.init", "fnn.initializers.glorot_uniform", "fnn.fit", "fnn.data.circles", "fnn.data.spiral",
                    "fnn.data.train_test_split"}


def _param(case):
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in battery.CASES])
def test_bad_input_raises_a_clear_fnn_error(case):
    outcome = battery.run(case)
    assert outcome.status == "clear", f"{outcome.status}: {outcome.detail}"


@pytest.mark.parametrize("edge", [pytest.param(e, id=e.id) for e in battery.EDGE_CASES])
def test_legitimate_edge_case_works(edge):
    edge.check()


def test_bad_training_input_never_starts_tracing(monkeypatch):
    """fit, Trainer, trainer.init/run and the callbacks refuse bad input on the host: nothing is
    traced or compiled, and not even a cached program is called."""
    called = []
    for module, name in ((trainer, "_compiled_run"), (stream, "_steps"), (stream, "_end")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, real=real, name=name, **k: called.append(name) or real(*a, **k))
    cases = [c for c in battery.FIT_CASES if not c.xfail]
    assert len(cases) >= 300
    with _compiles.counting() as counts:
        for case in cases:
            with pytest.raises(FnnError):
                case.call(case.bad)
    assert counts == {"trace": 0, "compile": 0}
    assert called == []


def test_the_battery_covers_every_entry_point():
    assert REQUIRED_ENTRY_POINTS <= set(battery.ENTRY_POINTS), REQUIRED_ENTRY_POINTS - set(battery.ENTRY_POINTS)
    for entry in battery.DATA_ENTRIES:
        whats = {c.what for c in battery.CASES if c.entry == entry}
        assert REQUIRED_DATA_CASES <= whats, (entry, REQUIRED_DATA_CASES - whats)
    assert len(battery.CASES) >= 1000 and len(battery.EDGE_CASES) >= 40


def test_the_battery_covers_every_training_parameter():
    cases = {(c.entry, c.what) for c in battery.CASES}
    assert REQUIRED_TRAINING_CASES <= cases, REQUIRED_TRAINING_CASES - cases
    for case in battery.CASES:
        if case.entry == "fnn.fit":
            assert not any(case.what.startswith(name + " ") for name in REMOVED_FIT_ARGUMENTS), case.id


def test_the_battery_covers_every_model_parameter_and_int_seeds():
    cases = {(c.entry, c.what) for c in battery.CASES}
    assert REQUIRED_MODEL_CASES <= cases, REQUIRED_MODEL_CASES - cases
    refused_seeds = [c.id for c in battery.CASES if "key" in c.what and isinstance(c.bad, int)
                     and not isinstance(c.bad, bool) and 0 <= c.bad < 2**32]
    assert not refused_seeds, f"an int seed is a key: no case may expect one to be refused: {refused_seeds}"
    seeds = {e.entry for e in battery.EDGE_CASES if e.what == "an int seed as the key"}
    assert INT_SEED_ENTRIES <= seeds, INT_SEED_ENTRIES - seeds


def test_every_expected_error_is_an_fnn_error_of_the_standard_kind():
    for case in battery.CASES:
        assert issubclass(case.error, FnnError), case.id
        assert issubclass(case.error, (ValueError, TypeError, FileNotFoundError)), case.id


def test_the_classifier_sees_raw_errors_silence_and_traced_errors():
    """run() itself: a battery that cannot fail proves nothing."""
    def raw(bad):
        return bad["missing"]

    def traced(bad):
        return jax.jit(lambda x: (_ for _ in ()).throw(fnn.FnnValueError("x is bad")))(bad)

    make = battery.Case
    assert battery.run(make("t", "raw", raw, {}, fnn.FnnValueError, "")).status == "raw"
    assert battery.run(make("t", "silent", lambda bad: bad, 1, fnn.FnnValueError, "")).status == "silent"
    assert battery.run(make("t", "traced", traced, 1.0, fnn.FnnValueError, "x is bad")).status == "traced"
    assert battery.run(make("t", "message", traced, 1.0, fnn.FnnValueError, "other")).status == "wrong_message"
    assert battery.run(make("t", "class", traced, 1.0, fnn.FnnTypeError, "x is bad")).status == "wrong_class"
