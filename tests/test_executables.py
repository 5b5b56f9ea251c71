"""fnn._executables: a warm process loads fnn's programs whole, tracing, lowering and compiling nothing.

Each check runs fresh processes over one cache folder: the first fills it, the next counts JAX's
own trace, lower and compile events (jax.monitoring) around model.init, fit and predict. A process
whose fnn source, JAX version or CPU differs from the stored entries' (each faked) misses them and
traces again. Results are bitwise those of a run with the cache off.
"""

import json
import os
import subprocess
import sys

import pytest

WORKER = r"""
import json, sys
import numpy as np
import jax
from jax import monitoring
from jax._src import dispatch
import fnn
from fnn import _executables

fake = sys.argv[1]
if fake == "source":
    _executables.source_hash = lambda: "another fnn"
elif fake == "jax":
    _executables.jax_versions = lambda: "jax 0.0.0 jaxlib 0.0.0"
elif fake == "cpu":
    _executables.cpu_identity = lambda: "another processor"
names = {dispatch.JAXPR_TRACE_EVENT: "trace", dispatch.JAXPR_TO_MLIR_MODULE_EVENT: "lower",
         dispatch.BACKEND_COMPILE_EVENT: "compile"}
rng = np.random.default_rng(0)
x = rng.standard_normal((40, 2)).astype(np.float32)
y = (x[:, :1] * x[:, 1:] > 0).astype(np.float32)
keys = jax.random.key(0), jax.random.key(1)
jax.block_until_ready(keys)
counts = dict.fromkeys(names.values(), 0)
def listen(event, duration, **kw):
    if event in names:
        counts[names[event]] += 1
monitoring.register_event_duration_secs_listener(listen)
model = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(1, activation="sigmoid")])
params = model.init(keys[0], 2)
result = fnn.fit(model, params, x, y, loss="binary_cross_entropy", optimizer=fnn.optim.adam(1e-2), epochs=3,
                 batch_size=8, key=keys[1], verbose=0)
out = np.asarray(fnn.predict(model, result.params, x))
print(json.dumps({"counts": counts, "out": out.ravel().tolist(), "loss": [float(v) for v in result.history["loss"]],
                  "entries": fnn.cache.info()["files"]}))
"""


def _run(folder, fake="", cache_on=True) -> dict:
    env = dict(os.environ, FNN_CACHE_DIR=str(folder), FNN_CACHE="on" if cache_on else "off")
    proc = subprocess.run([sys.executable, "-c", WORKER, fake], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # fresh processes: `make test-slow`
def test_a_warm_process_traces_lowers_and_compiles_nothing(tmp_path):
    cold = _run(tmp_path)
    assert cold["counts"]["trace"] > 0 and cold["counts"]["compile"] > 0
    warm = _run(tmp_path)
    assert warm["counts"] == {"trace": 0, "lower": 0, "compile": 0}
    off = _run(tmp_path / "unused", cache_on=False)
    assert warm["out"] == cold["out"] == off["out"]  # bitwise: the same executables
    assert warm["loss"] == cold["loss"] == off["loss"]


@pytest.mark.slow  # fresh processes: `make test-slow`
@pytest.mark.parametrize("fake", ["source", "jax", "cpu"])
def test_another_fnn_jax_or_cpu_misses_the_stored_programs(tmp_path, fake):
    cold = _run(tmp_path)
    other = _run(tmp_path, fake)
    assert other["counts"]["trace"] > 0 and other["counts"]["lower"] > 0  # not the stored executables
    assert other["entries"] > cold["entries"]  # stored beside the others under its own keys
    assert other["out"] == cold["out"]
