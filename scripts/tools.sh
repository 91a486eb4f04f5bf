#!/usr/bin/env bash
# Installs every tool the tests, the demo and the template checks need into .tools/ (git-ignored),
# one virtualenv per tool group so their pinned dependencies never fight each other.
# Idempotent: a group whose stamp matches its pins is skipped.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
mkdir -p "$tools/bin"

# group name -> pip requirements (pins say exactly what CI gets)
declare -A groups=(
  [ministack]="ministack==1.5.33"
  [moto]="moto[server]==5.2.5"
  [lambda]="cargo-lambda==1.9.2 ziglang==0.17.1"
  [sam]="aws-sam-cli==1.170.0 cfn-lint==1.58.0"
)
# executables each group exposes in .tools/bin
declare -A exposes=(
  [ministack]="ministack"
  [moto]="moto_server"
  [lambda]="cargo-lambda"
  [sam]="sam cfn-lint"
)

python=${PYTHON:-python3}
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(ministack moto lambda sam)

for group in "${wanted[@]}"; do
  reqs=${groups[$group]:?unknown tool group: $group}
  venv="$tools/venv-$group"
  stamp="$venv/.pins"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$reqs" ]; then
    echo "tools: $group up to date"
  else
    echo "tools: installing $group ($reqs)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $reqs
    echo "$reqs" > "$stamp"
  fi
  for exe in ${exposes[$group]}; do
    ln -sf "$venv/bin/$exe" "$tools/bin/$exe"
  done
  # cargo-lambda finds zig on PATH
  if [ "$group" = lambda ]; then
    ln -sf "$venv/bin/python-zig" "$tools/bin/python-zig" 2>/dev/null || true
  fi
done
