"""The documentation: gallery examples are valid, and the Sphinx build has no warnings."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
# The gallery pages the docs link to; a missing one means a broken toctree entry.
EXPECTED_EXAMPLES = {
    "plot_quickstart.py",
    "plot_cross_validation.py",
    "plot_strategies.py",
    "plot_save_load_predict.py",
    "plot_own_data.py",
}


def test_all_expected_examples_exist():
    assert EXPECTED_EXAMPLES <= {path.name for path in EXAMPLES}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_compiles_and_has_a_gallery_title(path):
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))  # raises on a syntax error
    compile(tree, str(path), "exec")
    docstring = ast.get_docstring(tree, clean=True)
    assert docstring, f"{path.name} has no module docstring (sphinx-gallery needs one)"
    lines = docstring.splitlines()
    # sphinx-gallery: the docstring starts with an RST title (text, then an underline
    # at least as long, of one repeated character).
    assert len(lines) >= 2 and lines[0].strip(), f"{path.name}: no title line"
    title, underline = lines[0].rstrip(), lines[1].rstrip()
    assert len(set(underline)) == 1 and underline[0] in "=-~^*#", (
        f"{path.name}: the title is not underlined")
    assert len(underline) >= len(title), f"{path.name}: underline shorter than title"
    # every example must say that its data is synthetic or real
    assert "synthetic" in docstring.lower(), f"{path.name} does not state its data"


def test_every_page_of_the_index_toctree_exists_or_is_known():
    """Pages listed in the toctree are files of docs/ (or the generated gallery)."""
    index = (DOCS / "index.rst").read_text(encoding="utf-8")
    entries = []
    in_toctree = False
    for line in index.splitlines():
        if line.startswith(".. toctree::"):
            in_toctree = True
            continue
        if in_toctree:
            stripped = line.strip()
            if line and not line.startswith(" "):
                in_toctree = False
            elif stripped and not stripped.startswith(":"):
                entries.append(stripped)
    assert "api" in entries and "conventions" in entries and "method" in entries
    for entry in entries:
        if entry.startswith("auto_examples/"):
            continue
        assert (DOCS / f"{entry}.rst").is_file(), f"docs/{entry}.rst is missing"


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("sphinx_gallery")
    pytest.importorskip("numpydoc")
    pytest.importorskip("matplotlib")
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    # -W: warnings are errors; -E: no cached environment; build into tmp_path. The
    # gallery is generated next to the sources (docs/auto_examples), as sphinx-gallery
    # always does.
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    html = tmp_path / "html"
    for page in ("index", "install", "conventions", "method", "api", "data",
                 "auto_examples/index"):
        assert (html / f"{page}.html").is_file(), page
    for path in EXAMPLES:
        assert (html / "auto_examples" / f"{path.stem}.html").is_file(), path.name
