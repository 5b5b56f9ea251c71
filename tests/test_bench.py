"""experiments/bench.py --quick: runs end to end, writes its JSON and plot, times every core peer."""
import importlib.util
import json
import math
import os
import sys

import pytest

pytest.importorskip("matplotlib")

EXPERIMENTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments")


@pytest.fixture(scope="module")
def bench():
    if EXPERIMENTS not in sys.path:
        sys.path.insert(0, EXPERIMENTS)  # the scripts import their helpers as `_common`
    spec = importlib.util.spec_from_file_location("bench", os.path.join(EXPERIMENTS, "bench.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_run(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    return bench.main(["--quick", "--out", str(out)]), out


def test_quick_writes_json_and_plot(quick_run):
    result, out = quick_run
    assert (out / "bench.json").stat().st_size > 0
    assert (out / "bench_sweep.png").stat().st_size > 0
    saved = json.loads((out / "bench.json").read_text())
    assert saved["machine"]["cpu_count"] >= 1 and saved["machine"]["jax"]
    assert {r["workload"] for r in saved["results"]} == {"W1", "W2", "W3"}
    assert saved["matmul"][0]["best_gflops"] > 0


@pytest.mark.parametrize("peer", ["fnn", "jax", "numpy"])
def test_quick_times_every_core_peer(quick_run, peer):
    result, _ = quick_run
    rows = [r for r in result["results"] if r["peer"] == peer]
    assert rows, f"no rows for {peer}"
    for r in rows:
        assert r["status"] == "ok", r["status"]
        assert math.isfinite(r["us_per_step"]) and r["us_per_step"] > 0
        assert r["samples_per_s"] > 0 and r["first_call_s"] > 0 and r["second_call_s"] > 0


def test_quick_sweeps_w1_batch_sizes(quick_run):
    result, _ = quick_run
    batches = {r["batch_size"] for r in result["results"] if r["workload"] == "W1" and r["peer"] == "fnn"
               and r["optimizer"] == "momentum"}
    assert len(batches) >= 2


def test_flops_count_forward_and_backward(bench):
    case = bench.make_case(bench.QUICK_WORKLOADS["W1"], "momentum", 32, seed=0)
    assert case.flops_per_step == 6 * 32 * (2 * 4 + 4 * 6 + 6 * 6 + 6 * 4 + 4 * 1)  # nominal: 6·batch·Σ n_in·n_out
    assert case.steps_per_epoch == 1024 // 32


def test_unknown_peer_is_refused(bench):
    with pytest.raises(SystemExit, match="unknown or no peers"):
        bench.main(["--quick", "--peers", "fnn,caffe", "--out", "unused"])
