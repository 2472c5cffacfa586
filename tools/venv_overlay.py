"""Make ``.venv``: a thin per-clone virtual environment on top of the cached one.

The pinned dependencies live once in ``~/.cache/mdr-graph/venv-<hash>``, shared by every
clone. The package itself must not be installed there: an editable install points at one
clone's source, so a second clone's ``.venv/bin/mdr-graph`` would silently run the first
clone's code. Instead each clone gets a small venv (no pip, no packages, made in about a
second) whose site-packages adds the cached one with ``site.addsitedir`` (its ``.pth``
files included); ``make venv`` then installs this clone's package into it, editable.
The cached venv's console scripts (pytest, tensorboard, torchrun, ...) are mirrored into
``.venv/bin`` with their ``#!`` line pointing at ``.venv/bin/python``, so e.g.
``.venv/bin/torchrun -m mdr_graph ...`` finds this clone's package.

Run with the cached venv's python: ``$VENV/bin/python tools/venv_overlay.py $VENV .venv``.
Stdlib only; idempotent (re-made only when the cached venv it sits on changes).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

SKIP = ("python", "activate", "Activate.ps1", "mdr-graph")
STAMP = ".mdr-graph-base"


def purelib(python: Path) -> str:
    return subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   text=True).strip()


def main(base_arg: str, target_arg: str) -> int:
    base, target = Path(base_arg).absolute(), Path(target_arg).absolute()
    if target.is_symlink():  # the earlier layout linked .venv to the shared venv itself
        target.unlink()
    if Path(sys.prefix).absolute() != base:
        sys.exit(f"run this with {base}/bin/python, not {sys.executable}")
    base_site = sysconfig.get_paths()["purelib"]
    # The earlier layout installed the package into the shared venv, pointing at one clone;
    # an old checkout's `make` may still do so. Remove it, every time: it must not shadow this clone.
    if list(Path(base_site).glob("__editable__.mdr_graph-*.pth")):
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "--quiet", "--yes", "mdr-graph"], check=True)
    stamp = target / STAMP
    if stamp.is_file() and stamp.read_text().strip() == str(base) and (target / "bin" / "python").exists():
        return 0
    shutil.rmtree(target, ignore_errors=True)
    venv.EnvBuilder(with_pip=False, symlinks=True).create(target)
    site = Path(purelib(target / "bin" / "python"))
    (site / "_mdr_graph_base.pth").write_text(f"import site; site.addsitedir({base_site!r})\n")
    shebang = f"#!{base / 'bin' / 'python'}"
    for script in sorted((base / "bin").iterdir()):
        if script.name.startswith(SKIP) or not script.is_file():
            continue
        with open(script, "rb") as f:
            first = f.readline().decode(errors="replace").rstrip("\n")
        if not first.startswith(shebang):
            continue
        mirror = target / "bin" / script.name
        mirror.write_text(f"#!{target / 'bin' / 'python'}\n" + script.read_text().split("\n", 1)[1])
        mirror.chmod(0o755)
    stamp.write_text(f"{base}\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
