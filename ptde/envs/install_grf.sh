#!/usr/bin/env bash
# Install Google Research Football (gfootball 2.10.2, the official engine) into a Python env.
#
#   bash ptde/envs/install_grf.sh [PYTHON]          # PYTHON defaults to .venv/bin/python
#
# Why a script and not a pyproject extra: gfootball ships only an sdist whose build compiles a
# C++ engine (~7 min on 2 cores) against system SDL2 and Boost.Python, and its build script
# imports psutil (so it needs `--no-build-isolation` with psutil and wheel already installed).
# The wheel is therefore built once into a cache OUTSIDE the repository and every later install
# (a fresh venv, a CI job restoring the cache) takes seconds.
#
# Environment:
#   PTDE_WHEEL_CACHE  wheel cache directory (default $HOME/.cache/ptde/wheels); CI caches it
#                     keyed on OS + Python version, since the wheel is tagged cp3XX-linux.
#   PTDE_PIP_ARGS     extra pip arguments for every pip call, e.g. "-c /tmp/constraints.txt".
#   PTDE_SKIP_APT=1   do not touch system packages (they must already be there).
#
# Pins: gym==0.25.2 (with gym 0.26, gfootball's `env.reset()` fails on the new reset API); six
# is imported by gfootball but not declared. Do NOT use the PyPI package `football-env`: it is
# an unofficial fork.
set -euo pipefail

PY=${1:-.venv/bin/python}
CACHE=${PTDE_WHEEL_CACHE:-$HOME/.cache/ptde/wheels}
GF_VERSION=2.10.2
read -r -a PIP_ARGS <<<"${PTDE_PIP_ARGS:-}"

APT_PKGS=(
  git cmake build-essential libgl1-mesa-dev python3-dev
  libsdl2-dev libsdl2-image-dev libsdl2-ttf-dev libsdl2-gfx-dev
  libboost-thread-dev libboost-system-dev libboost-filesystem-dev libboost-python-dev
)

if [[ ! -x "$PY" ]]; then
  echo "install_grf.sh: no Python interpreter at '$PY'" >&2
  exit 1
fi
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")
pip() { "$PY" -m pip "$@" "${PIP_ARGS[@]}"; }

# ---------------------------------------------------------------- 1. system packages
if [[ "${PTDE_SKIP_APT:-0}" != 1 ]]; then
  missing=()
  for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    SUDO=""
    [[ $(id -u) -ne 0 ]] && SUDO=sudo
    echo "install_grf.sh: apt-installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

# ---------------------------------------------------------------- 2. the wheel, built once
mkdir -p "$CACHE"
tag=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
shopt -s nullglob
wheels=("$CACHE"/gfootball-"$GF_VERSION"-"$tag"-*.whl)
if ((${#wheels[@]} == 0)); then
  echo "install_grf.sh: building gfootball $GF_VERSION wheel into $CACHE (about 7 min on 2 cores)"
  pip install -q psutil wheel
  start=$(date +%s)
  # The engine's build script runs `python3 -c 'import psutil'`: put this interpreter first on
  # PATH so that `python3` is the one that has psutil.
  PATH="$(dirname "$PY"):$PATH" pip wheel --no-deps --no-build-isolation -w "$CACHE" "gfootball==$GF_VERSION"
  echo "install_grf.sh: wheel built in $(($(date +%s) - start)) s"
fi

# ---------------------------------------------------------------- 3. install from the cache
# --only-binary keeps pip from ever falling back to building the sdist from PyPI.
pip install -q --find-links "$CACHE" --only-binary gfootball "gfootball==$GF_VERSION" "gym==0.25.2" six psutil
"$PY" -c 'import gfootball.env as e; import gfootball, gym; print("gfootball", "ok, gym", gym.__version__)'
