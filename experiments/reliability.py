"""Reliability, counted: bad inputs, corrupt checkpoints, interrupted saves, reproducibility, mutants.

1. The bad-input battery of tests/_battery.py: every public entry point against every bad input
   that applies to it (NaN/inf, wrong rank, 0 samples or features, wrong widths, mismatched
   lengths, bad labels, string/object/complex dtypes, bad hyperparameters, params of the wrong
   shape, bad callbacks, Trainer settings and TrainStates, bad streams, corrupt files, ...). Each
   must raise the expected fnn error, with a message naming the argument, before anything is
   traced; counted are clear errors, raw (non-fnn) errors, silent successes, wrong messages and
   errors raised inside a trace (a case waiting for a fix in fnn names it, and is counted as
   known). Then the legitimate corner cases (one sample, one feature, one class, batch_size > n,
   (n,) targets, verbose=True, epochs=10.0, EarlyStopping(patience=0)), which must work.
2. Checkpoint fault injection on a good checkpoint: truncation at every length, every bit
   flipped, random garbage, an empty file, pickles (and an .npy) whose unpickling would create a
   marker file, a header naming a class with a side-effecting constructor or an unimported module;
   interrupted saves (os.replace, fsync or a write failing, KeyboardInterrupt, a hard kill mid-write
   in a subprocess), after which the old checkpoint must load unchanged and no temp file remain.
3. Reproducibility: the small float32 run of tests/_repro.py repeated in this process and in fresh
   subprocesses (JAX's defaults there), and run in pieces (Trainer.run calls continuing one
   TrainState; fit(initial_state=result.state)), compared bit for bit; a different key must differ.
4. With --mutants: deliberately wrong derivatives swapped in (tests/_gradient_checks.py); each
   must be caught by the gradient checks, which must pass on the library itself.

    python experiments/reliability.py --out results/reliability   # about 30 s
    python experiments/reliability.py --mutants                     # and the mutants: about 20 s more
    python experiments/reliability.py --quick                       # fewer faults and runs, no subprocess
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import pathlib
import pickle
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(os.path.dirname(HERE), "tests")
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)  # the battery, the gradient checks and the reproducible run live there

from _common import Summary, output_dir, parser  # noqa: E402

import fnn  # noqa: E402
from fnn import checkpoint  # noqa: E402
from fnn.errors import FnnError  # noqa: E402

import _battery  # noqa: E402
import _repro  # noqa: E402


# --------------------------------------------------------------------------- 1. the battery
def battery() -> dict:
    results = _battery.tally()
    edges = [(e, _battery.run_edge(e)) for e in _battery.EDGE_CASES]
    known = [(c, o) for c, o in results["problems"] if c.xfail]
    return {
        "cases": len(_battery.CASES),
        "entry_points": len(_battery.ENTRY_POINTS),
        "counts": results["counts"],
        "problems": [(c.id, o.status, o.detail, c.xfail) for c, o in results["problems"]],
        "known": len(known),
        "edge_cases": len(edges),
        "edge_ok": sum(o.status == "clear" for _, o in edges),
        "edge_problems": [(e.id, o.detail) for e, o in edges if o.status != "clear"],
    }


# --------------------------------------------------------------------------- 2. checkpoint faults
class _Trap(tuple):
    """A NamedTuple-like class whose constructor leaves a marker: load must never call it."""

    _fields = ("a", "b")
    marker: pathlib.Path | None = None

    def __new__(cls, *args):
        if cls.marker is not None:
            cls.marker.touch()
        return super().__new__(cls, args)


class _Payload:
    """Unpickling this creates the marker file: it proves load never unpickles."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _craft(meta, buffer: bytes = b"") -> bytes:
    """A safetensors file with a valid fnn_sha256: what a forger (not a disk fault) would write. meta: the other
    __metadata__ entries, or the header's bytes after the digest (to forge a malformed header)."""
    import hashlib

    opening = b'{"__metadata__":{"fnn_sha256":"'
    tail = meta if isinstance(meta, bytes) else b"," + json.dumps(meta).encode()[1:] + b"}"
    text = opening + b"0" * 64 + b'"' + tail
    text += b" " * (-len(text) % 8)
    data = len(text).to_bytes(8, "little") + text + buffer
    at = 8 + len(opening)
    return data[:at] + hashlib.sha256(data).hexdigest().encode() + data[at + 64:]


def _forged_tree(tree) -> bytes:
    return _craft({"fnn_format": checkpoint.FORMAT, "fnn_format_version": str(checkpoint.FORMAT_VERSION),
                   "fnn_tree": json.dumps(tree)})


class _Faults:
    def __init__(self, work: pathlib.Path):
        self.work = work
        self.rows = {}  # kind -> [tried, detected, silent, raw]

    def load(self, kind: str, content: bytes, *, expect_error: bool = True, check=None) -> None:
        path = self.work / "fault.ckpt"
        path.unlink(missing_ok=True)  # rewriting in place would make ext4 flush on every truncation
        path.write_bytes(content)
        row = self.rows.setdefault(kind, [0, 0, 0, 0])
        row[0] += 1
        try:
            tree = fnn.load(path)
        except FnnError:
            row[1] += 1
            return
        except Exception:  # noqa: BLE001 - a raw error is what is being counted
            row[3] += 1
            return
        if expect_error:
            row[2] += 1
        elif check is None or check(tree):
            row[1] += 1  # loaded safely, as it should
        else:
            row[2] += 1


def checkpoint_faults(work: pathlib.Path, quick: bool, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    good = _battery.valid_checkpoint()
    n = len(good)
    f = _Faults(work)

    for cut in range(0, n, 9 if quick else 1):
        f.load("truncated", good[:cut])
    positions = [(i, b) for i in range(n) for b in range(8)]
    if quick:
        positions = positions[::61]
    for i, bit in positions:
        f.load("bit flipped", _battery.flip_bit(good, i, bit))
    for _ in range(20 if quick else 300):
        f.load("random garbage", bytes(rng.integers(0, 256, int(rng.integers(1, 3000)), np.uint8)))
        cut = int(rng.integers(8, n))
        f.load("good prefix + garbage", good[:cut] + bytes(rng.integers(0, 256, int(rng.integers(1, 200)), np.uint8)))
    f.load("empty file", b"")
    f.load("extra bytes appended", good + b"\0")

    # code execution attempts: none may run
    marker = work / "executed.marker"
    executions = 0
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        f.load("pickle (would touch a marker)", pickle.dumps(_Payload(marker), protocol=protocol))
        pickled = pickle.dumps(_Payload(marker), protocol=protocol)
        f.load("header length + pickle", len(pickled).to_bytes(8, "little") + pickled)
    buf = io.BytesIO()
    np.save(buf, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    f.load("pickled .npy (would touch a marker)", buf.getvalue())
    executions += marker.exists()

    _Trap.marker = marker
    try:
        tree = {"type": "namedtuple", "name": "_Trap", "module": __name__, "qualname": "_Trap", "keys": ["a", "b"],
                "items": [1, 2]}
        f.load("header naming a class with a side-effecting constructor", _forged_tree(tree), expect_error=False,
               check=lambda t: tuple(t) == (1, 2) and type(t) is not _Trap)
    finally:
        _Trap.marker = None
    executions += marker.exists()
    imported = "this" in sys.modules
    tree = {"type": "namedtuple", "name": "Zen", "module": "this", "qualname": "Zen", "keys": ["a"], "items": [None]}
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        f.load("header naming an unimported module", _forged_tree(tree), expect_error=False,
               check=lambda t: tuple(t) == (None,))
        f.load("header whose node type is an unimported module", _forged_tree({"type": "this", "items": []}))
    executions += ("this" in sys.modules and not imported) or bool(printed.getvalue())
    attempts = sum(row[0] for kind, row in f.rows.items() if "pickle" in kind or kind.startswith("header naming"))
    f.load("header of a newer format version",
           _craft({"fnn_format": checkpoint.FORMAT, "fnn_format_version": "99", "fnn_tree": "null"}))
    f.load("header not JSON", _craft(b',"fnn_format": "fnn-checkpoint",'))
    f.load("header with a bogus tensor entry", _craft(b'}, "w": [1, 2]}'))
    huge = {"type": "array", "kind": "numpy", "dtype": "float32", "shape": [0, 2**62], "tensor": "w"}
    huge = json.dumps(json.dumps(huge))
    f.load("shape [0, 2**62] in a valid header", _craft(
        b',"fnn_format":"fnn-checkpoint","fnn_format_version":"3","fnn_tree":' + huge.encode()
        + b'},"w":{"dtype":"F32","shape":[0,4611686018427387904],"data_offsets":[0,0]}}'))

    interrupted = interrupted_saves(work, quick)
    tried = sum(r[0] for r in f.rows.values())
    return {
        "rows": f.rows,
        "tried": tried,
        "detected": sum(r[1] for r in f.rows.values()),
        "corrupt_loads": sum(r[2] for r in f.rows.values()),
        "raw_errors": sum(r[3] for r in f.rows.values()),
        "code_executions": int(executions), "code_attempts": attempts,
        "file_bytes": n,
        **interrupted,
    }


class _Interrupt(Exception):
    pass


def interrupted_saves(work: pathlib.Path, quick: bool) -> dict:
    """Save B over a good checkpoint A, failing at each point; A must survive intact, no temp file left."""
    import pytest  # MonkeyPatch, used as a plain context manager

    old = {"params": _battery.PARAMS[_battery.BIN], "step": 1}
    new = {"params": _battery.PARAMS[_battery.CAT], "step": 2}
    target = work / "run.ckpt"

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    failures = {
        "os.replace raising OSError": ("os.replace", disk_full),
        "os.replace interrupted (KeyboardInterrupt)": ("os.replace", _raiser(KeyboardInterrupt)),
        "os.fsync raising OSError": ("os.fsync", disk_full),
    }
    for k in (1, 2):  # the header, then the tensors
        failures[f"disk full at write {k}"] = ("write", k)
    rows = []
    for name, (where, how) in failures.items():
        fnn.save(target, old)
        before = target.read_bytes()
        raised = False
        with pytest.MonkeyPatch.context() as mp:
            if where == "write":
                real = os.fdopen
                mp.setattr(checkpoint.os, "fdopen", lambda *a, real=real, k=how, **kw: _FullDisk(real(*a, **kw), k))
            else:
                mp.setattr(where, how)
            try:
                fnn.save(target, new)
            except (FnnError, KeyboardInterrupt):  # an OSError comes as a CheckpointError naming the path
                raised = True
        intact = target.read_bytes() == before and _repro.same(fnn.load(target), old)
        leftovers = [p.name for p in work.iterdir() if p.name.endswith(".tmp")]
        rows.append((name, raised, intact, leftovers))
        for p in work.glob("*.tmp"):
            p.unlink()
    if not quick:
        for k in (1, 2):
            rows.append(_hard_kill(work, k))
    return {
        "saves_interrupted": len(rows),
        "old_file_intact": sum(r[2] for r in rows),
        "temp_files_left": sum(len(r[3]) for r in rows if not r[0].startswith("hard kill")),
        "interrupted_rows": rows,
    }


class _FullDisk:
    """os.fdopen's file, whose k-th write fails as on a full disk."""

    def __init__(self, f, k: int):
        self.f, self.k, self.writes = f, k, 0

    def write(self, data):
        self.writes += 1
        if self.writes == self.k:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def _raiser(exc):
    def f(*args, **kwargs):
        raise exc()

    return f


def _hard_kill(work: pathlib.Path, k: int):
    """A process killed (os._exit) at its k-th write while saving over a good checkpoint."""
    target = work / f"killed-{k}.ckpt"
    old = {"params": _battery.PARAMS[_battery.BIN], "step": 1}
    fnn.save(target, old)
    code = (f"import os, sys, numpy as np; sys.path.insert(0, {TESTS!r}); import fnn\n"
            f"real = os.fdopen\n"
            f"class Killed:\n"
            f"    def __init__(self, f): self.f, self.writes = f, 0\n"
            f"    def __enter__(self): return self\n"
            f"    def __exit__(self, *exc): self.f.close()\n"
            f"    def __getattr__(self, name): return getattr(self.f, name)\n"
            f"    def write(self, d):\n        n = self.f.write(d)\n        self.writes += 1\n"
            f"        if self.writes == {k}:\n            self.f.flush(); os._exit(9)\n        return n\n"
            f"os.fdopen = lambda *a, **kw: Killed(real(*a, **kw))\n"
            f"fnn.save({str(target)!r}, {{'w': np.ones((50, 50), np.float32), 'step': 2}})\n")
    env = {key: v for key, v in os.environ.items() if not key.startswith("JAX_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    killed = done.returncode == 9
    intact = _repro.same(fnn.load(target), old)
    stale = [p.name for p in work.glob(".fnn-*.tmp")]
    for p in work.glob(".fnn-*.tmp"):
        p.unlink()
    # after a hard kill the temp file cannot be cleaned up: the guarantee is the old file intact
    return (f"hard kill at write {k}", killed, intact, stale)


# --------------------------------------------------------------------------- 3. reproducibility
def reproducibility(work: pathlib.Path, runs: int, subprocesses: int) -> dict:
    reference = _repro.run()
    same_in_process = sum(_repro.same(reference, _repro.run()) for _ in range(runs - 1)) + 1
    same_fresh = sum(_repro.same(reference, _repro.in_subprocess(work / f"fresh-{i}.ckpt", x64=False))
                     for i in range(subprocesses))
    # the same run in pieces: Trainer.run calls continuing one TrainState, and fit(initial_state=...)
    pieces = [_repro.run_in_pieces(pieces=(1, 2)), _repro.run_in_pieces(pieces=(2, 1)), _repro.run_resumed(first=1),
              _repro.run_resumed(first=2)]
    other = _repro.run(fit_seed=8)
    return {
        "in_process_runs": runs, "in_process_identical": same_in_process,
        "subprocess_runs": subprocesses, "subprocess_identical": same_fresh,
        "piece_runs": len(pieces), "piece_identical": sum(_repro.same(reference, p) for p in pieces),
        "other_key_differs": not _repro.same(reference["params"], other["params"]),
        "final_loss": reference["history"]["loss"][-1],
    }


# --------------------------------------------------------------------------- 4. mutants
def mutants() -> dict:
    import pytest

    import _gradient_checks as checks

    clean = checks.run_checks()
    caught = []
    for m in checks.MUTANTS:
        with pytest.MonkeyPatch.context() as mp:
            m.apply(mp)
            try:
                checks.CHECKS[m.caught_by]()
            except AssertionError:
                caught.append(m.name)
    return {"checks_pass": all(v is None for v in clean.values()), "mutants": len(checks.MUTANTS),
            "caught": len(caught), "missed": [m.name for m in checks.MUTANTS if m.name not in caught]}


# --------------------------------------------------------------------------- main
@contextlib.contextmanager
def _quick_compiles():
    """XLA's cheapest compilation for the many tiny programs that run once (not for the timed or
    bitwise-compared runs)."""
    import jax

    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    try:
        yield
    finally:
        jax.config.update("jax_disable_most_optimizations", previous)


def main(argv=None) -> dict:
    p = parser("reliability", __doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="in-process reproducibility runs (default: %(default)s)")
    p.add_argument("--subprocesses", type=int, default=1,
                   help="reproducibility runs in fresh processes (default: %(default)s; 0 with --quick)")
    p.add_argument("--mutants", action="store_true", help="also check that every mutant derivative is caught")
    args = p.parse_args(argv)
    out = output_dir(args.out)
    start = time.perf_counter()
    s = Summary("Reliability: bad inputs, checkpoint faults, reproducibility")

    seconds = {}
    with _quick_compiles():
        b = battery()
    seconds["bad inputs"] = time.perf_counter() - start
    c = b["counts"]
    s.add(f"BAD INPUTS: {b['cases']} cases over {b['entry_points']} public entry points")
    s.add(f"  clear fnn error (expected class, message names the argument, raised before tracing): "
          f"{c['clear']}/{b['cases']}")
    s.add(f"  raw (non-fnn) errors: {c['raw']}   silent successes: {c['silent']}   raised inside a trace: "
          f"{c['traced']}   wrong message: {c['wrong_message']}   wrong class: {c['wrong_class']}")
    s.add(f"  known (waiting for the fix each names): {b['known']} of the {b['cases'] - c['clear']} not clear")
    for case_id, status, detail, xfail in b["problems"]:
        s.add(f"  [{status}] {case_id}{'  (known: ' + xfail + ')' if xfail else ''}")
        s.add(f"      {detail.splitlines()[0][:160]}")
    s.add(f"  legitimate corner cases that work: {b['edge_ok']}/{b['edge_cases']}")
    for edge_id, detail in b["edge_problems"]:
        s.add(f"  [edge case failed] {edge_id}: {detail[:160]}")

    with tempfile.TemporaryDirectory(prefix="fnn-reliability-") as tmp:
        work = pathlib.Path(tmp)
        t = time.perf_counter()
        k = checkpoint_faults(work, args.quick, args.seed)
        seconds["checkpoint faults"] = time.perf_counter() - t
        s.add()
        s.add(f"CHECKPOINT FAULTS on a {k['file_bytes']}-byte checkpoint: {k['tried']} corrupt or hostile files")
        s.table(["fault", "tried", "caught", "loaded wrongly", "raw error"],
                [(kind, *row) for kind, row in k["rows"].items()], ["{}", "{:d}", "{:d}", "{:d}", "{:d}"])
        s.add("  (caught: refused with an fnn error; the two forged headers naming classes must instead load "
              "safely, the constructor not run and the module not imported)")
        s.add(f"  caught {k['detected']}/{k['tried']}; corrupt loads {k['corrupt_loads']}; raw errors "
              f"{k['raw_errors']}; code executed from a file {k['code_executions']} times "
              f"({k['code_attempts']} attempts)")
        s.add(f"  interrupted saves: {k['saves_interrupted']}, old checkpoint intact after {k['old_file_intact']}, "
              f"temp files left {k['temp_files_left']} (a hard kill cannot clean up: its stale .tmp is listed)")
        for name, raised, intact, leftovers in k["interrupted_rows"]:
            what = ("killed" if raised else "NOT killed") if name.startswith("hard kill") else (
                "raised" if raised else "did not raise")
            s.add(f"    {name}: {what}, old file "
                  f"{'intact' if intact else 'DAMAGED'}{', stale ' + ', '.join(leftovers) if leftovers else ''}")

        subprocesses = 0 if args.quick else args.subprocesses
        t = time.perf_counter()
        r = reproducibility(work, 2 if args.quick else args.runs, subprocesses)
        seconds["reproducibility"] = time.perf_counter() - t
    s.add()
    s.add(f"REPRODUCIBILITY (float32, adam, 3 epochs, shuffled): {r['in_process_identical']}/{r['in_process_runs']} "
          f"in-process runs bitwise identical, {r['subprocess_identical']}/{r['subprocess_runs']} fresh-process runs "
          f"bitwise identical, {r['piece_identical']}/{r['piece_runs']} runs in pieces (Trainer.run 1 + 2 and 2 + 1 "
          f"epochs, fit continuing from result.state) bitwise identical; another key gives other params: "
          f"{r['other_key_differs']}")

    m = None
    if args.mutants:
        t = time.perf_counter()
        with _quick_compiles():
            m = mutants()
        seconds["mutants"] = time.perf_counter() - t
        s.add()
        s.add(f"MUTANTS: gradient checks pass on the library: {m['checks_pass']}; wrong derivatives caught "
              f"{m['caught']}/{m['mutants']}" + (f"; missed: {', '.join(m['missed'])}" if m["missed"] else ""))
    elapsed = time.perf_counter() - start
    s.add()
    s.add("seconds: " + ", ".join(f"{name} {v:.1f}" for name, v in seconds.items()))
    result = {
        "cases": b["cases"], "entry_points": b["entry_points"], "counts": c, "known_failures": b["known"],
        "edge_cases": b["edge_cases"], "edge_ok": b["edge_ok"],
        "checkpoint_bytes": k["file_bytes"], "checkpoint_faults": k["tried"], "checkpoint_detected": k["detected"],
        "corrupt_loads": k["corrupt_loads"], "checkpoint_raw_errors": k["raw_errors"],
        "code_executions": k["code_executions"], "code_attempts": k["code_attempts"],
        "saves_interrupted": k["saves_interrupted"],
        "old_file_intact": k["old_file_intact"], "temp_files_left": k["temp_files_left"],
        **{f"repro_{key}": v for key, v in r.items()},
        "mutants": m, "seconds": elapsed, "section_seconds": seconds,
    }
    s.record("reliability", {key: v for key, v in result.items() if key not in ("seconds", "section_seconds")})
    s.record_time("sections", seconds)
    s.write(out)
    with open(os.path.join(out, "results.json"), "w") as fh:
        json.dump(result, fh, indent=1, default=str)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
