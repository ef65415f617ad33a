"""The documentation: the Sphinx site builds with warnings as errors, and every ``python`` code
block of the README and of every guide runs.

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
import sys
import types

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
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


def pages_with_code() -> list[str]:
    """The README and every guide with at least one python block (paths from the repo root)."""
    pages = ["README.md"] + [f"docs/guides/{f}" for f in sorted(os.listdir(GUIDES))
                             if f.endswith(".md")]
    out = []
    for p in pages:
        with open(os.path.join(ROOT, p)) as f:
            if python_blocks(f.read()):
                out.append(p)
    return out


@pytest.mark.parametrize("page", pages_with_code())
def test_page_examples_run(page, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    with open(os.path.join(ROOT, page)) as f:
        blocks = python_blocks(f.read())
    monkeypatch.chdir(tmp_path)  # journals and PNGs the examples write land here
    module = types.ModuleType("docs_example")  # a real module: flax.linen modules are
    monkeypatch.setitem(sys.modules, module.__name__, module)  # dataclasses that look it up
    namespace = module.__dict__
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{page} [python block {i + 1}]", "exec"), namespace)
        except Exception as e:
            raise AssertionError(f"{page}: python block {i + 1} failed: "
                                 f"{type(e).__name__}: {e}\n{code}") from e
    import matplotlib.pyplot as plt

    plt.close("all")


def test_every_example_is_listed_in_the_readme():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    table = text[text.index("<!-- examples-table:start -->"):text.index("<!-- examples-table:end -->")]
    listed = set(re.findall(r"^\| `([a-z0-9_]+)\.py` \|", table, re.M))
    files = {f[:-3] for f in os.listdir(os.path.join(ROOT, "examples")) if f.endswith(".py")}
    assert listed == files, f"README examples table: missing {sorted(files - listed)}, " \
                            f"stale {sorted(listed - files)}"


def test_readme_results_name_existing_result_files():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text[text.index("## Results"):text.index("## Examples")]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    assert 1 <= len(rows) <= 10, "the README's results table has at most 10 rows"
    for row in rows:
        files = re.findall(r"`([a-z0-9_]+-[a-z0-9_]+-[a-z0-9_]+-\d{8}-\d{6}\.json)`", row)
        assert files, f"a README result row names no result file: {row}"
        for name in files:
            assert os.path.exists(os.path.join(ROOT, "benchmarks", "results", name)), name


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


# Sphinx's own deprecation notices about napoleon/myst internals are not warnings of this build
# (those go to stderr and fail it through -W).
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning")
def test_sphinx_build_has_no_warnings(tmp_path, capsys):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    pytest.importorskip("furo")
    from sphinx.cmd.build import build_main

    # In this process (jaxhpo and JAX are imported already): -W turns every warning, e.g. a
    # malformed docstring, into a failure; --keep-going reports all of them.
    rc = build_main(["-W", "--keep-going", "-b", "html", "-q", "-d", str(tmp_path / "doctrees"),
                     DOCS, str(tmp_path / "html")])
    assert rc == 0, f"sphinx-build failed (its warnings are above):\n{capsys.readouterr().err[-6000:]}"
    html = (tmp_path / "html" / "results.html").read_text()
    assert "benchmarks/results/" in html  # the results page was generated from the JSON
    api = (tmp_path / "html" / "api" / "jaxhpo.html").read_text()
    for name in ("minimize", "tune", "Space", "TuneResult"):  # autodoc found the public API,
        assert f'id="jaxhpo.{name}"' in api, name                # lazily imported names too
