#!/usr/bin/env bash
# Regenerates the lm-evaluation-harness fixtures with the real harness (CPU only,
# no model or data hub): lm-eval 0.4.13 in its own venv with torch and
# transformers from PyPI, and lm-eval 0.4.2 in a second venv that reuses the
# first one's packages. Outputs go to Tests/TrackStoreTests/Fixtures/lm-eval-harness/.
# The tests read the committed outputs and never need torch.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${LMEVAL_VENV:-$here/.venv}"
work="$(mktemp -d /tmp/track-lmeval.XXXXXX)"
fixtures="$here/../TrackStoreTests/Fixtures/lm-eval-harness"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q "lm-eval[hf]==0.4.13" torch transformers accelerate
fi
if [ ! -x "$venv-042/bin/python" ]; then
    python3 -m venv "$venv-042"
    site="$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')"
    echo "$site" > "$("$venv-042/bin/python" -c 'import site; print(site.getsitepackages()[0])')/base.pth"
    "$venv-042/bin/pip" install -q --no-deps "lm-eval==0.4.2"
fi
rm -rf "$fixtures"
"$venv/bin/python" "$here/make_fixtures.py" "$work" "$fixtures" lm-eval-0.4.13
"$venv-042/bin/python" "$here/make_fixtures.py" "$work" "$fixtures" lm-eval-0.4.2
rm -rf "$work"
echo "fixtures in $fixtures"
