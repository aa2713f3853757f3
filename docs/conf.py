"""Sphinx configuration of the sleepkd documentation.

Build (offline, no warnings allowed)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The gallery examples in ``../examples`` are executed during the build; they use tiny
synthetic data and a single torch thread so that the whole build takes a few minutes
on a laptop CPU.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

# One thread for torch / BLAS: the example networks are tiny and spinning worker
# threads only slow them down (set before anything imports torch).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("MPLBACKEND", "Agg")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # document the checkout, installed or not

import sleepkd  # noqa: E402

# -- project -------------------------------------------------------------------------
project = "sleepkd"
author = "sleepkd developers"
copyright = "sleepkd developers (BSD-3-Clause); slpdb data: PhysioNet, ODC-By 1.0"
release = sleepkd.__version__
version = ".".join(release.split(".")[:2])

# -- general -------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip",
                    "auto_examples/*.json", "auto_examples/*.md5"]
templates_path = ["_templates"]
default_role = "literal"
# Unresolved cross-references to numpy / torch / sklearn objects are expected offline.
nitpicky = False

# -- autodoc / autosummary / numpydoc ------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"inherited-members": False}
autodoc_typehints = "none"  # the numpydoc sections already give the types
numpydoc_show_class_members = False  # methods are listed by autosummary's template
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- intersphinx: no network at build time --------------------------------------------
# Links to other projects' docs would need their inventories (a download); the build
# must work offline, so none are configured. Set SLEEPKD_DOCS_INTERSPHINX=1 to link
# to the online inventories when a network is available.
intersphinx_mapping: dict = {}
if os.environ.get("SLEEPKD_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "torch": ("https://docs.pytorch.org/docs/stable", None),
        "skorch": ("https://skorch.readthedocs.io/en/stable", None),
    }

# -- sphinx-gallery --------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",  # execute every example
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "image_scrapers": ("matplotlib",),
    "plot_gallery": "True",
    "show_memory": False,
    "capture_repr": (),  # print() output only, not the repr of fitted estimators
    "min_reported_time": 1,
}

# Third-party chatter that is not about our docs.
warnings.filterwarnings("ignore", category=UserWarning,
                        message="Matplotlib is currently using agg")
warnings.filterwarnings("ignore", category=DeprecationWarning, module="neurokit2")

# -- HTML ------------------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"sleepkd {release}"
html_static_path: list[str] = []
html_theme_options = {
    "description": "Sleep staging from a single-lead ECG, distilled from an EEG model",
    "fixed_sidebar": True,
    "show_related": False,
}
html_sidebars = {"**": ["about.html", "navigation.html", "searchbox.html"]}
html_show_sourcelink = False



def _skip_member(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated ``set_{method}_request`` methods.

    scikit-learn documents them (metadata routing) in its own user guide; their
    docstrings link to its glossary, which cannot be resolved offline.
    """
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
