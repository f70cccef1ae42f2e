#!/usr/bin/env bash
# Proves deploy/check.sh refuses broken artifacts: for each case, a fresh copy of deploy/ (with the repository's
# sources linked beside it) is broken in one way, and check.sh must fail on it with the expected reason — a reason the
# unbroken copy does not give. Needs METRICS_FILE (a scrape of a running node), as the metric checks do.
#   METRICS_FILE=/path/to/scrape.txt deploy/check-test.sh
set -euo pipefail
deploy="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$deploy")"
: "${METRICS_FILE:?set METRICS_FILE to a scrape of a running node (its /metrics)}"
metrics="$(cd "$(dirname "$METRICS_FILE")" && pwd)/$(basename "$METRICS_FILE")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fresh() {
  rm -rf "$work/repo" && mkdir -p "$work/repo"
  cp -r "$deploy" "$work/repo/deploy"
  cp "$root/.dockerignore" "$work/repo/.dockerignore"
  local entry
  for entry in "$root"/* "$root"/.editorconfig; do
    case "$(basename "$entry")" in deploy|tests|loadtests) ;; *) [ -e "$entry" ] && ln -s "$entry" "$work/repo/$(basename "$entry")" ;; esac
  done
  copy="$work/repo/deploy"
}

run_check() { METRICS_FILE="$metrics" "$work/repo/deploy/check.sh" > "$work/out.txt" 2>&1; }

fresh
baseline_status=0
run_check || baseline_status=$?
cp "$work/out.txt" "$work/baseline.txt"

# Picks real metric names from the scrape, so the broken copies differ from a valid query in one thing only.
python3 - "$metrics" > "$work/names.txt" <<'PY'
import sys
kinds = {}
for line in open(sys.argv[1]):
    if line.startswith("# TYPE "):
        name, kind = line.split()[2:4]
        kinds[name] = kind
counter = next(n for n, k in kinds.items() if k == "counter")
histogram = next(n for n, k in kinds.items() if k == "histogram" and n.endswith(("_seconds", "_milliseconds")))
print(counter if counter.endswith("_total") else counter + "_total", histogram)
PY
read -r counter seconds_histogram < "$work/names.txt"
case "$seconds_histogram" in
  *_seconds) wrong_unit=ms; renamed="${seconds_histogram%_seconds}_milliseconds" ;;
  *) wrong_unit=s; renamed="${seconds_histogram%_milliseconds}_seconds" ;;
esac

edit_yaml() {  # file, python statements on `doc` (first document)
  python3 - "$1" "$2" <<'PY'
import sys, yaml
path, code = sys.argv[1], sys.argv[2]
doc = yaml.safe_load(open(path))
exec(code)
yaml.safe_dump(doc, open(path, "w"), sort_keys=False)
PY
}
add_panel() {  # expr, unit
  python3 - "$copy/grafana/dashboards" "$1" "$2" <<'PY'
import glob, json, sys
path = sorted(glob.glob(sys.argv[1] + "/*.json"))[0]
dash = json.load(open(path))
dash["panels"].append({"type": "timeseries", "title": "broken", "fieldConfig": {"defaults": {"unit": sys.argv[3]}},
                       "targets": [{"refId": "A", "expr": sys.argv[2]}]})
json.dump(dash, open(path, "w"))
PY
}
add_alert() {  # expr
  rules="$(python3 -c 'import sys, yaml; print((yaml.safe_load(open(sys.argv[1])).get("rule_files") or ["alerts.yml"])[0])' "$copy/prometheus/prometheus.yml")"
  edit_yaml "$copy/prometheus/$rules" "doc['groups'][0]['rules'].append({'alert': 'Broken', 'expr': '''$1''', 'for': '5m', 'labels': {'severity': 'ticket'}})"
}

cases=0 refused=0 failures=()
expect() {  # name, expected message (a fixed string)
  cases=$((cases + 1))
  local status=0
  run_check || status=$?
  if grep -qF -- "$2" "$work/baseline.txt"; then
    failures+=("$1: the unbroken copy already reports '$2'")
  elif [ "$status" -ne 0 ] && grep -qF -- "$2" "$work/out.txt"; then
    refused=$((refused + 1))
    echo "check-test: refused  $1: $(grep -F -- "$2" "$work/out.txt" | head -1 | cut -c1-200)"
  else
    failures+=("$1: check.sh exited $status without '$2'")
    sed 's/^/    /' "$work/out.txt" | tail -15
  fi
  fresh
}

sed -i 's/readinessProbe:/readinesProbe:/' "$copy/kubernetes/base/gateway.yaml"
expect "misspelt readinessProbe" "readinesProbe: unknown field"

sed -i 's#^apiVersion: apps/v1$#apiVersion: apps/v9#' "$copy/kubernetes/base/silo.yaml"
expect "apps/v9" "apiVersion/kind apps/v9 StatefulSet is not one this project deploys"

sed -i 's/^  Loyalty__ShutdownTimeout: .*/  Loyalty__ShutdownTimeout: "00:01:30"/' "$copy/kubernetes/base/config.yaml"
expect "ShutdownTimeout past the grace period" "ShutdownTimeout 00:01:30 + preStop"

sed -i 's/^  Loyalty__ShutdownTimeout: .*/  Loyalty__ShutdownTimeout: "40s"/' "$copy/kubernetes/base/config.yaml"
expect "ShutdownTimeout the engine refuses" "Loyalty__ShutdownTimeout='40s' is not a positive duration"

sed -i 's/^  LOYALTY_METRICS_PORT: .*/  LOYALTY_METRICS_PORT: "9465"/' "$copy/kubernetes/base/config.yaml"
expect "metrics port setting unlike the container port" "LOYALTY_METRICS_PORT=9465 but its containerPort metrics is 9464"

sed -i '/seccompProfile:/,/type: RuntimeDefault/d' "$copy/kubernetes/base/silo.yaml"
expect "missing seccompProfile" "StatefulSet/loyaltygrains-silo container silo: seccompProfile must be RuntimeDefault"

sed -i 's#image: loyaltygrains/gateway:.*#image: loyaltygrains/gateway:latest#' "$copy/kubernetes/base/gateway.yaml"
expect ":latest image" "image 'loyaltygrains/gateway:latest' is not pinned"

cat > "$copy/kubernetes/base/secret.yaml" <<'EOF'
apiVersion: v1
kind: Secret
metadata:
  name: loyaltygrains-secrets
  namespace: loyaltygrains
stringData:
  LOYALTY_AUTH_SIGNING_KEY: CHANGE-ME
EOF
sed -i 's/^  - config.yaml$/  - config.yaml\n  - secret.yaml/' "$copy/kubernetes/base/kustomization.yaml"
expect "a Secret in the base" "a Secret in the base"

sed -i '0,/automountServiceAccountToken: false/{s/automountServiceAccountToken: false/automountServiceAccountToken: true/}' "$copy/kubernetes/base/gateway.yaml"
expect "API token mounted without a Role" "mounts an API token for loyaltygrains-gateway"

sed -i '/^kind: PodDisruptionBudget/,$ s/app.kubernetes.io\/name: loyaltygrains-silo$/app.kubernetes.io\/name: loyaltygrains-silos/' "$copy/kubernetes/base/silo.yaml"
expect "PodDisruptionBudget selecting nothing" "PodDisruptionBudget/loyaltygrains-silo: selects no pod"

sed -i 's/^        orleans\/clusterId: .*/        orleans\/clusterId: other/' "$copy/kubernetes/base/silo.yaml"
expect "orleans/clusterId label unlike LOYALTY_CLUSTER_ID" "label orleans/clusterId=other but LOYALTY_CLUSTER_ID"

sed -i '0,/- port: 11111/{s/- port: 11111/- port: 11112/}' "$copy/kubernetes/base/network-policy.yaml"
expect "NetworkPolicy on a port nobody listens on" "ingress port 11112 is not a port of"

add_alert "sum by (instance) (rate(${counter}{no_such_label=\"x\"}[5m])) > 0"
expect "alert on a label that does not exist" "matches label no_such_label on ${counter}"

add_alert "sum by (no_such_label) (rate(${counter}[5m])) > 0"
expect "alert grouping by a label that does not exist" "groups by label no_such_label"

add_alert "rate(loyalty_no_such_metric_total[5m]) > 0"
expect "alert on a metric that does not exist" "uses loyalty_no_such_metric_total, which the engine does not export"

add_panel "histogram_quantile(0.99, sum by (le) (rate(${seconds_histogram}_bucket[5m])))" "$wrong_unit"
expect "dashboard panel in the wrong unit" "but the panel's unit is '$wrong_unit'"

add_panel "histogram_quantile(0.99, sum by (le) (rate(${renamed}_bucket[5m])))" "s"
expect "dashboard query naming the wrong unit" "uses ${renamed}_bucket, which the engine does not export"

sed -i 's#^FROM mcr.microsoft.com/dotnet/sdk:.* AS build#FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build#' "$copy/docker/silo.Dockerfile"
expect "Dockerfile on a moving base image" "base image mcr.microsoft.com/dotnet/sdk:10.0 is not pinned"

sed -i 's/^USER .*/USER app/' "$copy/docker/gateway.Dockerfile"
expect "Dockerfile with a non-numeric user" "gateway.Dockerfile: the runtime stage must switch to a numeric non-root USER"

sed -i '/LoyaltyGrains.Analytics.csproj/d' "$copy/docker/silo.Dockerfile"
expect "Dockerfile restoring without a referenced project" "LoyaltyGrains.Analytics.csproj is referenced by the restored project but not copied"

sed -i '/^\*\*\/obj\/$/d' "$work/repo/.dockerignore"
expect ".dockerignore letting obj/ in" "must exclude **/obj/"

sed -i 's#dockerfile: deploy/docker/gateway.Dockerfile#dockerfile: deploy/docker/gateway.dockerfile#' "$copy/docker-compose.yml"
expect "compose building a Dockerfile that does not exist" "builds deploy/docker/gateway.dockerfile, which does not exist"

echo "check-test: $refused of $cases broken copies refused with the expected reason (the unbroken copy: check.sh exit $baseline_status)"
if [ "${#failures[@]}" -gt 0 ]; then
  printf 'check-test: NOT refused: %s\n' "${failures[@]}"
  exit 1
fi
