#!/usr/bin/env bash
# Install OneWindow with its test extras into one virtualenv per supported Python found on this machine
# (3.11 and 3.13; at least the default python3), then run ruff, mypy and the whole test suite in each.
# Extra arguments go to pytest, e.g.:  bash scripts/test.sh -k soap
set -euo pipefail
cd "$(dirname "$0")/.."

# An interpreter counts only if it runs (a pyenv shim for an inactive version does not).
find_python() {
    local version=$1 candidate
    for candidate in "python$version" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version"*/bin/"python$version"; do
        if "$candidate" -c 'import sys' >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

# The console's tests drive Debian's Chromium (Playwright never downloads a browser here); as root (CI) install it
# when missing. Elsewhere those tests are skipped with the reason, or fail under CI=true.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi

pythons=()
for version in 3.11 3.13; do
    if found=$(find_python "$version"); then pythons+=("$found"); fi
done
if [ ${#pythons[@]} -eq 0 ]; then pythons=(python3); fi

status=0
first=1
for py in "${pythons[@]}"; do
    version="$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    venv=".venv-test-$version"
    echo "== Python $version ($py) -> $venv"
    [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -e ".[test]"
    if [ "$first" = 1 ]; then
        "$venv/bin/ruff" check .
        "$venv/bin/ruff" format --check .
        "$venv/bin/mypy"
        first=0
    fi
    "$venv/bin/pytest" -q -p no:cacheprovider "$@" || status=$?
done
exit "$status"
