"""The package surface: a light import, the public names, and the README's promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import sleepkd

ROOT = Path(__file__).resolve().parents[1]


def test_import_is_light():
    """``import sleepkd`` must not pull in torch, skorch, neurokit2 or wfdb."""
    code = ("import sys, sleepkd; "
            "print(sorted(m for m in ('torch', 'skorch', 'neurokit2', 'wfdb', 'mne', "
            "'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_public_names_resolve():
    for name in sleepkd.__all__:
        assert getattr(sleepkd, name) is not None, name
    from sleepkd import datasets, distillation, metrics, networks, signal

    for module in (datasets, distillation, metrics, networks, signal):
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"


def test_readme_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1).strip().splitlines()
    assert len(first_block) == 2 and "sleepkd demo" in first_block[0]
    assert first_block[1] in (ROOT / ".ci" / "run").read_text()


def test_version_is_consistent():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{sleepkd.__version__}"' in pyproject
