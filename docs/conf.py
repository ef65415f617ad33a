"""Sphinx configuration of the jaxhpo documentation (see docs/README.md)."""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the jaxhpo package of this checkout
sys.path.insert(0, os.path.join(HERE, "_ext"))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

project = "jaxhpo"
author = "the jaxhpo authors"
copyright = "2026, the jaxhpo authors"

import jaxhpo  # noqa: E402

release = version = jaxhpo.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "bench_results",  # docs/_ext/bench_results.py: the results page from benchmarks/results/
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_generated", "README.md", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Google-style docstrings (Args/Returns/Example), as in the code.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes:" as fields: no duplicate entries beside autodoc's
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}

html_theme = "furo"
html_title = f"jaxhpo {release}"
html_static_path = ["_static"]
