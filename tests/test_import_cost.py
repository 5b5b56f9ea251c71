"""What `import fnn` costs: only what a plain fit needs is imported, and ml_dtypes stays cheap.

fnn/__init__.py loads its `_LAZY` names (checkpoint files, pictures, the learning-rate finder,
numerical gradients) on first use; every name of `fnn.__all__` still resolves as before. The
ml_dtypes check reads `python -X importtime` in a fresh process: 0.7.0's extension module took
1.0-1.2 s there, which is why pyproject.toml keeps ml_dtypes below 0.7.
"""

import json
import os
import re
import subprocess
import sys

import pytest

import fnn

LAZY_MODULES = sorted({module for module, _ in fnn._LAZY.values()} | {"fnn._tree_codec", "fnn._movie", "matplotlib"})


def _fresh(code: str, *flags: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, FNN_CACHE="off")
    return subprocess.run([sys.executable, *flags, "-c", code], capture_output=True, text=True, env=env, check=True)


def test_every_public_name_resolves_and_is_listed():
    for name in fnn.__all__:
        assert getattr(fnn, name) is not None, name
    assert set(fnn.__all__) <= set(dir(fnn))
    assert callable(fnn.save) and callable(fnn.load) and callable(fnn.sweep) and callable(fnn.lr_find)
    assert fnn.plot.__name__ == "fnn.plot" and fnn.checkpoint.__name__ == "fnn.checkpoint"
    from fnn import LRFindResult, gradcheck, plot, save

    assert (save, plot, gradcheck, LRFindResult) == (fnn.save, fnn.plot, fnn.gradcheck, fnn.LRFindResult)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        fnn.no_such_name  # noqa: B018
    with pytest.raises(ImportError):
        from fnn import no_such_name  # noqa: F401


@pytest.mark.slow  # a fresh process: `make test-slow`
def test_import_fnn_leaves_the_lazy_modules_unloaded_until_used():
    code = (
        "import json, sys; import fnn; before = sorted(m for m in sys.modules if m in MODS); "
        "fnn.save; fnn.plot; fnn.gradcheck; fnn.lr_find; "
        "print(json.dumps([before, sorted(m for m in sys.modules if m in MODS)]))"
    ).replace("MODS", repr(set(LAZY_MODULES)))
    before, after = json.loads(_fresh(code).stdout)
    assert before == []
    assert set(after) == {module for module, _ in fnn._LAZY.values()} | {"fnn._tree_codec", "fnn._movie"}


def importtime(stdout_err: str) -> dict[str, tuple[int, int]]:
    """`python -X importtime` lines -> {module: (self µs, cumulative µs)}."""
    rows = {}
    for line in stdout_err.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)", line)
        if match:
            rows[match.group(3)] = (int(match.group(1)), int(match.group(2)))
    return rows


def test_importtime_reads_its_lines():
    text = "import time: self [us] | cumulative | imported package\nimport time:      9 |      1285 |   ml_dtypes\n"
    assert importtime(text) == {"ml_dtypes": (9, 1285)}


@pytest.mark.slow  # a fresh process: `make test-slow`
def test_import_fnn_spends_under_0_2_s_in_ml_dtypes():
    rows = importtime(_fresh("import fnn", "-X", "importtime").stderr)
    assert "ml_dtypes" in rows, "ml_dtypes was not imported: -X importtime's format changed?"
    seconds = rows["ml_dtypes"][1] / 1e6
    import ml_dtypes

    assert seconds < 0.2, (
        f"import fnn spent {seconds:.2f} s importing ml_dtypes {ml_dtypes.__version__}; "
        "pyproject.toml keeps it below the release that is slow to import (pip install 'ml_dtypes<0.7')"
    )
