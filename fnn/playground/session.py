"""One playground run (one browser tab): data, network and training state, on fnn's public core.

    session = Session({"dataset": "spiral", "classes": 3})   # compiles the structure (once per process)
    update = session.action("step")                          # one more epoch: an Update (a dict)
    session.configure({"learning_rate": 0.1})                # a number: the next epoch, no compile

A run is fnn.Trainer(model, optimizer=chain(add_weight_decay(2·l2), kind(lr, …)), batch_size=…)
over trainer.init(params, key=seed); `trainer.run(state, data, epochs=k)` trains, and
fnn.optim.set_hyperparameters puts new numbers into the state between runs. The log of segments
[(epochs, numbers)] is what fnn.playground.export replays.
"""

from __future__ import annotations

import contextlib
import threading
import time

import jax
import numpy as np

import fnn
from fnn import optim
from fnn.errors import FnnValueError
from fnn.playground import config as cfg
from fnn.playground import datasets, heatmaps

__all__ = ["Session", "build_model", "build_optimizer", "hyper_numbers"]

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # jax.monitoring's event for one XLA compile
_local = threading.local()


def _listen(event: str, duration_secs: float, **kwargs) -> None:
    session = getattr(_local, "session", None)
    if event == COMPILE_EVENT and session is not None:
        session.compiles += 1
        session.compile_s = (session.compile_s if session.compiled_now else 0.0) + duration_secs
        session.compiled_now = True


jax.monitoring.register_event_duration_secs_listener(_listen)


def build_model(layers, activation: str, initializer: str, outputs: int, output_activation: str) -> fnn.Sequential:
    """The network: hidden Dense layers of `layers` units, then `outputs` units of `output_activation`."""
    init = None if initializer == "default" else initializer
    hidden = [fnn.Dense(u, activation=activation, kernel_init=init) for u in layers]
    return fnn.Sequential([*hidden, fnn.Dense(outputs, activation=output_activation, kernel_init=init)])


def build_optimizer(kind: str, learning_rate: float, momentum: float, l2: float) -> optim.Optimizer:
    """chain(add_weight_decay(2·l2), kind): L2 is always in the chain, so changing it is a number.
    momentum is adam's b1; sgd has none."""
    base = {
        "sgd": lambda: optim.sgd(learning_rate),
        "momentum": lambda: optim.momentum(learning_rate, momentum),
        "nesterov": lambda: optim.nesterov(learning_rate, momentum),
        "adam": lambda: optim.adam(learning_rate, b1=momentum),
    }[kind]()
    return optim.chain(optim.add_weight_decay(2 * l2), base)


def hyper_numbers(kind: str, learning_rate: float, momentum: float, l2: float) -> dict:
    """The set_hyperparameters arguments for these numbers in build_optimizer's chain."""
    numbers = {"learning_rate": learning_rate, "rate": 2 * l2}
    if kind in ("momentum", "nesterov"):
        numbers["momentum"] = momentum
    elif kind == "adam":
        numbers["b1"] = momentum
    return numbers


def output_of(problem: str, classes: int) -> tuple[int, str, str]:
    """(output units, output activation, heatmap kind): fnn pairs the loss with the output layer."""
    if problem == "regression":
        return 1, "linear", "regression"
    if classes == 2:
        return 1, "sigmoid", "binary"
    return classes, "softmax", "classes"


class Session:
    """A run: its Config, data, Trainer and TrainState, history and segment log. Thread-safe: every
    public method takes the session's lock."""

    def __init__(self, config: dict | None = None, csv_text: str | None = None):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.compiles, self.updates = 0, 0
        self.compile_s: float | None = None
        self.compiled_now = False
        self.data_version, self.generation = 0, 0
        self.playing, self._thread = False, None
        self.last_seen = time.monotonic()
        self.csv_text = csv_text
        self.latest: dict = {}
        self.latest_meta: tuple = (0, 0, 0)
        self.error: str | None = None
        self.closed = False
        self.streams = 0  # open event streams (a session with one is never idle)
        self.config = cfg.normalise(config)
        if self.config["dataset"] == "csv" and csv_text is None:
            raise FnnValueError('dataset "csv" needs a CSV file: upload one (POST .../data), or choose a built-in set')
        with self.counting():
            self._load_data()
            self._build()
            self.publish()

    # ------------------------------------------------------------------ building
    def _load_data(self) -> None:
        c = self.config
        if c["dataset"] == "csv":
            assert self.csv_text is not None
            self.data = datasets.parse_csv(self.csv_text, c["train_fraction"], c["seed"])
            c["problem"] = self.data.problem
        else:
            self.data = datasets.load(
                c["dataset"], c["n_points"], c["noise"], c["classes"], c["seed"], c["train_fraction"]
            )
        self.data_version += 1
        self._points_sent = False

    def inputs_of(self, x: np.ndarray) -> np.ndarray:
        """The network's inputs for data rows x: the chosen features of the plane, or a CSV's columns."""
        if self.data.basis is not None:
            return np.asarray(x, np.float32)
        return heatmaps.feature_matrix(x, self.config["features"])

    def _build(self) -> None:
        """Model, trainer and a fresh state for the current config and data (a new structure compiles)."""
        c, d = self.config, self.data
        units, out_act, self.kind = output_of(d.problem, d.classes)
        self.model = build_model(c["layers"], c["activation"], c["initializer"], units, out_act)
        self.trainer = fnn.Trainer(
            self.model,
            optimizer=build_optimizer(c["optimizer"], c["learning_rate"], c["momentum"], c["l2"]),
            batch_size=c["batch_size"],
            metrics=["mae"] if d.problem == "regression" else (),
        )
        self.x_train, self.x_test = self.inputs_of(d.x_train), self.inputs_of(d.x_test)
        self.y_train = d.y_train if d.problem == "classification" else d.y_train.reshape(-1, 1)
        self.y_test = d.y_test if d.problem == "classification" else d.y_test.reshape(-1, 1)
        points = np.concatenate([d.plane_train, d.plane_test])
        self.x1_range, self.x2_range, grid = heatmaps.grid_of(points)
        self.grid_inputs = d.features_of(grid) if d.basis is not None else heatmaps.feature_matrix(grid, c["features"])
        labels = np.concatenate([d.y_train, d.y_test]).astype(np.float64)
        self.out_range = (0.0, 1.0) if d.problem == "classification" else (float(labels.min()), float(labels.max()))
        self.reset()

    def reset(self) -> None:
        """Fresh params from the seed (the same seed, the same start) and an empty history."""
        c = self.config
        params = self.model.init(jax.random.key(c["seed"]), input_dim=self.x_train.shape[1])
        self.params0 = params
        self.state = self.trainer.init(params, key=c["seed"])
        self.numbers = dict(learning_rate=c["learning_rate"], momentum=c["momentum"], l2=c["l2"])
        self.segments: list[list] = [[0, dict(self.numbers)]]
        self.set_numbers(self.numbers)  # as the exported script does before each segment: the same values
        self.train_data = self._counted(
            lambda: self.trainer.data(
                self.state, self.x_train, self.y_train, validation_data=(self.x_test, self.y_test)
            )
        )
        self.history: dict[str, list] = {"epoch": [], "loss": [], "val_loss": [], "metric": [], "val_metric": []}
        self.generation += 1
        self._sent = 0  # history points already in an update
        self.metric_name = "mae" if self.data.problem == "regression" else "accuracy"
        self._start_figures()

    def _start_figures(self) -> None:
        """Epoch 0's figures, by fnn.evaluate of the initial params (the exported script does the same)."""
        p = self.state.params
        train = self._counted(lambda: fnn.evaluate(self.model, p, self.x_train, self.y_train))
        test = self._counted(lambda: fnn.evaluate(self.model, p, self.x_test, self.y_test))
        metric = "accuracy" if self.metric_name == "accuracy" else None
        self.history["epoch"].append(0)
        self.history["loss"].append(train["loss"])
        self.history["val_loss"].append(test["loss"])
        self.history["metric"].append(train.get(metric) if metric else None)
        self.history["val_metric"].append(test.get(metric) if metric else None)

    @contextlib.contextmanager
    def counting(self):
        """Count the XLA compiles on this thread (jax.monitoring's events) as this session's;
        compile_s becomes the block's compile time if it compiled anything."""
        if getattr(_local, "session", None) is not None:  # nested: the outer block counts
            yield
            return
        _local.session, self.compiled_now = self, False
        try:
            yield
        finally:
            _local.session = None

    def _counted(self, fn):
        with self.counting():
            return fn()

    # ------------------------------------------------------------------ training
    def _train(self, epochs: int) -> None:
        if epochs:
            state, history = self._counted(lambda: self.trainer.run(self.state, self.train_data, epochs=epochs))
            self.state = state
            self.segments[-1][0] += epochs
            first = int(self.state.epoch) - len(history["loss"]) + 1
            self.history["epoch"].extend(range(first, first + len(history["loss"])))
            self.history["loss"].extend(history["loss"])
            self.history["val_loss"].extend(history["val_loss"])
            key = "mae" if self.metric_name == "mae" else "accuracy"
            self.history["metric"].extend(history[key])
            self.history["val_metric"].extend(history["val_" + key])

    def set_numbers(self, numbers: dict) -> None:
        """New learning rate / momentum / l2: put into the optimizer state, logged as a new segment."""
        self.numbers.update(numbers)
        kind = self.config["optimizer"]
        opt_state = optim.set_hyperparameters(self.state.opt_state, **hyper_numbers(kind, **self.numbers))
        self.state = self.state._replace(opt_state=opt_state)
        if self.segments[-1][0] == 0:
            self.segments[-1][1] = dict(self.numbers)
        else:
            self.segments.append([0, dict(self.numbers)])

    # ------------------------------------------------------------------ the page's requests
    def configure(self, given: dict) -> dict:
        """Apply a partial Config: numbers go into the state; data and structure start a new run.
        -> {"config", "update", "recompiled", "reset"}."""
        with self.lock, self.counting():
            new = cfg.normalise(given, self.config)
            if new["dataset"] == "csv" and self.csv_text is None:
                raise FnnValueError('dataset "csv" needs a CSV file: upload one first (POST .../data)')
            if new["dataset"] == "csv":
                new["problem"] = self.config["problem"]  # the CSV's labels say, not the request
            changed = {k for k in new if new[k] != self.config[k]}
            before = self.compiles
            reset = bool(changed & (cfg.DATA | cfg.STRUCTURE))
            # playing goes on: the training thread takes the lock for each update, so it continues
            # with the new numbers, or the new run, at its next epoch
            if reset:
                old = self.config
                self.config = new
                try:
                    if changed & cfg.DATA:
                        self._load_data()
                    self._build()
                except Exception:
                    self.config = old
                    self._load_data()
                    self._build()
                    raise
            else:
                self.config = new
                if changed & cfg.NUMBERS:
                    self.set_numbers({k: new[k] for k in cfg.NUMBERS})
            return {
                "config": dict(self.config),
                "update": self.publish(),
                "recompiled": self.compiles > before,
                "reset": reset,
            }

    def upload(self, text: str) -> dict:
        """A CSV file becomes the data set ("csv"); refused (400) before anything changes if it is bad."""
        with self.lock, self.counting():
            parsed = datasets.parse_csv(text, self.config["train_fraction"], self.config["seed"])
            self.csv_text = text
            self.config["dataset"] = "csv"
            self.config["problem"] = parsed.problem
            self._load_data()
            self._build()
            return {"config": dict(self.config), "update": self.publish()}

    def action(self, name: str) -> dict:
        """play, pause, step (exactly one epoch, pausing first) or reset -> the Update."""
        with self.lock, self.counting():
            if name == "play":
                self._play()
            elif name == "pause":
                self._pause()
            elif name == "step":
                self._pause()
                self._train(1)
            elif name == "reset":
                self._pause()
                self.reset()
            else:
                raise FnnValueError(f"unknown action {name!r}; choose one of ['play', 'pause', 'step', 'reset']")
            return self.publish()

    def status(self) -> dict:
        """{"epoch", "loss", "val_loss", "compiles", "updates", "playing"} of the latest Update."""
        with self.lock:
            return {k: self.latest.get(k) for k in ("epoch", "loss", "val_loss", "compiles", "updates", "playing")}

    # ------------------------------------------------------------------ playing
    def _play(self) -> None:
        if self.playing:
            return
        self.playing = True
        self._thread = threading.Thread(target=self._loop, name="fnn-playground-train", daemon=True)
        self._thread.start()

    def _pause(self) -> None:
        """Stop playing. The caller holds the lock, so the training thread is between updates: it
        sees that it is no longer the session's and ends, training nothing more."""
        self.playing = False
        self._thread = None

    def _loop(self) -> None:
        me = threading.current_thread()
        while True:
            with self.lock, self.counting():
                if not self.playing or self._thread is not me:
                    return
                try:
                    self._train(self.config["epochs_per_update"])
                    self.publish()
                except Exception as e:  # shown on the page; the server keeps serving
                    self.playing = False
                    self.error = f"training stopped: {e}"
                    self.publish()
                    return
            time.sleep(0.001)  # the requests waiting on the lock get it (a lock is not a queue)

    def close(self) -> None:
        """Stop playing and end the event streams (the session was dropped)."""
        with self.lock:
            self._pause()
            self.closed = True
            self.changed.notify_all()

    # ------------------------------------------------------------------ updates
    def update(self) -> dict:
        """The next Update (see API.md): the history points since the previous one, the pictures."""
        with self.lock:
            h, start = self.history, self._sent
            new_points = {k: h[k][start:] for k in ("epoch", "loss", "val_loss")}
            history_reset = start == 0
            self._sent = len(h["epoch"])
            layers, output = heatmaps.pictures(
                self.model, self.kind, self.state.params, self.grid_inputs, self.x_train, self.out_range
            )
            output["classes"] = max(self.data.classes, 1)
            self.updates += 1
            points = None
            if not self._points_sent:
                points = self.points()
                self._points_sent = True
            update = {
                "epoch": h["epoch"][-1],
                "loss": h["loss"][-1],
                "val_loss": h["val_loss"][-1],
                "metric": h["metric"][-1],
                "val_metric": h["val_metric"][-1],
                "metric_name": self.metric_name,
                "compiles": self.compiles,
                "updates": self.updates,
                "playing": self.playing,
                "compile_s": self.compile_s,
                "history": new_points,
                "history_reset": history_reset,
                "data_version": self.data_version,
                "points": points,
                "grid": {"n": heatmaps.GRID, "x1": list(self.x1_range), "x2": list(self.x2_range)},
                "output": output,
                "layers": layers,
                "weights": [np.asarray(p.w).tolist() for p in self.state.params],
                "error": self.error,
            }
            self.error = None
            self.latest_meta = (self.generation, start, self._sent)
            return update

    def points(self) -> dict:
        """The data as drawn: {"train": [[x1, x2, label], ...], "test": [...]}."""
        d = self.data

        def rows(plane, y):
            return np.concatenate([plane.astype(np.float64), y.reshape(-1, 1).astype(np.float64)], axis=1).tolist()

        return {"train": rows(d.plane_train, d.y_train), "test": rows(d.plane_test, d.y_test)}

    def history_since(self, generation: int, start: int) -> tuple[dict, bool]:
        """The history points from index `start` of run `generation` on (all of them, with True for
        history_reset, after a reset): what an event stream that skipped updates still owes."""
        with self.lock:
            if generation != self.generation:
                start = 0
            return {k: self.history[k][start:] for k in ("epoch", "loss", "val_loss")}, start == 0

    def publish(self) -> dict:
        """Build the next Update, keep it as the latest and wake the event streams."""
        with self.lock:
            self.latest = self.update()
            self.changed.notify_all()
            return self.latest
