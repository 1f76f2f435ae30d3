#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks for the toolkit: system packages, uv, then the venv.
# Idempotent and quiet when nothing is missing; `make up` and `make test` both start with it.
# Extra package lists may be given as arguments (the tests' browser: local_stack/test-packages.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for list in local_stack/system-packages.txt "$@"; do
  while read -r package proof; do
    [[ -z "$package" || "$package" == \#* ]] && continue
    [[ -e "$proof" ]] || missing+=("$package")
  done < "$list"
done

if (( ${#missing[@]} )); then
  if [[ $(id -u) -eq 0 ]]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else
    echo "missing system packages: ${missing[*]}" >&2
    echo "install them with: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  echo "installing system packages: ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  # Debian's packages start their services when an init system runs; the stack runs its own copies.
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A `pip install --user` of an earlier run puts uv where a fresh shell's PATH may not look.
export PATH="$HOME/.local/bin:$PATH"
if ! command -v uv >/dev/null 2>&1; then
  echo "installing uv (from PyPI)"
  python3 -m pip install --quiet --user uv 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages uv
fi

uv sync --frozen --all-extras --quiet
