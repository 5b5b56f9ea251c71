"""The suite's JAX settings (float64, no rank promotion, XLA's optimisations off, no compilation
cache) are made in the repository's root conftest.py, before jax is imported, so that these
tests and the doctests of fnn/ run under the same ones."""
