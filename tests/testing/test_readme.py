"""The README's example of a user's test runs as written, with the plugin."""

from __future__ import annotations

import re
from pathlib import Path

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_example_passes(run, pytester) -> None:  # type: ignore[no-untyped-def]
    section = README.read_text().split("## Testing your code against it", 1)[1].split("\n## ")[0]
    blocks = {}
    for block in re.findall(r"```python\n(.*?)```", section, re.DOTALL):
        if name := re.match(r"# (\S+\.py)\n", block):
            blocks[name[1]] = block
    assert set(blocks) == {"fleet.py", "test_fleet.py"}
    pytester.makepyfile(fleet=blocks["fleet.py"])
    pytester.syspathinsert()
    result = run(blocks["test_fleet.py"])
    result.assert_outcomes(passed=1)
