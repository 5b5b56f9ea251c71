"""The READMEs' figures are what experiments/readme_figures.py makes of the committed results (no experiment runs)."""
import copy
import importlib.util
import json
import os
import re

import pytest

EXPERIMENTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments")


def _load():
    spec = importlib.util.spec_from_file_location("experiments_readme_figures",
                                                  os.path.join(EXPERIMENTS, "readme_figures.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


figures = _load()


def test_readmes_match_the_committed_results():
    results = figures.load_results()
    assert set(results) == set(figures.RUNS), "every run's JSON is committed, and nothing else"
    diffs = figures.check(results)
    assert not diffs, "stale README figures; run `python experiments/readme_figures.py --write`:\n" + "".join(diffs)


def test_every_block_is_used_and_renders_as_markdown():
    names = []
    for path in figures.READMES:
        with open(path) as f:
            text = f.read()
        for m in figures.MARKER.finditer(text):
            names.append(m.group(2))
            # A comment opening a line starts an HTML block that swallows the rest of that line: a block
            # there stands alone, between blank lines; one inside a sentence is never at a line's start.
            if m.start() == 0 or text[m.start() - 1] == "\n":
                assert m.group(3).startswith("\n\n") and m.group(3).endswith("\n\n"), (path, m.group(2))
            else:
                assert "\n" not in m.group(3), (path, m.group(2))
    assert set(names) == set(figures.BLOCKS)  # every block is used (reliability.* in two files)


def test_every_picture_the_readmes_show_is_copied_from_a_run():
    shown = set()
    for path in figures.READMES:
        with open(path) as f:
            shown |= set(re.findall(r"docs/img/([\w.-]+)", f.read()))
    made = {picture for pairs in figures.IMAGES.values() for _, picture in pairs}
    assert shown == made, "a picture the READMEs show must come from a run: add it to readme_figures.IMAGES"
    assert set(figures.IMAGES) <= set(figures.RUNS)
    assert all(os.path.isfile(os.path.join(figures.IMG, picture)) for picture in made)


def test_committed_results_hold_the_figures_as_numbers():
    for name, result in figures.load_results().items():
        assert result["script"] == figures.RUNS[name][0]
        assert result["argv"][2:] == list(figures.RUNS[name][1:])  # after --out DIR, the run's own arguments
        assert "runtime" in result["timings"] and "runtime" not in result["figures"]
    reached = figures.load_results()["seed_recipes"]["figures"]["reached"]
    assert all(isinstance(v, int) for v in reached.values())


def test_formats():
    assert figures.pct(0.98) == "98.0%" and figures.pct(1.0, 2) == "100.00%" and figures.pct(0.99, 0) == "99%"
    assert figures.fixed(0.48149) == "0.481" and figures.fixed(0.5, 2) == "0.50"
    assert figures.signed(0.003) == "+0.003" and figures.signed(-0.02) == "−0.020"
    assert figures.sci(1.74e-4) == "1.7e-4" and figures.sci(2.086e-7) == "2.1e-7" and figures.sci(123.0) == "1.2e2"
    assert figures.seconds(0.01523) == "0.0152 s" and figures.seconds(1.449) == "1.45 s"
    assert figures.table(["a", "b"], [["1", "2"]]) == "| a | b |\n|---|---|\n| 1 | 2 |"


TINY = {"seed_recipes": {"figures": {"n_seeds": 4, "target": 0.99,
                                     "reached": {"seed_recipe": 3, "recommended": 4, "lr_find": 2}}}}


def test_blocks_from_a_tiny_result():
    table = figures.seed_recipes_table(TINY)
    assert table.startswith("\n\n| recipe | seeds reaching ≥ 99% test accuracy |\n|---|---|\n")
    assert [line.rsplit("|", 2)[1].strip() for line in table.strip().splitlines()[2:]] == ["3 / 4", "4 / 4", "2 / 4"]
    assert figures.seed_recipes_lr_find(TINY) == "2 of 4 starts (the seed's fixed 1e-3: 3"
    text = ("a <!-- figures:seed_recipes.lr_find -->old<!-- /figures -->; b\n"
            "<!-- figures:seed_recipes.table -->\n<!-- /figures -->\n")
    rendered = figures.render(text, TINY)
    assert rendered == ("a <!-- figures:seed_recipes.lr_find -->2 of 4 starts (the seed's fixed 1e-3: 3"
                        "<!-- /figures -->; b\n<!-- figures:seed_recipes.table -->" + table + "<!-- /figures -->\n")
    assert figures.render(rendered, TINY) == rendered  # writing twice changes nothing


def test_check_and_write_on_a_copy(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("x <!-- figures:seed_recipes.lr_find -->55 of 64<!-- /figures --> y\n")
    diff = figures.check(TINY, paths=[str(readme)])
    assert len(diff) == 1 and "-x <!-- figures:seed_recipes.lr_find -->55 of 64" in diff[0]
    assert figures.write(TINY, paths=[str(readme)]) == [str(readme)]
    assert figures.check(TINY, paths=[str(readme)]) == [] and figures.write(TINY, paths=[str(readme)]) == []
    changed = copy.deepcopy(TINY)
    changed["seed_recipes"]["figures"]["reached"]["lr_find"] = 1
    assert "1 of 4 starts" in figures.check(changed, paths=[str(readme)])[0]


def test_bad_inputs_are_named():
    with pytest.raises(SystemExit, match="unknown figures block 'nope'"):
        figures.render("<!-- figures:nope --><!-- /figures -->", TINY)
    with pytest.raises(SystemExit, match=r"experiments/results/regression_real.json is missing.*--run regression_real"):
        figures.regression_real_table(TINY)
    with pytest.raises(SystemExit):
        figures.main(["--run", "no_such_run"])


def test_load_results_reads_every_json(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"figures": {"x": 1}}))
    (tmp_path / "notes.txt").write_text("not a result")
    assert figures.load_results(str(tmp_path)) == {"a": {"figures": {"x": 1}}}


def test_summary_writes_its_figures_as_numbers(tmp_path):
    pytest.importorskip("matplotlib")
    import sys

    import numpy as np

    if EXPERIMENTS not in sys.path:
        sys.path.insert(0, EXPERIMENTS)
    import _common

    s = _common.Summary("t")
    s.table(["name", "acc", "seconds"], [("a", np.float32(0.5), 1.25), ("b", 1.0, 2.0)], ["{}", "{:.1%}", "{:.1f}"],
            timing=("seconds",))
    s.table(["k"], [(np.int64(3),)], ["{:d}"])
    assert s.record("loss", np.array([0.25, np.nan, np.inf])) is not None
    s.write(str(tmp_path))
    text = (tmp_path / "summary.txt").read_text()
    assert "   a   50.0%      1.2\n   b  100.0%      2.0\n" in text  # rounded in the text only
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["title"] == "t"
    assert saved["figures"] == {"table1": [{"name": "a", "acc": 0.5}, {"name": "b", "acc": 1.0}],
                                "table2": [{"k": 3}], "loss": [0.25, None, None]}
    assert saved["timings"]["table1"] == [{"seconds": 1.25}, {"seconds": 2.0}] and saved["timings"]["runtime"] >= 0
    assert _common.plain({"x": (np.bool_(True), np.float64(2.0)), "dtype": np.dtype("float32")}) == {
        "x": [True, 2.0], "dtype": "float32"}
