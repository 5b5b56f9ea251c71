"""fnn.playground's server side: data sets, CSV files, configs, heatmaps, sessions and the HTTP API.

The default run shares one server and one small network structure (module-scoped fixtures: one
compile of each program); anything that compiles other structures or starts a process is slow.
"""

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import jax
import numpy as np
import pytest

import fnn
from fnn.errors import FnnValueError
from fnn.playground import config, datasets, export, heatmaps, server

TINY = {"n_points": 50, "layers": [3], "batch_size": 25}  # the one structure the default run compiles


# --------------------------------------------------------------------------- helpers
def call(url, method, path, body=None, content_type="application/json", timeout=60):
    """(status, parsed JSON or bytes) of one request; HTTP errors are answers too."""
    if body is not None and not isinstance(body, bytes):
        body = (body if isinstance(body, str) else json.dumps(body)).encode()
    request = urllib.request.Request(
        url.rstrip("/") + path, data=body, method=method, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as f:
            status, raw, kind = f.status, f.read(), f.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, raw, kind = e.code, e.read(), e.headers.get("Content-Type", "")
    return status, json.loads(raw) if kind.startswith("application/json") else raw


def csv_text(rows):
    return "".join(",".join(str(v) for v in row) + "\n" for row in rows)


def unpack(data: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(data), np.uint8)


@pytest.fixture(scope="module")
def app():
    srv, _, url = server.start(port=0)
    yield srv, url
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def tiny(app):
    """One session of the TINY structure, created through the API: (url, id, created response)."""
    url = app[1]
    status, created = call(url, "POST", "/api/sessions", {"config": TINY})
    assert status == 200, created
    return url, created["id"], created


def session_of(app, sid):
    return app[0].sessions[sid]


# --------------------------------------------------------------------------- data sets
@pytest.mark.parametrize("name", datasets.BUILTIN)
def test_datasets_deterministic_with_their_shapes_and_classes(name):
    classes = 4 if name in ("gaussians", "spiral") else 2
    a = datasets.load(name, 200, noise=0.2, classes=classes, seed=5, train_fraction=0.3)
    b = datasets.load(name, 200, noise=0.2, classes=classes, seed=5, train_fraction=0.3)
    for u, v in zip(a[:4], b[:4]):
        np.testing.assert_array_equal(u, v)
    assert a.x_train.shape == (60, 2) and a.x_test.shape == (140, 2) and a.x_train.dtype == np.float32
    assert not np.array_equal(a.x_train, datasets.load(name, 200, 0.2, classes, seed=6, train_fraction=0.3).x_train)
    assert np.abs(np.concatenate([a.x_train, a.x_test])).max() < 2.5  # every set at the circles' scale
    y = np.concatenate([a.y_train, a.y_test])
    if name in datasets.REGRESSION:
        assert a.problem == "regression" and a.classes == 0 and y.dtype == np.float32
        assert -1.5 < y.min() < 0 < y.max() < 1.5
    else:
        assert a.problem == "classification" and a.classes == classes and y.dtype == np.int32
        counts = np.bincount(y, minlength=classes)
        assert len(counts) == classes and counts.min() > 40
        assert name == "xor" or counts.tolist() == [200 // classes] * classes  # xor's labels come from noisy points


def test_datasets_geometry():
    x, y = datasets.generate("circles", 400, noise=0.0)
    r = np.linalg.norm(x, axis=1)
    np.testing.assert_allclose(r[y == 0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(r[y == 1], 0.5, rtol=1e-6)
    x, y = datasets.generate("xor", 400, noise=0.0)
    np.testing.assert_array_equal(y, (x[:, 0] * x[:, 1] >= 0).astype(np.int32))
    x, y = datasets.generate("plane", 400, noise=0.0)
    np.testing.assert_allclose(y, (x[:, 0] + x[:, 1]) * datasets.SCALE / 10, rtol=1e-5, atol=1e-6)
    x, y = datasets.generate("gaussians", 400, noise=0.0)
    np.testing.assert_allclose(x[y == 1].mean(axis=0), [0.4, 0.4], atol=0.05)  # Playground's (2, 2) / 5
    x, y = datasets.generate("multi-gaussian", 400, noise=0.0)
    assert y.min() >= -1 and y.max() <= 1


def test_dataset_bad_name():
    with pytest.raises(FnnValueError, match="unknown dataset 'ring'"):
        datasets.generate("ring")


# --------------------------------------------------------------------------- CSV
def test_csv_two_features_classes_and_header():
    rows = [["a", "b", "label"]] + [[i, (i * 7) % 5, i % 3] for i in range(30)]
    d = datasets.parse_csv(csv_text(rows), train_fraction=0.5, seed=1)
    assert d.problem == "classification" and d.classes == 3 and d.basis is None
    assert d.x_train.shape == (15, 2) and d.y_train.dtype == np.int32
    x = np.concatenate([d.x_train, d.x_test])
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-6)  # standardised
    np.testing.assert_allclose(x.std(axis=0), 1, atol=1e-5)
    np.testing.assert_array_equal(d.plane_train, d.x_train)


def test_csv_regression_and_relabelled_classes():
    d = datasets.parse_csv(csv_text([[i, i % 4, i * 0.5] for i in range(20)]))
    assert d.problem == "regression" and d.classes == 0 and d.y_train.dtype == np.float32
    d = datasets.parse_csv(csv_text([[i, -i, 10 * (i % 2) - 3] for i in range(20)]))  # labels -3, 7
    assert d.classes == 2 and set(np.concatenate([d.y_train, d.y_test]).tolist()) == {0, 1}


def test_csv_more_features_project_on_principal_components():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((200, 2)) @ np.array([[3.0, 1.0, 0.0, 2.0], [0.0, 1.0, 2.0, -1.0]])
    x = z + 0.01 * rng.standard_normal((200, 4))
    rows = [[*r, int(r[0] > 0)] for r in x]
    d = datasets.parse_csv(csv_text(rows))
    assert d.x_train.shape == (100, 4) and d.plane_train.shape == (100, 2) and d.basis.shape == (2, 4)
    np.testing.assert_allclose(d.basis @ d.basis.T, np.eye(2), atol=1e-9)
    # nearly rank 2: the features mapped back from the plane are the features
    np.testing.assert_allclose(d.features_of(d.plane_train), d.x_train, atol=0.02)
    # a point of the plane maps to the mean (0) along the other components
    np.testing.assert_allclose(d.features_of(np.zeros((1, 2))), 0, atol=1e-7)


BAD_CSV = {
    "text": ("1,2,0\n3,oops,1\n", "row 2, column 2 .* 'oops', not a number"),
    "nan": ("1,2,0\n3,nan,1\n", "row 2, column 2 .* 'nan'; every value must be finite"),
    "one column": ("1\n2\n3\n", "1 column; it needs at least 2"),
    "rows": ("0,0,0\n1,1,1\n" * 500_000, "over 100,000 rows"),
    "classes": ("".join(f"{i},{i},{i}\n" for i in range(50)), "50 classes; the playground takes 2 to 10"),
    "one class": ("1,2,0\n3,4,0\n", "only 1 class"),
    "empty": ("  \n", "empty"),
    "ragged": ("1,2,0\n3,1\n", "row 2 .* 2 columns"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSV))
def test_csv_bad_files_name_the_problem(case):
    text, message = BAD_CSV[case]
    with pytest.raises(FnnValueError, match=message):
        datasets.parse_csv(text)


# --------------------------------------------------------------------------- config
def test_config_defaults_strings_and_order():
    c = config.normalise({"layers": "8, 2", "features": ["x2", "x1"], "seed": "3", "noise": 0})
    assert c["layers"] == [8, 2] and c["features"] == ["x1", "x2"] and c["seed"] == 3 and c["noise"] == 0.0
    assert config.normalise(None) == config.DEFAULTS
    assert config.normalise({"dataset": "plane"})["problem"] == "regression"
    assert config.normalise({"layers": []})["layers"] == []
    assert set(config.options()["limits"]) >= set(config.LIMITS)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"learning_rate": 99}, r"learning_rate = 99 is out of range; allowed: 1e-05..10.0"),
        ({"n_points": 10**6}, r"n_points = 1000000 is out of range; allowed: 50..2000"),
        ({"batch_size": 2.5}, r"batch_size must be an integer in 1..2000, got 2.5"),
        ({"momentum": "fast"}, r"momentum must be a number in 0.0..0.999, got 'fast'"),
        ({"momentum": True}, r"momentum must be a number"),
        ({"layers": [4] * 9}, r"layers has 9 hidden layers; allowed: 0..8"),
        ({"layers": [4, 33]}, r"layers\[1\] = 33: each hidden layer has 1..32 units"),
        ({"activation": "cubic"}, r"activation = 'cubic' is not one of"),
        ({"features": ["x3"]}, r"features = 'x3' is not one of"),
        ({"features": []}, r"features is empty"),
        ({"lr": 0.1}, r"unknown config key\(s\) \['lr'\]"),
        ({"noise": float("nan")}, r"noise must be a number in 0.0..0.5, got nan"),
    ],
)
def test_config_refuses_with_the_key_value_and_range(given, message):
    with pytest.raises(FnnValueError, match=message):
        config.normalise(given)


# --------------------------------------------------------------------------- heatmaps
def test_features_grid_and_quantise():
    p = np.array([[0.5, -2.0]])
    np.testing.assert_allclose(
        heatmaps.feature_matrix(p, config.FEATURES), [[0.5, -2.0, 0.25, 4.0, -1.0, np.sin(0.5), np.sin(-2.0)]], 1e-6
    )
    r1, r2, grid = heatmaps.grid_of(np.array([[0.0, 0.0], [2.0, 1.0]]), n=3)
    assert r1 == pytest.approx((-0.1, 2.1)) and r2 == pytest.approx((-0.6, 1.6))  # square cells, 10% margin
    assert grid[:3, 1].tolist() == [r2[0]] * 3 and grid[1, 0] == pytest.approx(1.0)  # x1 fastest, lowest x2 first
    q = np.asarray(heatmaps.quantise(np.array([-1.0, 0.0, 0.5, 1.0, 3.0]), -1.0, 1.0))
    assert q.tolist() == [0, 128, 191, 255, 255] and q.dtype == np.uint8
    assert np.asarray(heatmaps.quantise(np.array([2.0]), 2.0, 2.0)).tolist() == [0]


# --------------------------------------------------------------------------- the API
def test_binds_localhost_only_and_serves_options(app):
    srv, url = app
    assert srv.server_address[0] == "127.0.0.1" and url.startswith("http://127.0.0.1:")
    status, options = call(url, "GET", "/api/options")
    assert status == 200 and options["optimizers"] == ["sgd", "momentum", "nesterov", "adam"]
    assert options["datasets"] == list(datasets.BUILTIN) and options["defaults"] == config.DEFAULTS
    status, page = call(url, "GET", "/")
    assert status == 200 and b"<" in page


def test_create_gives_a_full_config_and_an_update(tiny):
    _, _, created = tiny
    assert created["config"] == config.normalise(TINY)
    u = created["update"]
    assert u["epoch"] == 0 and u["updates"] == 1 and u["history_reset"] and u["history"]["epoch"] == [0]
    assert u["points"] is not None and len(u["points"]["train"]) == 25 and len(u["points"]["test"]) == 25
    assert u["output"]["kind"] == "binary" and u["metric_name"] == "accuracy"
    assert u["compiles"] >= 0 and (u["compile_s"] is None or u["compile_s"] > 0)
    assert [len(layer["units"]) for layer in u["layers"]] == [2, 3]
    assert u["grid"]["n"] == heatmaps.GRID and len(unpack(u["output"]["data"])) == heatmaps.GRID**2


def test_step_adds_one_epoch_and_values_match_the_params(app, tiny):
    url, sid, _ = tiny
    before = call(url, "GET", f"/api/sessions/{sid}/status")[1]
    status, answer = call(url, "POST", f"/api/sessions/{sid}/action", {"action": "step"})
    u = answer["update"]
    assert status == 200 and u["epoch"] == before["epoch"] + 1 and u["history"]["epoch"][-1] == u["epoch"]
    s = session_of(app, sid)
    params = jax.device_get(s.state.params)
    for w, p in zip(u["weights"], params):
        np.testing.assert_array_equal(np.asarray(w, np.float32), p.w)
    assert [unit["bias"] for unit in u["layers"][1]["units"]] == pytest.approx(params[0].b.tolist())
    # the output heatmap is fnn.predict on the grid, within one step of 1/255
    n, (a1, b1), (a2, b2) = u["grid"]["n"], u["grid"]["x1"], u["grid"]["x2"]
    g1, g2 = np.meshgrid(np.linspace(a1, b1, n), np.linspace(a2, b2, n))
    plane = np.stack([g1.ravel(), g2.ravel()], axis=1)
    p = np.asarray(fnn.predict(s.model, params, heatmaps.feature_matrix(plane, ["x1", "x2"])))[:, 0]
    assert np.abs(unpack(u["output"]["data"]) / 255 - p).max() <= 1 / 255 + 1e-6
    # a hidden unit's heatmap is its activation on the grid, on its own [lo, hi]
    hidden = np.tanh(plane @ params[0].w + params[0].b)
    unit = u["layers"][1]["units"][1]
    assert unit["lo"] == pytest.approx(hidden[:, 1].min(), abs=1e-5)
    value = unit["lo"] + unpack(unit["data"]) / 255 * (unit["hi"] - unit["lo"])
    assert np.abs(value - hidden[:, 1]).max() <= (unit["hi"] - unit["lo"]) / 255 + 1e-5


def test_a_new_learning_rate_compiles_nothing_and_continues(app, tiny):
    url, sid, _ = tiny
    call(url, "POST", f"/api/sessions/{sid}/action", {"action": "step"})
    before = call(url, "GET", f"/api/sessions/{sid}/status")[1]
    status, answer = call(url, "POST", f"/api/sessions/{sid}/config", {"config": {"learning_rate": 0.5, "l2": 0.01}})
    assert status == 200 and not answer["recompiled"] and not answer["reset"]
    assert answer["update"]["epoch"] == before["epoch"] and answer["update"]["compiles"] == before["compiles"]
    s = session_of(app, sid)
    numbers = fnn.optim.hyperparameters(s.state.opt_state)
    assert float(numbers["learning_rate"]) == pytest.approx(0.5) and float(numbers["rate"]) == pytest.approx(0.02)
    u = call(url, "POST", f"/api/sessions/{sid}/action", {"action": "step"})[1]["update"]
    assert u["epoch"] == before["epoch"] + 1 and u["compiles"] == before["compiles"]
    assert s.segments[-1] == [1, s.numbers] and s.segments[-1][1]["learning_rate"] == 0.5
    assert sum(epochs for epochs, _ in s.segments) == u["epoch"]  # the log the export replays


def test_reset_gives_the_same_start(tiny):
    url, sid, _ = tiny
    first = call(url, "POST", f"/api/sessions/{sid}/action", {"action": "reset"})[1]["update"]
    again = call(url, "POST", f"/api/sessions/{sid}/action", {"action": "reset"})[1]["update"]
    assert first["epoch"] == again["epoch"] == 0 and first["history_reset"]
    assert first["loss"] == again["loss"] and first["weights"] == again["weights"]
    one = call(url, "POST", f"/api/sessions/{sid}/action", {"action": "step"})[1]["update"]
    call(url, "POST", f"/api/sessions/{sid}/action", {"action": "reset"})
    two = call(url, "POST", f"/api/sessions/{sid}/action", {"action": "step"})[1]["update"]
    assert one["loss"] == two["loss"] and one["val_loss"] == two["val_loss"]


def test_two_sessions_are_independent(app, tiny):
    url, sid, _ = tiny
    other = call(url, "POST", "/api/sessions", {"config": {**TINY, "seed": 9}})[1]
    assert other["update"]["compiles"] == 0  # the structure was compiled for the first session
    mine = call(url, "GET", f"/api/sessions/{sid}/status")[1]
    for _ in range(2):
        call(url, "POST", f"/api/sessions/{other['id']}/action", {"action": "step"})
    assert call(url, "GET", f"/api/sessions/{sid}/status")[1] == mine
    theirs = call(url, "GET", f"/api/sessions/{other['id']}/status")[1]
    assert theirs["epoch"] == 2 and theirs["loss"] != mine["loss"]
    assert call(url, "DELETE", f"/api/sessions/{other['id']}")[0] == 200
    assert call(url, "GET", f"/api/sessions/{other['id']}/status")[0] == 404


def test_play_streams_updates_then_pause(tiny):
    url, sid, _ = tiny
    events = []
    stream = urllib.request.urlopen(url + f"api/sessions/{sid}/events", timeout=30)

    def read():
        for line in stream:
            if line.startswith(b"data: "):
                events.append(json.loads(line[6:]))
                if len(events) >= 6:
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    start = call(url, "GET", f"/api/sessions/{sid}/status")[1]
    call(url, "POST", f"/api/sessions/{sid}/action", {"action": "play"})
    reader.join(20)
    changed = call(url, "POST", f"/api/sessions/{sid}/config", {"config": {"learning_rate": 0.2}})[1]
    assert changed["update"]["playing"] and not changed["recompiled"] and not changed["reset"]  # plays on
    paused = call(url, "POST", f"/api/sessions/{sid}/action", {"action": "pause"})[1]["update"]
    stream.close()
    assert len(events) == 6 and not paused["playing"] and paused["epoch"] > start["epoch"]
    assert events[0]["history_reset"] and events[0]["points"] is not None  # a new stream: the whole run
    assert events[0]["history"]["epoch"][0] == 0
    epochs = [e for ev in events for e in ev["history"]["epoch"]]
    assert epochs == list(range(epochs[0], epochs[0] + len(epochs)))  # every point once, none skipped
    assert [ev["updates"] for ev in events] == sorted({ev["updates"] for ev in events})
    time.sleep(0.05)
    assert call(url, "GET", f"/api/sessions/{sid}/status")[1]["epoch"] == paused["epoch"]  # stopped


def test_dead_units_and_idle_sessions(app, tiny):
    srv, url = app
    s = session_of(app, tiny[1])
    first = jax.device_get(s.state.params[0])
    w = np.array(first.w)
    w[:, 0] = 0.0  # unit 0 sees nothing
    params = (first._replace(w=w), *s.state.params[1:])
    layers, _ = heatmaps.pictures(s.model, "binary", params, s.grid_inputs, s.x_train)
    assert [u["dead"] for u in layers[1]["units"]] == [True, False, False]
    assert layers[1]["units"][0]["lo"] == layers[1]["units"][0]["hi"]  # constant on the grid too
    sid = call(url, "POST", "/api/sessions", {"config": TINY})[1]["id"]
    assert srv.drop_idle() == []
    srv.sessions[sid].last_seen -= server.IDLE_SECONDS - 5
    assert srv.drop_idle() == []
    srv.sessions[sid].last_seen -= 10  # now idle for longer than IDLE_SECONDS; the other sessions are not
    assert srv.drop_idle() == [sid]
    assert call(url, "GET", f"/api/sessions/{sid}/status")[0] == 404


def test_a_slow_stream_gets_the_points_it_skipped(app, tiny):
    url, sid, _ = tiny
    s = session_of(app, sid)
    event, sent = server._event(s, None)  # a new stream: the whole run so far, and the data
    assert event["history_reset"] and event["points"] is not None and event["history"]["epoch"][0] == 0
    assert event["history"]["epoch"][-1] == event["epoch"]
    assert server._event(s, sent) == (None, sent)  # nothing new: a ping
    for _ in range(3):
        call(url, "POST", f"/api/sessions/{sid}/action", {"action": "step"})
    late, _ = server._event(s, sent)  # two updates skipped: their points come with the third
    assert late["history"]["epoch"] == [event["epoch"] + 1, event["epoch"] + 2, event["epoch"] + 3]
    assert late["points"] is None and not late["history_reset"]
    call(url, "POST", f"/api/sessions/{sid}/action", {"action": "reset"})
    after, _ = server._event(s, sent)
    assert after["history_reset"] and after["history"]["epoch"] == [0]


def test_command_line_help(capsys):
    from fnn.playground import __main__

    with pytest.raises(SystemExit):
        __main__.main(["--help"])
    assert "--no-browser" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        __main__.main(["--no-browser", "--data", "/nonexistent/data.csv"])
    err = capsys.readouterr().err
    assert "error: " in err and "/nonexistent/data.csv" in err  # a message, not a traceback


def test_exports(app, tiny):
    url, sid, _ = tiny
    status, script = call(url, "GET", f"/api/sessions/{sid}/export.py")
    assert status == 200 and b'print(f"final loss: {loss!r}")' in script
    compile(script, "playground_run.py", "exec")
    status, blob = call(url, "GET", f"/api/sessions/{sid}/export.safetensors")
    assert status == 200
    s = session_of(app, sid)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "run.safetensors")
        with open(path, "wb") as f:
            f.write(blob)
        loaded = fnn.load(path, like=s.state)
    assert jax.tree.structure(loaded) == jax.tree.structure(s.state)
    for a, b in zip(jax.tree.leaves(loaded._replace(key=None)), jax.tree.leaves(s.state._replace(key=None))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(jax.random.key_data(loaded.key), jax.random.key_data(s.state.key))


def test_csv_upload_trains_on_it(app, tiny):
    url, first, _ = tiny
    call(url, "POST", f"/api/sessions/{first}/action", {"action": "step"})  # TINY's run compiled (run alone)
    sid = call(url, "POST", "/api/sessions", {"config": TINY})[1]["id"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 2))
    status, answer = call(
        url, "POST", f"/api/sessions/{sid}/data", csv_text([[*r, int(r[0] > 0)] for r in x]), "text/csv"
    )
    assert status == 200 and answer["config"]["dataset"] == "csv" and answer["update"]["epoch"] == 0
    assert answer["update"]["points"] is not None and len(answer["update"]["points"]["train"]) == 25
    u = call(url, "POST", f"/api/sessions/{sid}/action", {"action": "step"})[1]["update"]
    assert u["epoch"] == 1 and u["compiles"] == 0  # the same shapes as TINY's: nothing new to compile
    script = call(url, "GET", f"/api/sessions/{sid}/export.py")[1].decode()
    namespace: dict = {}
    exec(script.split("\n\ndef inputs")[0], namespace)  # the data part of the script: the CSV, embedded
    np.testing.assert_array_equal(namespace["data"].x_train, session_of(app, sid).data.x_train)
    np.testing.assert_array_equal(namespace["data"].y_test, session_of(app, sid).data.y_test)
    call(url, "DELETE", f"/api/sessions/{sid}")


@pytest.mark.parametrize("case", sorted(BAD_CSV))
def test_bad_csv_upload_is_a_400_and_the_server_keeps_serving(tiny, case):
    url, sid, _ = tiny
    before = call(url, "GET", f"/api/sessions/{sid}/status")[1]
    status, answer = call(url, "POST", f"/api/sessions/{sid}/data", BAD_CSV[case][0], "text/csv")
    assert status == 400 and re.search(BAD_CSV[case][1], answer["error"])
    assert call(url, "GET", f"/api/sessions/{sid}/status") == (200, before)  # nothing changed


@pytest.mark.parametrize(
    ("method", "path", "body", "code", "message"),
    [
        ("POST", "/api/sessions", {"config": {"learning_rate": 50}}, 400, "learning_rate = 50 is out of range"),
        ("POST", "/api/sessions", {"config": {"layers": [40]}}, 400, r"layers\[0\] = 40"),
        ("POST", "/api/sessions", {"config": {"dataset": "csv"}}, 400, "needs a CSV file"),
        ("POST", "/api/sessions", "{not json", 400, "not JSON"),
        ("POST", "/api/sessions", [1, 2], 400, "must be a JSON object"),
        ("POST", "/api/sessions/SID/config", {"config": {"classes": 11}}, 400, "classes = 11 is out of range"),
        ("POST", "/api/sessions/SID/config", {"config": {"seed": -1}}, 400, "seed = -1 is out of range"),
        ("POST", "/api/sessions/SID/action", {"action": "jump"}, 400, "unknown action 'jump'"),
        ("GET", "/api/sessions/nope/status", None, 404, "unknown session 'nope'"),
        ("GET", "/api/nothing", None, 404, "no endpoint"),
        ("GET", "/static/..%2Fserver.py", None, 404, "no file"),
        ("GET", "/etc/passwd", None, 404, "no page"),
    ],
)
def test_bad_requests_get_a_message_and_a_good_one_still_works(tiny, method, path, body, code, message):
    url, sid, _ = tiny
    status, answer = call(url, method, path.replace("SID", sid), body)
    assert status == code and re.search(message, answer["error"]), answer
    assert call(url, "GET", f"/api/sessions/{sid}/status")[0] == 200


def test_data_from_the_command_line(tmp_path):
    path = tmp_path / "data.csv"
    rng = np.random.default_rng(1)
    path.write_text(csv_text([[*r, int(r[1] > 0)] for r in rng.standard_normal((50, 2))]))
    srv, _, url = server.start(port=0, data=str(path))
    try:
        created = call(url, "POST", "/api/sessions", {"config": TINY})[1]
        assert created["config"]["dataset"] == "csv" and created["config"]["problem"] == "classification"
    finally:
        srv.shutdown()
        srv.server_close()
    path.write_text("1,2\n3,x\n")
    with pytest.raises(FnnValueError, match="row 2, column 2"):
        server.Server(0, data=str(path))


# --------------------------------------------------------------------------- slow: other structures, processes
def _serve_in_a_process():
    """python -m fnn.playground in a fresh process: (process, url)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    for k in ("JAX_ENABLE_X64", "JAX_DISABLE_MOST_OPTIMIZATIONS"):
        env.pop(k, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fnn.playground", "--no-browser", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+/", line)
    assert match, line + proc.stderr.read() if proc.poll() is not None else line
    return proc, match.group(0), env


def _run_script(text: str, env) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "run.py")
        with open(path, "w") as f:
            f.write(text)
        done = subprocess.run([sys.executable, path], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
@pytest.mark.parametrize("data", ["circles-momentum", "csv-adam"])
def test_exported_script_reproduces_the_loss_bit_for_bit(data):
    proc, url, env = _serve_in_a_process()
    try:
        if data == "csv-adam":
            cfg = {"optimizer": "adam", "learning_rate": 0.01, "layers": [5, 4], "batch_size": 16}
            sid = call(url, "POST", "/api/sessions", {"config": cfg})[1]["id"]
            rng = np.random.default_rng(2)
            x = rng.standard_normal((120, 3))
            rows = [[*r, int(r[0] + r[2] > 0) + int(r[1] > 1)] for r in x]  # 3 classes, 3 features
            assert call(url, "POST", f"/api/sessions/{sid}/data", csv_text(rows), "text/csv")[0] == 200
        else:
            cfg = {"optimizer": "momentum", "features": ["x1", "x2", "x1*x2", "sin(x1)"], "n_points": 300}
            sid = call(url, "POST", "/api/sessions", {"config": cfg})[1]["id"]
        for numbers in ({}, {"learning_rate": 0.1}, {"l2": 0.003, "momentum": 0.5}):
            if numbers:
                assert call(url, "POST", f"/api/sessions/{sid}/config", {"config": numbers})[1]["recompiled"] is False
            for _ in range(3):
                call(url, "POST", f"/api/sessions/{sid}/action", {"action": "step"})
        call(url, "POST", f"/api/sessions/{sid}/action", {"action": "play"})
        time.sleep(1.0)
        call(url, "POST", f"/api/sessions/{sid}/action", {"action": "pause"})
        status = call(url, "GET", f"/api/sessions/{sid}/status")[1]
        script = call(url, "GET", f"/api/sessions/{sid}/export.py")[1].decode()
    finally:
        proc.terminate()
        proc.wait(30)
    assert status["epoch"] > 9
    assert _run_script(script, env) == f"final loss: {status['loss']!r}"


@pytest.mark.slow
def test_import_fnn_leaves_the_playground_out():
    code = "import sys, fnn; assert not [m for m in sys.modules if m.startswith('fnn.playground')]; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


@pytest.mark.slow
def test_structures_compile_once_and_kinds_of_problem(app):
    url = app[1]
    sid = call(url, "POST", "/api/sessions", {"config": {**TINY, "dataset": "spiral", "classes": 3}})[1]["id"]
    u = call(url, "POST", f"/api/sessions/{sid}/action", {"action": "step"})[1]["update"]
    assert u["output"]["kind"] == "classes" and u["output"]["classes"] == 3 and "confidence" in u["output"]
    assert set(unpack(u["output"]["data"]).tolist()) <= {0, 1, 2}
    answer = call(url, "POST", f"/api/sessions/{sid}/config", {"config": {"layers": [3, 2]}})[1]
    assert answer["recompiled"] and answer["reset"] and answer["update"]["epoch"] == 0
    compiled = answer["update"]["compiles"]
    call(url, "POST", f"/api/sessions/{sid}/action", {"action": "step"})
    call(url, "POST", f"/api/sessions/{sid}/config", {"config": {"layers": [3]}})  # seen before
    back = call(url, "POST", f"/api/sessions/{sid}/action", {"action": "step"})[1]["update"]
    again = call(url, "POST", f"/api/sessions/{sid}/config", {"config": {"layers": [3, 2]}})[1]
    assert again["reset"] and not again["recompiled"] and back["epoch"] == 1
    assert again["update"]["compiles"] > compiled  # the step of [3, 2] compiled its run; then nothing
    plane = call(url, "POST", f"/api/sessions/{sid}/config", {"config": {"dataset": "plane"}})[1]
    u = call(url, "POST", f"/api/sessions/{sid}/action", {"action": "step"})[1]["update"]
    assert plane["config"]["problem"] == "regression" and u["output"]["kind"] == "regression"
    assert u["metric_name"] == "mae" and u["metric"] is not None


@pytest.mark.slow
def test_three_class_csv_upload_learns(app):
    _, url = app
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 2))
    rows = [[*r, 0 if r[0] < -0.4 else (1 if r[0] < 0.4 else 2)] for r in x]
    sid = call(url, "POST", "/api/sessions", {"config": {"layers": [6], "learning_rate": 0.1}})[1]["id"]
    first = call(url, "POST", f"/api/sessions/{sid}/data", csv_text(rows), "text/csv")[1]["update"]
    assert first["output"]["kind"] == "classes" and first["output"]["classes"] == 3
    call(url, "POST", f"/api/sessions/{sid}/config", {"config": {"epochs_per_update": 30}})
    u = call(url, "POST", f"/api/sessions/{sid}/action", {"action": "step"})[1]["update"]
    for _ in range(20):
        u = call(url, "POST", f"/api/sessions/{sid}/action", {"action": "step"})[1]["update"]
    assert u["loss"] < 0.5 * first["loss"] and u["val_metric"] > 0.8


@pytest.mark.slow
def test_two_sessions_play_at_once(app):
    _, url = app
    ids = [call(url, "POST", "/api/sessions", {"config": {**TINY, "seed": s}})[1]["id"] for s in (1, 2)]
    call(url, "POST", f"/api/sessions/{ids[0]}/action", {"action": "step"})  # the run's compile, not while playing
    call(url, "POST", f"/api/sessions/{ids[0]}/action", {"action": "reset"})
    for sid in ids:
        call(url, "POST", f"/api/sessions/{sid}/action", {"action": "play"})
    time.sleep(1.0)
    for sid in ids:
        call(url, "POST", f"/api/sessions/{sid}/action", {"action": "pause"})
    a, b = (call(url, "GET", f"/api/sessions/{sid}/status")[1] for sid in ids)
    assert a["epoch"] > 3 and b["epoch"] > 3 and a["loss"] != b["loss"]
    assert not a["playing"] and not b["playing"]


def test_export_script_names_every_number():
    assert "rate=2 * numbers['l2']" in export._numbers_code("sgd")
    assert "b1=numbers['momentum']" in export._numbers_code("adam")
