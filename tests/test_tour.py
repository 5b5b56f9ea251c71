"""experiments/tour.py: its steps are the tour's, and (slow) a run writes tour.md linking every picture it drew."""
import json
import os
import re
import subprocess
import sys

import pytest

import _scripts

pytest.importorskip("matplotlib")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (a) to (k) of the tour, in order: the network, INIT, LOSS, GRADIENT, STEP, STOP, the learned network, the
# learning rate, P(x), softmax, activations
TOUR = ("network", "init", "loss", "gradient", "step", "stop", "learned", "learning_rate", "derivative", "softmax",
        "activations")


def load():
    return _scripts.load("tour")


def test_every_step_of_the_tour_is_there_in_order_and_linked():
    tour = load()
    assert tuple(name for name, _ in tour.SECTIONS) == TOUR
    assert all(callable(tour.STEPS[name]) for name in TOUR) and len({h for _, h in tour.SECTIONS}) == len(TOUR)
    text = tour.markdown([tour.Section("loss", "LOSS", ["loss.png", "b.gif"], "Two sentences.")])
    assert "## 1. LOSS" in text and "](loss.png)" in text and "](b.gif)" in text and "Two sentences." in text


@pytest.mark.slow  # two runs of the whole tour in fresh processes, a minute or more each
def test_the_tour_links_every_picture_it_writes_and_repeats_its_numbers(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    outs = [tmp_path / "first", tmp_path / "second"]
    for out in outs:
        done = subprocess.run([sys.executable, os.path.join(_scripts.EXPERIMENTS, "tour.py"), "--out", str(out)], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
    text = (outs[0] / "tour.md").read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    pictures = sorted(p.name for p in outs[0].iterdir() if p.suffix in (".png", ".gif"))
    assert sorted(linked) == pictures and len(pictures) >= len(TOUR)  # every picture linked, each link a file
    assert all((outs[0] / name).stat().st_size > 1000 for name in linked)
    assert [line for line in text.splitlines() if line.startswith("## ")] == [
        f"## {i}. {heading}" for i, (_, heading) in enumerate(load().SECTIONS, start=1)]
    figures = [json.loads((out / "summary.json").read_text())["figures"] for out in outs]
    assert figures[0] == figures[1] and text == (outs[1] / "tour.md").read_text()  # seeded: the same numbers
    assert figures[0]["stop_reason"] == "target_loss" and figures[0]["test_accuracy"] >= 0.97
