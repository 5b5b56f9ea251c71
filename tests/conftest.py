"""The suite's JAX settings (float64, no rank promotion, XLA's optimisations off, no compilation
cache) are made in the repository's root conftest.py, before jax is imported, so that these
tests and the doctests of fnn/ run under the same ones. The fixture here is shared by the cache tests."""

import jax
import pytest

from fnn import cache


@pytest.fixture
def restore_cache():
    """This process runs with the cache off (conftest); whatever a test turns on is turned off."""
    if cache.directory() is not None or jax.config.jax_compilation_cache_dir is not None:
        pytest.skip("a compilation cache is on in this process (FNN_CACHE or JAX's own settings)")
    yield
    cache.disable()
    jax.config.update("jax_compilation_cache_dir", None)
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 1.0
    assert jax.config.jax_persistent_cache_enable_xla_caches == "xla_gpu_per_fusion_autotune_cache_dir"  # JAX's
