"""Memory that scales: labels stay labels, evaluate and predict run in bounded chunks, row counts
share programs. The cheap checks run by default; the fresh-process RSS figures are slow."""
import json
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import fnn
from fnn import inference

SOFTMAX = fnn.Sequential([fnn.Dense(5, activation="tanh"), fnn.Dense(3, activation="softmax")])


@pytest.fixture(scope="module")
def three_classes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2)).astype(np.float32)
    labels = (np.digitize(x[:, 0], [-0.5, 0.5])).astype(np.int64)
    return x, labels, SOFTMAX.init(jax.random.key(0), 2)


def test_row_buckets_are_few_and_pad_little():
    sizes = [inference.bucket_rows(n) for n in range(1, 70_000, 7)]
    assert all(b >= n for b, n in zip(sizes, range(1, 70_000, 7)))
    assert len(set(b for b, n in zip(sizes, range(1, 70_000, 7)) if 100 <= n <= 10_000)) <= 8
    for n in (65_537, 100_000, 200_000, 1_000_003):
        assert n <= inference.bucket_rows(n) <= n * 1.0625


def test_class_labels_train_as_labels_and_give_what_one_hot_rows_give(three_classes):
    x, labels, params = three_classes
    t = fnn.losses.prepare_targets(labels, "categorical_cross_entropy", 3)
    assert t.shape == (40,) and t.dtype == np.int32
    kw = dict(epochs=3, batch_size=8, shuffle=False, verbose=0)
    sparse = fnn.fit(SOFTMAX, params, x, labels, **kw)
    dense = fnn.fit(SOFTMAX, params, x, np.eye(3, dtype=np.float32)[labels], **kw)
    for a, b in zip(jax.tree.leaves(sparse.params), jax.tree.leaves(dense.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sparse.history["loss"], dense.history["loss"], rtol=1e-5)
    e1, e2 = fnn.evaluate(SOFTMAX, params, x, labels), fnn.evaluate(SOFTMAX, params, x, np.eye(3)[labels])
    assert e1 == pytest.approx(e2, rel=1e-6)


def test_evaluate_and_predict_in_chunks_equal_one_pass(three_classes, monkeypatch):
    x, labels, params = three_classes
    whole = fnn.evaluate(SOFTMAX, params, x, labels, sample_weight=np.linspace(0.5, 2, 40))
    outputs = np.asarray(fnn.predict(SOFTMAX, params, x))
    monkeypatch.setattr(inference, "CHUNK", 16)  # 40 rows: chunks of 16, 16 and 8
    chunked = fnn.evaluate(SOFTMAX, params, x, labels, sample_weight=np.linspace(0.5, 2, 40))
    assert chunked == pytest.approx(whole, rel=1e-6)
    np.testing.assert_allclose(np.asarray(fnn.predict(SOFTMAX, params, x)), outputs, rtol=1e-6)
    bad = x.copy()
    bad[33, 1] = np.nan  # in the last chunk: still named, by row
    with pytest.raises(fnn.FnnValueError, match="row 33"):
        fnn.predict(SOFTMAX, params, bad)


def test_evaluate_weighs_the_loss_as_keras_does(three_classes):
    x, labels, params = three_classes
    w = np.linspace(0.5, 2, 40)
    p = np.asarray(fnn.predict(SOFTMAX, params, x), np.float64)
    per = -np.log(p[np.arange(40), labels])
    got = fnn.evaluate(SOFTMAX, params, x, labels, sample_weight=w)
    assert got["loss"] == pytest.approx(np.mean(w * per), rel=1e-5)
    assert got["accuracy"] == pytest.approx(np.mean(p.argmax(1) == labels))


def _fresh(code: str, timeout: int = 600) -> dict:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=timeout, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# VmHWM, the peak of this process's own address space: ru_maxrss keeps a forking parent's peak across exec
PEAK = """
import json, numpy as np, jax, fnn
def peak():  # MiB
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""


@pytest.mark.slow
def test_ten_thousand_classes_fit_and_evaluate_under_1_gb():
    got = _fresh(PEAK + """
rng = np.random.default_rng(0)
x = rng.standard_normal((20_000, 20), dtype=np.float32); y = rng.integers(0, 10_000, 20_000)
model = fnn.Sequential([fnn.Dense(64, activation="relu"), fnn.Dense(10_000, activation="softmax")])
params = model.init(jax.random.key(0), 20)
fnn.fit(model, params, x, y, epochs=1, batch_size=128, verbose=0); fit = peak()
fnn.evaluate(model, params, x, y)
print(json.dumps({"fit": fit, "evaluate": peak()}))
""")
    assert got["fit"] < 1000 and got["evaluate"] < 1000, got


@pytest.mark.slow
def test_200k_by_784_fits_under_1_5_gb_and_evaluates_without_raising_the_peak():
    got = _fresh(PEAK + """
rng = np.random.default_rng(0)
x = rng.standard_normal((200_000, 784), dtype=np.float32); y = (x[:, 0] > 0).astype(np.float32)
model = fnn.Sequential([fnn.Dense(64, activation="relu"), fnn.Dense(1, activation="sigmoid")])
params = model.init(jax.random.key(0), 784)
base = peak()
r = fnn.fit(model, params, x, y, epochs=1, batch_size=256, verbose=0); fit = peak()
fnn.evaluate(model, r.params, x, y)
print(json.dumps({"base": base, "fit": fit, "evaluate": peak(), "data": x.nbytes / 2**20}))
""")
    assert got["fit"] < 1.5 * 1024, got  # MiB
    assert got["fit"] - got["base"] <= 2 * got["data"], got
    assert got["evaluate"] <= got["fit"] + 16, got


@pytest.mark.slow
def test_a_hundred_row_counts_compile_few_programs_and_memory_levels_off():
    got = _fresh("""
import json, sys, numpy as np, jax, fnn
sys.path.insert(0, "tests")
from _compiles import counting
def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20
model = fnn.Sequential([fnn.Dense(8, activation="relu"), fnn.Dense(1, activation="sigmoid")])
params = model.init(jax.random.key(0), 2)
x, y = (np.asarray(a) for a in fnn.data.circles(jax.random.key(0), 10_000))
fnn.fit(model, params, x[:100], y[:100], epochs=1, verbose=0)
start = rss()
sizes = np.random.default_rng(0).choice(np.arange(100, 10_001), 100, replace=False)
with counting() as c:
    for n in sizes:
        fnn.fit(model, params, x[:n], y[:n], epochs=1, verbose=0)
print(json.dumps({"compiles": c["compile"], "grown": rss() - start}))
""")
    assert got["compiles"] <= 8 and got["grown"] < 100, got


def test_validation_rows_are_padded_and_their_mean_is_over_the_real_ones(three_classes):
    x, labels, params = three_classes
    r = fnn.fit(SOFTMAX, params, x[:30], labels[:30], validation_data=(x[30:], labels[30:]), epochs=1,
                optimizer=fnn.optim.sgd(1e-30), verbose=0)  # a rate of ~0: the params stay, so evaluate sees them
    ev = fnn.evaluate(SOFTMAX, params, x[30:], labels[30:])  # 10 rows, padded to 16 inside the run
    assert r.history["val_loss"][0] == pytest.approx(ev["loss"], rel=1e-5)
    assert r.history["val_accuracy"][0] == pytest.approx(ev["accuracy"], rel=1e-6)
