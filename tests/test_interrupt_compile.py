"""Ctrl-C at any moment of a cold fit or sweep ends the process cleanly: never killed by a signal.

A KeyboardInterrupt raised inside XLA's compiler used to leave the process to crash at exit
(rc 139). Each case is a fresh process (a cold start: nothing compiled, cache off) that gets two
SIGINTs 50 ms apart at a random moment of its fit or sweep; it catches the KeyboardInterrupt, or
returns an interrupted result, and must exit 0.
"""

import concurrent.futures
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow  # 20 fresh processes, about a minute on 2 cores: `make test-slow`

CHILD = r"""
import json, signal, sys
import jax, numpy as np
import fnn

model = fnn.Sequential([fnn.Dense(4, activation="tanh"), fnn.Dense(6, activation="tanh"), fnn.Dense(1, activation="sigmoid")])
x, y = (np.asarray(a) for a in fnn.data.circles(jax.random.key(0), 64, noise=0.05))
params = model.init(jax.random.key(0), 2)
print("ready", flush=True)
try:
    if sys.argv[1] == "fit":
        outcome = fnn.fit(model, params, x, y, epochs=200, batch_size=16, verbose=0).stop_reason
    else:
        outcome = "done" if fnn.sweep(model, x, y, optimizer=fnn.optim.sgd, learning_rates=[0.01, 0.1], seeds=[0, 1], epochs=200) else "?"
except KeyboardInterrupt:
    outcome = "KeyboardInterrupt"
signal.signal(signal.SIGINT, signal.SIG_IGN)  # done: a signal sent after this is not the run's
print(json.dumps(outcome), flush=True)
sys.stdin.read()  # exit when the parent is done signalling
"""

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _interrupted(kind: str, delay: float) -> tuple[int, str, str]:
    env = dict(os.environ, FNN_CACHE="off")
    child = subprocess.Popen([sys.executable, "-c", CHILD, kind], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert child.stdout.readline() == "ready\n"
    time.sleep(delay)
    for _ in range(2):
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
        time.sleep(0.05)
    out, err = child.communicate("", timeout=120)
    return child.returncode, out, err[-2000:]


def test_ctrl_c_at_twenty_random_moments_of_a_cold_fit_and_sweep_never_kills_the_process():
    moments = random.Random(0)
    cases = [(kind, moments.uniform(0.0, 3.0)) for kind in ("fit", "sweep") for _ in range(10)]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda case: _interrupted(*case), cases))
    outcomes = []
    for (kind, delay), (rc, out, err) in zip(cases, results):
        assert rc == 0, (kind, delay, rc, err)  # a signal's death is rc < 0 here (>= 128 in a shell)
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
    assert set(outcomes) <= {"KeyboardInterrupt", "interrupted", "done", "epochs"}, outcomes
    # the moments did fall inside the runs: some stopped by Ctrl-C (at an epoch's end, or aborted by the second)
    assert {"KeyboardInterrupt", "interrupted"} & set(outcomes), outcomes
