#!/usr/bin/env bash
# The one entry point for developers and CI:
#   bash contrib/dev.sh test [pytest args...]   lint, type and import-layer checks, then the tests
#   bash contrib/dev.sh demo [demo args...]     the end-to-end demo
# On a fresh Debian/Ubuntu machine it installs what is missing (Prosody from Debian packages,
# python3-venv), makes .venv in the repository and installs the project into it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.dev-install-stamp"

say() { printf 'dev.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

usage() {
    cat >&2 <<USAGE
usage: bash contrib/dev.sh test [pytest args...]
       bash contrib/dev.sh demo [demo args...]
USAGE
    exit 2
}

# Runs apt-get as root, through sudo when we are not root.
apt_install() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "need root (or sudo) to run: apt-get install $*"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null || die "no apt-get here; install these yourself: $*"
    say "installing $* (apt)"
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

ensure_prosody() {
    if command -v prosody >/dev/null && command -v prosodyctl >/dev/null \
        && command -v openssl >/dev/null; then
        return
    fi
    apt_install prosody lua-sec lua-event lua-unbound openssl
    # Debian's postinst does not start it in containers (policy-rc.d); tests run their own.
}

# HAProxy in front of several shards (jicofo-stress --local --shards N and its test).
ensure_haproxy() {
    command -v haproxy >/dev/null || apt_install haproxy
    # Debian's postinst may start the packaged service; ours run from temp dirs only.
}

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        command -v "$PYTHON" >/dev/null || die "$PYTHON not found; Python 3.11 or newer is needed"
        "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
            || die "$PYTHON is $("$PYTHON" -V 2>&1); Python 3.11 or newer is needed"
        # Debian's python3 has no venv/ensurepip without this package.
        if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
            apt_install python3-venv
        fi
        say "creating $VENV"
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
        rm -f "$STAMP"
    fi
    local want
    want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
        say "installing the project into .venv (pip install -e '.[test]')"
        (cd "$ROOT" && "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]')
        printf '%s\n' "$want" >"$STAMP"
    fi
}

[ $# -ge 1 ] || usage
command="$1"
shift

case "$command" in
    test)
        ensure_prosody
        ensure_haproxy
        ensure_venv
        cd "$ROOT"
        lint_paths=()
        for path in jicofo tests bench; do
            [ -e "$path" ] && lint_paths+=("$path")
        done
        say "ruff check ${lint_paths[*]}"
        "$VENV/bin/ruff" check "${lint_paths[@]}"
        say "mypy (the jicofo package; settings in pyproject.toml)"
        "$VENV/bin/mypy"
        say "lint-imports (the layer contracts in pyproject.toml)"
        "$VENV/bin/lint-imports"
        say "pytest"
        exec "$VENV/bin/python" -m pytest -q "$@"
        ;;
    demo)
        ensure_prosody
        ensure_venv
        cd "$ROOT"
        exec "$VENV/bin/python" -m jicofo.demo "$@"
        ;;
    -h | --help | help)
        usage
        ;;
    *)
        say "unknown command: $command"
        usage
        ;;
esac
