"""The documentation: the Sphinx site builds with warnings as errors, and every ``python`` code
block of every guide runs.

A guide's blocks fenced as ```` ```python ```` are executed in order, in one namespace per page
(so a page reads as one script), in a temporary directory. A block that must not run (it needs
a cluster, or several minutes) is written as a MyST directive, ```` ```{code-block} python ````:
it renders the same and is skipped here. Use that rarely; docs/README.md says so too.

Plain ```` ```bash ```` blocks of the command-line guide (lines starting with ``jaxhpo``) are run
too, through the CLI's ``main`` in this process.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "docs")
GUIDES = os.path.join(DOCS, "guides")


def _fence(lang):
    return re.compile(r"^(`{3,})" + lang + r"[ \t]*\n(.*?)^\1[ \t]*$", re.S | re.M)


def python_blocks(text: str, lang: str = "python") -> list[str]:
    """The bodies of the ```` ```python ```` (or ``lang``) fences of a Markdown page, in order."""
    return [m.group(2) for m in _fence(lang).finditer(text)]


def test_python_blocks_parser():
    page = ("x\n```python\na = 1\n```\n\n```{code-block} python\nnot run\n```\n"
            "````python\nb = 2\n```\nc = 3\n````\n```bash\nls\n```\n")
    assert python_blocks(page) == ["a = 1\n", "b = 2\n```\nc = 3\n"]


def guide_pages() -> list[str]:
    return sorted(f for f in os.listdir(GUIDES) if f.endswith(".md"))


@pytest.mark.parametrize("page", guide_pages())
def test_guide_examples_run(page, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    with open(os.path.join(GUIDES, page)) as f:
        blocks = python_blocks(f.read())
    monkeypatch.chdir(tmp_path)  # journals and PNGs the examples write land here
    namespace: dict = {"__name__": f"docs_{page[:-3]}"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"docs/guides/{page} [python block {i + 1}]", "exec"), namespace)
        except Exception as e:
            raise AssertionError(f"docs/guides/{page}: python block {i + 1} failed: "
                                 f"{type(e).__name__}: {e}\n{code}") from e
    import matplotlib.pyplot as plt

    plt.close("all")


def test_cli_guide_commands_run(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    import shlex

    from jaxhpo._cli import main

    with open(os.path.join(GUIDES, "cli.md")) as f:
        lines = [ln for b in python_blocks(f.read(), "bash") for ln in b.splitlines()
                 if ln.startswith("jaxhpo ")]
    assert len(lines) >= 4
    monkeypatch.chdir(tmp_path)
    for line in lines:
        argv = shlex.split(line, comments=True)[1:]
        assert main(argv) in (0, None), line
    out = capsys.readouterr().out
    assert "branin" in out and os.path.exists(tmp_path / "history.png")


def test_sphinx_build_has_no_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    pytest.importorskip("furo")
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q",
         "-d", str(tmp_path / "doctrees"), DOCS, str(tmp_path / "html")],
        capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stderr[-6000:]}"
    html = (tmp_path / "html" / "results.html").read_text()
    assert "benchmarks/results/" in html  # the results page was generated from the JSON
    api = (tmp_path / "html" / "api" / "jaxhpo.html").read_text()
    assert "minimize" in api and "Space" in api  # autodoc found the public API
