"""experiments/*.py --quick: each script runs end to end, writes its plots and summary, and its key figures hold."""
import math

import pytest

import _scripts

pytestmark = pytest.mark.slow  # each script run end to end: `make test-slow` (CI runs it after make test)

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

load = _scripts.load


def run_quick(name: str, out):
    result = load(name).main(["--quick", "--out", str(out)])
    assert isinstance(result, dict)
    summary = (out / "summary.txt").read_text()
    assert "runtime:" in summary
    return result, summary


def written(out, *names):
    for n in names:
        assert (out / n).stat().st_size > 1000, f"{n} missing or empty"
    return True


def test_help_exits_cleanly(capsys):
    for name in ("circles", "derivative", "regression", "digits", "optimizers", "backprop"):
        with pytest.raises(SystemExit) as exc:
            load(name).main(["--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert "--out" in out and "--seed" in out and "--quick" in out


def test_circles(tmp_path):
    r, summary = run_quick("circles", tmp_path)
    assert written(tmp_path, "history.png", "decision_boundary.png", "seeds.png", "diagnosis.png", "boundary.gif")
    from PIL import Image

    with Image.open(tmp_path / "boundary.gif") as gif:
        assert 2 <= gif.n_frames <= r["epochs"] + 1  # frames="changes": the start, where the boundary moved, the end
    assert r["test_accuracy"] >= 0.97
    assert r["seed_accuracies"][0] == r["test_accuracy"] and len(r["seed_accuracies"]) == r["n_seeds"]
    assert r["n_reached"] == sum(a >= 0.99 for a in r["seed_accuracies"])
    # the deliberately bad start: whole hidden layers dead, no error signal below them, stuck near chance
    assert r["bad_start_accuracy"] < 0.75
    assert any(d == u for d, u in zip(r["bad_start_dead"], (4, 6, 6, 4)))
    assert r["bad_start_deltas"][0] == 0.0
    assert "HEADLINE" in summary and "OVER SEEDS" in summary
    assert len(r["history"]["loss"]) == r["epochs"]


def test_derivative(tmp_path):
    r, _ = run_quick("derivative", tmp_path)
    assert written(tmp_path, "finite_differences.png", "ascent.png")
    assert r["ascent_converged"] and abs(r["ascent_x"] - 3.0) < 1e-5
    assert r["grad_error"] < 1e-12
    err = r["forward_error"]
    assert err[0] > err[3] > err[6]  # shrinks with h (≈ 2h) ...
    assert r["best_forward_h"] < 1e-4 and r["best_forward_error"] < 1e-6
    assert not r["large_lr_converged"] and r["large_lr_distance"] > 10  # ... too large a step diverges
    assert not r["small_lr_converged"] and r["small_lr_distance"] > 0.1  # ... too small a step crawls


def test_regression(tmp_path):
    r, _ = run_quick("regression", tmp_path)
    assert written(tmp_path, "fit.png", "history.png")
    assert r["test_mse"] < r["threshold"] == 1e-2
    assert math.isfinite(r["max_abs_error"])


def test_digits(tmp_path):
    r, summary = run_quick("digits", tmp_path)
    assert written(tmp_path, "history.png", "misclassified.png", "confusion.png")
    assert r["test_accuracy"] >= 0.90
    counts = r["confusion"]
    assert sum(map(sum, counts)) == r["n_test"]
    assert r["n_test"] - sum(counts[i][i] for i in range(10)) == r["n_wrong"]
    assert "confusion counts" in summary


def test_optimizers(tmp_path):
    r, _ = run_quick("optimizers", tmp_path)
    assert written(tmp_path, "optimizers.png")
    reach = r["epochs_to_threshold"]
    assert set(reach) == {"sgd", "momentum"}  # --quick compiles only these two
    assert reach["momentum"] is not None
    assert reach["sgd"] is None or reach["momentum"] < reach["sgd"]


def test_backprop(tmp_path):
    r, _ = run_quick("backprop", tmp_path)
    assert written(tmp_path, "backprop.png")
    assert r["max_abs_diff"] < 1e-5
    assert r["max_abs_diff_float64"] < 1e-12
    assert len(r["mean_abs_delta"]["trained"]) == 5
    assert r["grad_norm"]["trained"][0] < r["grad_norm"]["untrained"][0]


def test_regression_real(tmp_path):
    r, summary = run_quick("regression_real", tmp_path)
    assert written(tmp_path, "predictions.png")
    for name in ("diabetes", "friedman1"):
        values = r["r2"][name]
        assert len(values["fnn"]) == len(values["mlp"]) == len(r["seeds"])
        assert all(math.isfinite(v) for v in values["fnn"] + values["mlp"] + values["mlp_again"])
    assert summary.count("HEADLINE") == 2


def test_seed_recipes(tmp_path):
    r, summary = run_quick("seed_recipes", tmp_path)
    assert r["n_seeds"] == 8
    assert all(len(r[k]) == 8 for k in ("seed_recipe", "recommended", "lr_find", "lr_find_rates"))
    assert all(0 <= a <= 1 for k in ("seed_recipe", "recommended", "lr_find") for a in r[k])
    assert "HEADLINE" in summary
