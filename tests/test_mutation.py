"""The gradient tests, tested: each deliberately wrong derivative must be caught.

The checks in tests/_gradient_checks.py (hand-written backprop against jax.grad of the
objective; loss and gradients exact at logits of ±1e4) pass on the library as it is; here each
mutant in MUTANTS is swapped in with monkeypatch and the check named for it must fail.
"""
import pytest

from fnn import activations, backprop, losses, regularizers

import _gradient_checks as checks


@pytest.mark.parametrize("name", list(checks.CHECKS))
def test_check_passes_on_the_library(name):
    checks.CHECKS[name]()


_SLOW_CHECKS = {"dropout and regularizers vs jax.grad"}  # a compile per mutant: make test-slow runs them


@pytest.mark.parametrize("mutant", [pytest.param(m, marks=pytest.mark.slow) if m.caught_by in _SLOW_CHECKS else m
                                    for m in checks.MUTANTS], ids=[m.name for m in checks.MUTANTS])
def test_mutant_is_caught(mutant, monkeypatch):
    mutant.apply(monkeypatch)
    with pytest.raises(AssertionError):
        checks.CHECKS[mutant.caught_by]()


def test_every_check_catches_some_mutant():
    assert {m.caught_by for m in checks.MUTANTS} == set(checks.CHECKS)


def test_every_new_derivative_has_a_mutant():
    """A planted 1% error in each derivative of the newer activations and losses is among the mutants."""
    names = {m.name for m in checks.MUTANTS}
    for name in checks.NEW_ACTIVATIONS:
        assert f"{name} derivative 1% too large" in names
    for name in checks.NEW_LOSSES:
        assert f"{name} gradient 1% too large" in names
    for name in ("dropout_vjp", "l1 penalty gradient", "l2 penalty gradient"):
        assert f"{name} 1% too large" in names
    assert set(checks.NEW_ACTIVATIONS) | {"linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax"} == set(
        activations.ACTIVATIONS)
    assert set(checks.NEW_LOSSES) | {"mse", "binary_cross_entropy", "categorical_cross_entropy"} == set(losses.LOSSES)


@pytest.mark.slow  # seconds of real I/O or fresh processes: make test-slow runs it
def test_the_library_is_restored_after_the_mutants():
    """monkeypatch undid every swap: the checks pass again and the registry holds the originals."""
    assert activations.ACTIVATIONS["tanh"].deriv is activations.tanh_deriv
    assert activations.ACTIVATIONS["softmax"].backward is activations.softmax_vjp
    for name in checks.NEW_ACTIVATIONS:
        assert activations.ACTIVATIONS[name].deriv is getattr(activations, f"{name}_deriv")
    assert losses.LOSSES[losses.MAE].grad is losses.mae_grad
    assert losses.LOSSES[losses.BINARY_CE].value is losses.sigmoid_binary_cross_entropy
    assert backprop.dense_vjp.__module__ == "fnn.backprop"
    assert backprop.dropout_vjp.__module__ == "fnn.backprop"
    assert regularizers.l1_penalty_grad.__name__ == "l1_penalty_grad"
    assert regularizers.l2_penalty_grad.__name__ == "l2_penalty_grad"
    for check in checks.CHECKS.values():
        check()
