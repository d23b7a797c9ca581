"""tests/conftest.py's worker groups: under ``scripts/run_tests.sh`` (pytest-xdist, ``--dist loadgroup``)
a module runs whole on one worker, and the modules using the session's suite or report share one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import SESSION_RUNS


def _groups(items: list[pytest.Item]) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    for item in items:
        markers = [marker.args[0] for marker in item.iter_markers("xdist_group")]
        groups.setdefault(item.path.name, set()).update(markers)
    return groups


def test_every_module_is_one_group_and_the_session_runs_share_theirs(request: pytest.FixtureRequest) -> None:
    items = request.session.items
    groups = _groups(items)
    assert all(len(names) == 1 for names in groups.values()), groups
    users = {item.path.name for item in items if SESSION_RUNS & set(item.fixturenames)}
    for module, (group,) in groups.items():
        assert group == ("session-runs" if module in users else module), module


def test_the_report_and_suite_modules_are_grouped_when_collected_together(pytester: pytest.Pytester) -> None:
    """A fresh session collecting two modules that share ``full_report`` and one that does not."""
    pytester.makeconftest("from tests.conftest import pytest_collection_modifyitems, full_report  # noqa: F401")
    pytester.makepyfile(test_a="def test_a(full_report): pass", test_b="def test_b(full_report): pass",
                        test_c="def test_c(): pass")
    items, _ = pytester.inline_genitems()
    assert _groups(items) == {"test_a.py": {"session-runs"}, "test_b.py": {"session-runs"}, "test_c.py": {"test_c.py"}}


def test_under_xdist_a_module_runs_whole_on_one_worker(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The markers must be set before pytest-xdist reads them (it ignored them once, and each worker
    built the session's suite and report for itself): a real two-worker ``--dist loadgroup`` session
    runs each module's tests on one worker and builds each module fixture once."""
    repo = Path(__file__).resolve().parent.parent
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("BUILT_DIR", str(pytester.path))
    pytester.makeconftest("from tests.conftest import pytest_collection_modifyitems  # noqa: F401")
    module = (
        "import os, pathlib, pytest\n"
        "@pytest.fixture(scope='module')\n"
        "def built():\n"
        "    pathlib.Path(os.environ['BUILT_DIR'], f'built-{name}-{{os.getpid()}}').write_text('x')\n"
        "{tests}"
    )
    tests = "".join(f"def test_{i}(built): pass\n" for i in range(12))
    pytester.makepyfile(test_a=module.format(name="a", tests=tests), test_b=module.format(name="b", tests=tests))
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup", "-v")
    result.assert_outcomes(passed=24)
    workers: dict[str, set[str]] = {}
    for line in result.outlines:
        if line.startswith("[gw") and " PASSED " in line:
            workers.setdefault(line.split(" PASSED ")[-1].split("::")[0], set()).add(line.split()[0])
    assert set(workers) == {"test_a.py", "test_b.py"} and all(len(w) == 1 for w in workers.values()), workers
    assert sorted(path.name.rsplit("-", 1)[0] for path in pytester.path.glob("built-*")) == ["built-a", "built-b"]
