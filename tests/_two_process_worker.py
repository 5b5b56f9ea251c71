"""A data-parallel fit over 127.0.0.1 (run by tests/test_scale.py).

`worker.py ID PORT OUT`: process ID (0 or 1) of two, holding half of the data each.
`worker.py single - OUT`: the same run in one process on all of the data, for comparison.
Each writes its final params and loss history to OUT as a NumPy .npz (not fnn.save: this checks
the training, not the file format). A process of the pair also checks that its compiled program
all-reduces the gradients across the two processes.
"""
import sys

import jax

mode, port, out = sys.argv[1], sys.argv[2], sys.argv[3]
if mode != "single":
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=int(mode),
                               initialization_timeout=60)

import numpy as np  # noqa: E402

import fnn  # noqa: E402

x, y = fnn.data.circles(jax.random.key(0), 256, noise=0.05)
x, y = np.asarray(x), np.asarray(y)
if mode != "single":
    half = slice(0, 128) if mode == "0" else slice(128, 256)
    x, y = x[half], y[half]
model = fnn.Sequential([fnn.Dense(8, activation="relu"), fnn.Dense(1, activation="sigmoid")])
params = model.init(jax.random.key(0), 2)
optimizer, key = fnn.optim.momentum(0.1, 0.9), jax.random.key(2)
devices = None if mode == "single" else jax.devices()
result = fnn.fit(model, params, x, y, optimizer=optimizer, epochs=5, batch_size=32, key=key, devices=devices)
if mode != "single":
    assert len(jax.devices()) == 2 and int(result.state.epoch) == 5, (jax.devices(), result.state.epoch)
    trainer = fnn.Trainer(model, optimizer=optimizer, batch_size=32, devices=devices)
    state = trainer.init(params, key=key)
    data = trainer.data(state, x, y)
    text = fnn.trainer._compiled_run.lower(trainer.spec_for(data), state, data, np.int32(5),
                                           np.int32(100)).compile().as_text()
    assert "all-reduce" in text, "no all-reduce in the two-process program"
leaves = {f"{i}.{name}": np.asarray(getattr(layer, name)) for i, layer in enumerate(result.params) for name in "wb"}
np.savez(out, loss=np.asarray(result.history["loss"]), **leaves)
if mode != "single":
    jax.distributed.shutdown()
