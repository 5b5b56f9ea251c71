"""Import an experiments/ script as a module, as the tests of those scripts do."""
import importlib.util
import os
import sys

EXPERIMENTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments")


def load(name: str, module: str | None = None):
    """experiments/<name>.py imported under `module` (default experiments_<name>: `backprop` etc. are too generic)."""
    if EXPERIMENTS not in sys.path:
        sys.path.insert(0, EXPERIMENTS)  # the scripts import their helpers as `_common`
    spec = importlib.util.spec_from_file_location(module or f"experiments_{name}", os.path.join(EXPERIMENTS, f"{name}.py"))
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded
