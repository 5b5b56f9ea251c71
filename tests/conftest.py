"""Float64 for exact derivative checks; no silent rank promotion anywhere in fnn."""
import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
