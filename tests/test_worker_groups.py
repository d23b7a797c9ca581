"""tests/conftest.py's worker groups: under ``scripts/run_tests.sh`` (pytest-xdist, ``--dist loadgroup``)
a module runs whole on one worker, and the modules using the session's suite or report share one."""

from __future__ import annotations

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
