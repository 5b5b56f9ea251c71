"""Float64 for exact derivative checks; no silent rank promotion anywhere in fnn.

Compilation dominates this suite, so XLA's optimisation passes are switched off (here and, via
the environment, in the subprocesses tests start): the programs compute the same mathematics,
only slower, and the tests time nothing.
"""
import os

os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
os.environ.setdefault("FNN_CACHE", "off")  # the suite never writes to the user's ~/.cache

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
