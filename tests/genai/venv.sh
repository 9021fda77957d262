#!/usr/bin/env bash
# Creates (or reuses) the venv of one GenAI instrumentation family and prints its path:
#   bash tests/genai/venv.sh <family> [dir]      # dir defaults to .venv-genai/<family>
# It holds the family's pins (tests/genai/families.py), this repo installed editable, and pytest.
# A stamp file keyed on the pins makes a second call a no-op. PYTHON picks the interpreter
# (default python3.11, else python3; these instrumentations need Python 3.10+, langchain 3.11+).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
family="${1:?usage: venv.sh <family> [dir]}"
dir="${2:-$root/.venv-genai/$family}"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
pins="$("$python" "$root/tests/genai/families.py" pins "$family")"
key="$(printf '%s\n%s\n' "$("$python" -c 'import sys; print(sys.version)')" "$pins" \
    | "$python" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:16])')"
stamp="$dir/.genai-stamp"
if [[ -x "$dir/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
    echo "$dir"
    exit 0
fi
rm -rf "$dir"
"$python" -m venv "$dir"
# shellcheck disable=SC2086
if ! "$dir/bin/python" -m pip install -q --disable-pip-version-check $pins -e "$root" \
    >"$dir/.pip.log" 2>&1; then
    grep -v "^WARNING: Location" "$dir/.pip.log" >&2 || true
    echo "venv.sh: installing the $family pins failed (log: $dir/.pip.log)" >&2
    exit 1
fi
echo "$key" >"$stamp"
echo "$dir"
