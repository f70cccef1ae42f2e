#!/usr/bin/env bash
# Offline validation of deploy/ (no Docker engine or cluster needed):
#  - Prometheus config and alert rules pass promtool (Debian's prometheus package; installed when missing and root);
#  - the Grafana dashboard and every YAML manifest parse;
#  - every LOYALTY_* / Loyalty__* setting the manifests set is one the engine reads (named in its source);
#  - with a scrape of a running node (METRICS_FILE=path), every metric the dashboard and alerts use exists.
set -euo pipefail
deploy="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$deploy")"

if ! command -v promtool >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "deploy/check.sh: installing promtool (Debian package prometheus)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "deploy/check.sh: promtool missing (apt-get install prometheus)" >&2; exit 1
  fi
fi
promtool check config "$deploy/prometheus/prometheus.yml"
promtool check rules "$deploy/prometheus/alerts.yml"

python3 - "$deploy" "$root" "${METRICS_FILE:-}" <<'PY'
import json, os, re, subprocess, sys
import yaml
deploy, root, metrics_file = sys.argv[1], sys.argv[2], sys.argv[3]
problems = []

dashboards = [os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(deploy, "grafana")) for f in fs if f.endswith(".json")]
exprs = []
for path in dashboards:
    dash = json.load(open(path))
    for panel in dash.get("panels", []):
        for target in panel.get("targets", []):
            exprs.append(target["expr"])
alerts = yaml.safe_load(open(os.path.join(deploy, "prometheus", "alerts.yml")))
exprs += [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]

manifests = []
for dp, _, fs in os.walk(deploy):
    for f in fs:
        if f.endswith((".yml", ".yaml")):
            path = os.path.join(dp, f)
            try:
                manifests += [(path, doc) for doc in yaml.safe_load_all(open(path)) if doc is not None]
            except yaml.YAMLError as e:
                problems.append(f"{path}: does not parse: {e}")

# Settings named in manifests must be read somewhere in the engine's source.
source = subprocess.run(["git", "-C", root, "grep", "-h", "-o", "-E", r"LOYALTY_[A-Z_]+|Loyalty:[A-Za-z:]+", "--", "*.cs"],
                        capture_output=True, text=True).stdout.split()
known = set(source) | {s.replace(":", "__") for s in source if s.startswith("Loyalty:")}
settings = set()
for path, doc in manifests:
    text = yaml.safe_dump(doc)
    for name in re.findall(r"\b(LOYALTY_[A-Z_]+|Loyalty__[A-Za-z_]+)\b", text):
        settings.add(name)
        if name not in known:
            problems.append(f"{os.path.relpath(path, root)}: sets {name}, which the engine never reads")

if metrics_file:
    exported = set()
    for line in open(metrics_file):
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            exported.add(name)
            if kind == "histogram":
                exported |= {name + "_bucket", name + "_sum", name + "_count"}
            if kind == "counter" and not name.endswith("_total"):
                exported.add(name + "_total")
    # OpenTelemetry exports an instrument once it has a value: a counter of failures may be absent from a healthy
    # scrape, so an engine instrument declared in the source ("loyalty.rpc.failures") counts as exported too.
    declared = set(subprocess.run(["git", "-C", root, "grep", "-h", "-o", "-E", r'"loyalty\.[a-z.]+"', "--", "*.cs"],
                                  capture_output=True, text=True).stdout.split())
    declared = {d.strip('"').replace(".", "_") for d in declared}
    for expr in exprs:
        # Metric names, not label names (a label is followed by a matcher).
        for name in set(re.findall(r"\b((?:loyalty|orleans|http|dotnet|kestrel|process)_[a-z0-9_]+)\b(?!\s*(?:=|!=|=~|!~))", expr)):
            base = re.sub(r"_(bucket|sum|count|total|milliseconds|seconds|bytes)+$", "", name)
            while base != (trimmed := re.sub(r"_(bucket|sum|count|total|milliseconds|seconds|bytes)$", "", base)):
                base = trimmed
            if name not in exported and not (name.startswith("loyalty_") and base in declared):
                problems.append(f"dashboard/alert uses {name}, which the engine does not export")

print(f"deploy/check.sh: {len(dashboards)} dashboard(s), {len(exprs)} queries, {len(manifests)} manifest documents, "
      f"{len(settings)} settings checked" + (f", metrics checked against {metrics_file}" if metrics_file else ""))
if problems:
    print("\n".join("deploy/check.sh: " + p for p in dict.fromkeys(problems)))
    sys.exit(1)
PY
echo "deploy/check.sh: OK"
