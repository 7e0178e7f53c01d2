# Sourced by scripts/demo and scripts/test: make .venv and install the project into it, with
# the extras in $EXTRAS (scripts/test: dev,redis; scripts/demo: demo, which is much smaller).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python=${PYTHON:-}
if [ -z "$python" ]; then
    for candidate in python3.11 python3 python; do
        if command -v "$candidate" >/dev/null 2>&1; then python=$candidate; break; fi
    done
fi
[ -n "$python" ] || { echo "Python 3.10+ is needed" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv with $($python --version)"
    "$python" -m venv .venv
fi

extras=${EXTRAS:-dev,redis}
# Reinstall only when the dependency list or the extras changed since the last install.
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)-${extras//,/-}
if [ ! -f "$stamp" ]; then
    echo "==> installing middlewares with its $extras extras"
    # pip warns about every package missing from this machine's local mirrors: not our news.
    quiet_pip() { .venv/bin/python -m pip install --quiet "$@" 2> >(grep -v "is ignored: it is neither" >&2); }
    quiet_pip --upgrade pip
    quiet_pip -e ".[$extras]"
    rm -f .venv/.installed-*
    touch "$stamp"
fi

# Debian packages the test suite talks to: a real browser and a real Redis.
apt_install() {
    local missing=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "==> installing ${missing[*]} from Debian's packages"
    local sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}
