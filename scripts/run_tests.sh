#!/usr/bin/env bash
# Set up .venv if needed, install the Debian packages the tests use when they are missing and this
# user may (root, or passwordless sudo), then run the whole test suite. Extra arguments go to pytest.
# Without the right to install, one line says which tests will be skipped and the command that
# would install what they need (tests/external_tools.py decides both, as the skips do).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
read -r -a missing <<<"$(.venv/bin/python -m tests.external_tools missing)"
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    else
        as_root=(none)
    fi
    if [ "${as_root[*]}" != none ]; then
        echo "Installing the Debian packages the tests need: ${missing[*]}"
        "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
            && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
            || echo "run_tests: apt-get could not install ${missing[*]} (see above)" >&2
    fi
    # Still missing (no right to install, or apt-get failed): one line, then the tests run anyway.
    .venv/bin/python -m tests.external_tools skip-note
fi
# Two workers (pytest-xdist): each test module runs whole on one worker, and the modules sharing the
# session's suite and report run together (tests/conftest.py). ANNCORE_TEST_WORKERS=0 runs in one process.
exec .venv/bin/python -m pytest -n "${ANNCORE_TEST_WORKERS:-2}" --dist loadgroup "$@"
