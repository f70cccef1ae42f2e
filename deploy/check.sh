#!/usr/bin/env bash
# Offline validation of deploy/ (no Docker engine or cluster needed); what it checks is listed in deploy/check.py:
#  - Prometheus config and rules pass promtool (Debian's prometheus package; installed when missing and root);
#  - every kustomize render (base, overlays) against strict schemas, Pod Security "restricted", selectors and labels,
#    and the engine's settings; Dockerfiles, .dockerignore and compose files;
#  - with a scrape of a running node (METRICS_FILE=path), every metric, label and unit the alerts, recording rules and
#    dashboards use. deploy/check-test.sh proves it refuses a broken copy of each artifact.
set -euo pipefail
deploy="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$deploy")"

install() {  # Debian package, what needs it
  if [ "$(id -u)" -eq 0 ]; then
    echo "deploy/check.sh: installing $2 (Debian package $1)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null
  else
    echo "deploy/check.sh: $2 missing (apt-get install $1)" >&2; exit 1
  fi
}
command -v promtool >/dev/null || install prometheus promtool
command -v kubectl >/dev/null || install kubectl "kubectl (kustomize)"
python3 -c 'import yaml' 2>/dev/null || install python3-yaml "PyYAML"

promtool check config "$deploy/prometheus/prometheus.yml" >/dev/null
python3 - "$deploy/prometheus/prometheus.yml" <<'PY' | while read -r rules; do promtool check rules "$rules" >/dev/null; done
import glob, os, sys, yaml
config = sys.argv[1]
for pattern in (yaml.safe_load(open(config)) or {}).get("rule_files") or []:
    for path in sorted(glob.glob(os.path.join(os.path.dirname(config), pattern))):
        print(path)
PY

# Rule unit tests (promtool test rules), where the rules have them.
for tests in "$deploy"/prometheus/*.test.yml; do
  [ -e "$tests" ] && (cd "$deploy/prometheus" && promtool test rules "$(basename "$tests")" >/dev/null)
done

PYTHONDONTWRITEBYTECODE=1 python3 "$deploy/check.py" "$deploy" "$root" "${METRICS_FILE:-}"
echo "deploy/check.sh: OK"
