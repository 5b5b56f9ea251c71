"""The README's code runs as shown, in order, in one namespace."""
import pathlib
import re

import pytest

pytestmark = pytest.mark.slow  # every README block, end to end: `make test-slow` (CI runs it after make test)

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 3
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    diff = float(re.search(r"jax\.grad\| over all parameters: ([0-9.e+-]+)", out).group(1))
    assert diff < 1e-5
    assert namespace["result"].history["val_accuracy"][-1] > 0.9
