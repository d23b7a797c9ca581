"""A copy of this Python that other OS users can run, so a class server started as root really runs
as its unprivileged ``anncore-mlflow`` user in the tests even when this Python lives under ``/root``.

The interpreter and its standard library (not its site-packages) are copied once to
``/var/tmp/anncore-open-python-<version>-<hash>``, with a venv whose ``.pth`` adds this
environment's site-packages (``anncore`` and MLflow from there). The copy's interpreter was linked
with a run path under ``/root``, so it runs with ``LD_LIBRARY_PATH`` set to its own ``lib``.

Those site-packages and this checkout stay where they are; a folder above them that others cannot
enter (a checkout in a ``mktemp -d`` folder, mode 0700) gets the search bit for others (enter, not
list) until the test process exits, when its mode is put back.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from experiments.server import class_server


def needed() -> bool:
    """True as root when this Python sits where the service user cannot go."""
    return os.geteuid() == 0 and class_server.closed_to_others() is not None


def _copy_interpreter(base: Path, target: Path) -> None:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (target / "bin").mkdir(parents=True)
    shutil.copy2(Path(sys._base_executable).resolve(), target / "bin" / version)
    shutil.copytree(base / "lib" / version, target / "lib" / version, symlinks=True,
                    ignore=shutil.ignore_patterns("site-packages", "__pycache__", "test"))
    for library in (base / "lib").glob("libpython*.so*"):
        shutil.copy2(library, target / "lib" / library.name, follow_symlinks=False)
    environment = {**os.environ, "LD_LIBRARY_PATH": str(target / "lib")}
    subprocess.run([str(target / "bin" / version), "-m", "venv", "--without-pip", str(target / "venv")],
                   check=True, env=environment, timeout=300)
    site_packages = target / "venv" / "lib" / version / "site-packages"
    (site_packages / "anncore-shared.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    for root, folders, files in os.walk(target):
        for name in [*folders, *files]:
            path = Path(root) / name
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o044 | (0o011 if path.is_dir() or os.access(path, os.X_OK) else 0))
    target.chmod(0o755)


def _let_others_enter_until_exit(paths: list[Path]) -> None:
    """Give the folders above ``paths`` that other users cannot enter the search bit (``o+x``: enter,
    not list), and put their modes back when this process exits."""
    opened: dict[Path, int] = {}
    for path in paths:
        for parent in reversed(path.resolve().parents):
            mode = parent.stat().st_mode & 0o7777
            if not mode & 0o001 and parent not in opened:
                parent.chmod(mode | 0o001)
                opened[parent] = mode
    for parent, mode in opened.items():
        atexit.register(parent.chmod, mode)


def open_python() -> tuple[str, dict[str, str]]:
    """The copy's Python (built once) and the environment to run it with.

    Returns
    -------
    tuple of (str, dict)
        The copy's venv interpreter and ``os.environ`` plus ``LD_LIBRARY_PATH``.
    """
    base = Path(sys.base_prefix)
    tag = hashlib.sha256(f"{base}|{sys.prefix}|{sys.version}".encode()).hexdigest()[:10]
    target = Path("/var/tmp") / f"anncore-open-python-{sys.version_info.major}.{sys.version_info.minor}-{tag}"
    with open(f"{target}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "venv" / "bin" / "python").exists():
            shutil.rmtree(target, ignore_errors=True)
            _copy_interpreter(base, target)
    import experiments

    _let_others_enter_until_exit([Path(sysconfig.get_paths()["purelib"]), Path(experiments.__file__)])
    return str(target / "venv" / "bin" / "python"), {**os.environ, "LD_LIBRARY_PATH": str(target / "lib")}
