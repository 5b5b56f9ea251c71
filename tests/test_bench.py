"""experiments/bench.py --quick: runs end to end, writes its JSON and plot, times every core peer,
the seed example in fresh processes (fnn cold and warm, NumPy) and fnn.sweep against a vmap."""
import json
import math

import pytest

import _scripts

pytest.importorskip("matplotlib")

# About 50 s of fresh processes and peers: `make test-slow` (and CI, after make test) runs it.
pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def bench():
    return _scripts.load("bench", module="bench")


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


def test_quick_counts_traces_from_jax_events(quick_run):
    result, _ = quick_run
    rows = [r for r in result["results"] if r["peer"] == "fnn"]
    for r in rows:
        assert r["first_call_events"]["traces"] > 0 and r["first_call_events"]["compiles"] > 0
        assert r["second_call_retraced"] is False and r["second_call_compiled"] is False


def test_quick_times_the_seed_example_in_fresh_processes(quick_run):
    result, _ = quick_run
    rows = {r["peer"]: r for r in result["time_to_result"]["rows"]}
    assert set(rows) == {"numpy", "fnn-cold", "fnn-warm"}
    for r in rows.values():
        assert r["status"] == "ok", r["status"]
        assert r["wall_s"] > r["in_process_s"] > r["import_s"] > 0
        assert 0.0 <= r["accuracy"] <= 1.0
    cold, warm = rows["fnn-cold"]["runs"][0]["jax_events"], rows["fnn-warm"]["runs"][0]["jax_events"]
    assert cold["cache_hits"] == 0 and cold["compiles"] > 0
    assert warm["cache_hits"] == warm["compiles"] > 0  # every program the warm run needs, from the folder
    explore = result["time_to_result"]["learning_rates"]
    assert explore["status"] == "ok", explore["status"]
    assert len(explore["runs"][0]["fits"]) == 8 and explore["wall_s"] > explore["fits_s"] > 0


def test_quick_sweeps_against_vmap(quick_run):
    result, _ = quick_run
    rows = result["sweeps"]["rows"]
    assert [(r["models"], r["rates"], r["seeds"]) for r in rows] == [(8, 8, 1)]
    assert rows[0]["status"] == "ok", rows[0]["status"]
    assert rows[0]["fnn_best_s"] > 0 and rows[0]["vmap_best_s"] > 0


def test_sweep_ratios_are_to_one_model(bench):
    rows = [{"models": 1, "fnn_best_s": 1.0, "vmap_best_s": 2.0},
            {"models": 64, "fnn_best_s": 5.0, "vmap_best_s": 20.0}]
    bench.sweep_ratios(rows)
    assert rows[0]["fnn_vs_one"] == rows[0]["vmap_vs_one"] == 1.0
    assert (rows[1]["fnn_vs_one"], rows[1]["vmap_vs_one"], rows[1]["vmap_vs_fnn_one"], rows[1]["fnn_over_vmap"]) == (
        5.0, 10.0, 20.0, 0.25)


def test_quick_lists_every_target(quick_run):
    result, out = quick_run
    targets = {t["target"]: t for t in result["targets"]}
    assert any(t.startswith("W1 momentum") for t in targets)
    assert targets["seed example, fnn warm ≤ 2.0 s"]["met"] in (True, False)
    assert targets["sweep of 256 models ≤ 20 × one"]["measured"] == "not measured"
    assert "targets" in (out / "summary.txt").read_text()


def test_sweep_grid_is_rates_times_seeds(bench):
    assert bench.sweep_grid(1) == ((1e-3,), (0,))
    for k in (8, 64, 256):
        rates, seeds = bench.sweep_grid(k)
        assert len(rates) == 8 and len(rates) * len(seeds) == k


def test_children_run_with_real_settings(bench, monkeypatch):
    monkeypatch.setenv("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
    monkeypatch.setenv("FNN_CACHE", "off")
    env = bench.child_env("/some/folder")
    assert "JAX_DISABLE_MOST_OPTIMIZATIONS" not in env and "FNN_CACHE" not in env
    assert env["FNN_CACHE_DIR"] == "/some/folder" and env["KERAS_BACKEND"] == "jax"


def test_flops_count_forward_and_backward(bench):
    case = bench.make_case(bench.QUICK_WORKLOADS["W1"], "momentum", 32, seed=0)
    assert case.flops_per_step == 6 * 32 * (2 * 4 + 4 * 6 + 6 * 6 + 6 * 4 + 4 * 1)  # nominal: 6·batch·Σ n_in·n_out
    assert case.steps_per_epoch == 1024 // 32


def test_unknown_peer_is_refused(bench):
    with pytest.raises(SystemExit, match="unknown or no peers"):
        bench.main(["--quick", "--peers", "fnn,caffe", "--out", "unused"])
