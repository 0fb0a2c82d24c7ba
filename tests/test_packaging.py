"""Installing over the original PromptLab 0.1.11 is an ordinary upgrade, and an
uninstall leaves nothing of ours. Runs pip for real, in a temporary venv, with a tiny
stand-in for the original's wheel (its real dependency tree is far too large for CI)."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD_INPUTS = ["pyproject.toml", "setup.py", "README.md", "LICENSE", "MANIFEST.in", "csrc",
                "promptlab", "migrations"]

# Files of the stand-in 0.1.11: some the original had and this package does not
# (they must be gone after the upgrade), and some both have.
OLD_FILES = {
    "promptlab/__init__.py": 'from promptlab.core import PromptLab\n__version__ = "0.1.11"\n',
    "promptlab/core.py": "class PromptLab:\n    pass\n",
    "promptlab/enums.py": "OLD = True\n",
    "promptlab/_cli.py": "def main():\n    print('promptlab 0.1.11')\n",
    "promptlab/_utils.py": "OLD = True\n",
    "promptlab/web/__init__.py": "",
    "promptlab/web/index.html": "<html>0.1.11</html>\n",
    "promptlab/studio/studio_api.py": "OLD = True\n",
}
OLD_ONLY = ["_cli.py", "_utils.py", "web", "studio/studio_api.py"]


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def fake_original_wheel(folder: Path) -> Path:
    """A minimal, valid wheel named promptlab 0.1.11 with a ``promptlab`` script."""
    info = "promptlab-0.1.11.dist-info"
    files = {name: text.encode() for name, text in OLD_FILES.items()}
    files[f"{info}/METADATA"] = b"Metadata-Version: 2.1\nName: promptlab\nVersion: 0.1.11\n"
    files[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                              b"Tag: py3-none-any\n")
    files[f"{info}/entry_points.txt"] = b"[console_scripts]\npromptlab = promptlab._cli:main\n"
    files[f"{info}/top_level.txt"] = b"promptlab\n"
    record = [_record_line(name, data) for name, data in files.items()] + [f"{info}/RECORD,,"]
    path = folder / "promptlab-0.1.11-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
        wheel.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=1800, cwd=cwd,
                            env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_install_over_the_original_and_uninstall(tmp_path):
    # Our wheel, built once from a copy of what the build reads (so no build files are
    # left in the checkout, and CI's venvs inside it are not copied).
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("build", "*.egg-info", "*.so", "__pycache__")
    for name in BUILD_INPUTS:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=ignore)
        elif (REPO / name).exists():
            source.mkdir(exist_ok=True)
            shutil.copy(REPO / name, source / name)
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheels), str(source))
    (ours,) = wheels.glob("promptlab-*.whl")
    assert ours.name.startswith("promptlab-0.2") and "core" not in ours.name

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    python, pip = str(venv / "bin" / "python"), [str(venv / "bin" / "python"), "-m", "pip"]
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"
                    ).stdout.strip())
    platsite = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['platlib'])"
                        ).stdout.strip())

    run(*pip, "install", "--no-deps", "--no-index", str(fake_original_wheel(tmp_path)))
    assert (site / "promptlab" / "_cli.py").exists()

    upgrade = run(*pip, "install", "--no-deps", "--no-index", str(ours))
    assert "Successfully uninstalled promptlab-0.1.11" in upgrade.stdout
    package = platsite / "promptlab"
    for old in OLD_ONLY:
        assert not (package / old).exists(), old
        assert not (site / "promptlab" / old).exists(), old
    assert not list(site.glob("promptlab-0.1.11.dist-info"))
    check = run(python, "-c", "import promptlab, promptlab.enums, promptlab._core\n"
                "from promptlab import PromptLab\nfrom promptlab.model.model import Model\n"
                "print(promptlab.__version__, promptlab.enums.TracerType.LOCAL.value)",
                cwd=str(tmp_path))
    assert check.stdout.split() == ["0.2.0", "local"]
    version = run(str(venv / "bin" / "promptlab"), "--version", cwd=str(tmp_path))
    assert version.stdout.strip() == "promptlab 0.2.0"
    demo = run(str(venv / "bin" / "promptlab"), "demo", "-d", str(tmp_path / "demo.db"),
               cwd=str(tmp_path))
    assert "v1 " in demo.stdout  # the sample dataset is in the wheel

    run(*pip, "uninstall", "-y", "promptlab")
    leftovers = [p.name for root in {site, platsite} for p in root.iterdir()
                 if p.name.lower().startswith("promptlab")]
    assert leftovers == []
    assert not (venv / "bin" / "promptlab").exists()
    gone = subprocess.run([python, "-c", "import promptlab"], capture_output=True, text=True,
                          cwd=str(tmp_path), timeout=120)
    assert gone.returncode == 1 and "No module named 'promptlab'" in gone.stderr
