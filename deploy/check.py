"""Offline validation of deploy/ (run by deploy/check.sh; no Docker engine or cluster needed).

Kubernetes (every overlay rendered with `kubectl kustomize`, and the base):
  schemas (check_schemas.py: apiVersion/kind allow-list, known fields and types), the Namespace first and every object
  in it, no Secret shipped, Pod Security "restricted" and the project's own rules (read-only root, exact image
  versions, probes on declared ports, resources, service-account tokens only where a Role is bound), selectors and
  labels that agree (Services, workloads, PDBs, NetworkPolicies, ServiceMonitors, HPA, Ingress, RBAC), and the
  engine's settings: names it reads and values it accepts (ports, durations, ShutdownTimeout within the grace period).
Docker: exact base image versions, numeric non-root user, restore closure copied before `dotnet restore`, COPY sources
  that exist, .dockerignore keeping bin/ and obj/ out; compose files build with those Dockerfiles and pin images.
Prometheus and Grafana (with METRICS_FILE, a scrape of a running node): every metric an alert, recording rule or
  dashboard query uses is exported, every label it matches or groups by exists on it, and every panel's unit agrees
  with its metric's unit.
"""
import glob
import ipaddress
import json
import os
import re
import subprocess
import sys

import yaml

from check_schemas import SCHEMAS, validate

deploy, root, metrics_file = sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else "")
problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def rel(path):
    return os.path.relpath(path, root)


# ---------------------------------------------------------------------------------------------------------------
# What the engine reads: every *.cs file of the engine (tests, load tools, bin/ and obj/ excluded).
source_files = []
for dp, dns, fs in os.walk(root, followlinks=True):
    dns[:] = [d for d in dns if d not in ("bin", "obj", ".git", "node_modules", "deploy", "tests", "loadtests")]
    source_files += [os.path.join(dp, f) for f in fs if f.endswith(".cs")]
source = "\n".join(open(p, encoding="utf-8", errors="replace").read() for p in source_files)
string_literals = set(re.findall(r'"([^"\\\n]{1,200})"', source))


def engine_reads(name):
    """A LOYALTY_* variable or a Loyalty__A__B setting is read when its exact name is in the source, or its section
    ("Loyalty:A") is and the last part is a property bound from it."""
    if name.startswith("LOYALTY_"):
        return name in string_literals
    key = name.replace("__", ":")
    if key in string_literals:
        return True
    section, _, leaf = key.rpartition(":")
    return section in string_literals and re.search(r"\b" + re.escape(leaf) + r"\s*\{\s*get", source) is not None


# ---------------------------------------------------------------------------------------------------------------
# Values the engine accepts (silo/EngineSettings.cs, gateway host GatewaySettings.cs): .NET TimeSpan text, ports.
TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?$")


def timespan_seconds(text):
    """Seconds of a positive .NET TimeSpan in the invariant [d.]hh:mm[:ss[.fffffff]] form, or None."""
    m = TIMESPAN.match(text.strip())
    if not m:
        return None
    days, hours, minutes, seconds, fraction = m.groups()
    if int(hours) > 23 or int(minutes) > 59 or (seconds and int(seconds) > 59):
        return None
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds or 0) + float("0." + (fraction or "0"))
    return total if total > 0 else None


DURATION_SETTINGS = re.compile(r"(Timeout|Wait|Age|Interval|Delay|Period|ClockSkew)$")
PORT_SETTINGS = {"LOYALTY_GRPC_PORT": "grpc", "LOYALTY_METRICS_PORT": "metrics", "LOYALTY_SILO_PORT": "silo",
                 "LOYALTY_GATEWAY_PORT": "gateway"}


def check_setting(where, name, value):
    if not engine_reads(name):
        problem(where, f"sets {name}, which the engine never reads")
        return
    if name in PORT_SETTINGS:
        if not (value.isdigit() and 0 < int(value) < 65536):
            problem(where, f"{name}={value!r} is not a TCP port (the engine refuses to start)")
    elif name in ("LOYALTY_LISTEN_ADDRESS", "LOYALTY_ADVERTISED_ADDRESS"):
        try:
            ipaddress.ip_address(value)
        except ValueError:
            problem(where, f"{name}={value!r} is not an IP address (the engine refuses to start)")
    elif DURATION_SETTINGS.search(name):
        if timespan_seconds(value) is None:
            problem(where, f"{name}={value!r} is not a positive duration like 00:00:40 (the engine refuses it)")
    elif value.lower() in ("true", "false", "yes", "no", "on", "off") and value not in ("true", "false"):
        problem(where, f"{name}={value!r}: the engine reads booleans as true or false")


# ---------------------------------------------------------------------------------------------------------------
# Kubernetes
def load_yaml_docs(text, where):
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        problem(where, f"does not parse: {e}")
        return []


def selects(selector, labels):
    """Whether a LabelSelector (or a plain map, for Services) selects these labels."""
    if selector is None:
        return False
    match = selector.get("matchLabels", selector if "matchExpressions" not in selector else {}) or {}
    if not all(labels.get(k) == v for k, v in match.items() if isinstance(v, str)):
        return False
    for e in selector.get("matchExpressions", []) or []:
        has, value = e["key"] in labels, labels.get(e["key"])
        if e["operator"] == "In" and value not in e.get("values", []):
            return False
        if e["operator"] == "NotIn" and value in e.get("values", []):
            return False
        if e["operator"] == "Exists" and not has:
            return False
        if e["operator"] == "DoesNotExist" and has:
            return False
    return True


# PostgreSQL's releases have two numbers (15.10): for its images that is the exact version; for every other image a
# two-number tag is a moving channel (dotnet/sdk:10.0).
TWO_NUMBER_RELEASES = ("postgres", "cloudnative-pg/postgresql")


def image_pinned(image):
    if "@sha256:" in image:
        return re.fullmatch(r"[^@\s]+@sha256:[0-9a-f]{64}", image) is not None
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return False
    if name.endswith(TWO_NUMBER_RELEASES) and re.fullmatch(r"\d+\.\d+([\w.+-]*)?", tag):
        return True
    return re.fullmatch(r"v?\d+\.\d+\.\d+([\w.+-]*)?", tag) is not None


ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}


def check_pod(where, spec, objects, config_maps, role_bound_accounts):
    """Pod Security "restricted" (v1.32) plus this project's rules, for one pod template."""
    psc = spec.get("securityContext", {}) or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            problem(where, f"{flag} is not allowed (Pod Security restricted)")
    for volume in spec.get("volumes", []) or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            problem(where, f"volume {volume['name']}: type {sorted(kinds - ALLOWED_VOLUMES)} not allowed (restricted)")
    account = spec.get("serviceAccountName")
    if not account:
        problem(where, "no serviceAccountName (the namespace's default account is not used)")
    elif ("ServiceAccount", account) not in objects:
        problem(where, f"serviceAccountName {account} is not defined")
    automount = spec.get("automountServiceAccountToken")
    if automount is None:
        problem(where, "automountServiceAccountToken must be set explicitly")
    elif automount and account not in role_bound_accounts:
        problem(where, f"mounts an API token for {account}, which no RoleBinding uses: set automountServiceAccountToken false")
    elif not automount and account in role_bound_accounts:
        problem(where, f"{account} is bound to a Role but its token is not mounted")
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    for c in containers:
        cw = f"{where} container {c.get('name')}"
        csc = c.get("securityContext", {}) or {}
        seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problem(cw, "seccompProfile must be RuntimeDefault (or Localhost) on the pod or container (Pod Security restricted)")
        if not csc.get("runAsNonRoot", psc.get("runAsNonRoot")):
            problem(cw, "runAsNonRoot must be true (Pod Security restricted)")
        if csc.get("runAsUser", psc.get("runAsUser")) == 0:
            problem(cw, "runAsUser 0 is not allowed (Pod Security restricted)")
        if csc.get("allowPrivilegeEscalation") is not False:
            problem(cw, "allowPrivilegeEscalation must be false (Pod Security restricted)")
        if csc.get("privileged"):
            problem(cw, "privileged is not allowed")
        caps = csc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problem(cw, "capabilities must drop ALL (Pod Security restricted)")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            problem(cw, "capabilities may add only NET_BIND_SERVICE (Pod Security restricted)")
        if csc.get("readOnlyRootFilesystem") is not True:
            problem(cw, "readOnlyRootFilesystem must be true")
        for port in c.get("ports") or []:
            if "hostPort" in port:
                problem(cw, "hostPort is not allowed")
        image = c.get("image", "")
        if not image_pinned(image):
            problem(cw, f"image {image!r} is not pinned to an exact version (x.y.z tag or sha256 digest)")
        res = c.get("resources") or {}
        for need in ("cpu", "memory"):
            if need not in (res.get("requests") or {}):
                problem(cw, f"no {need} request")
        if "memory" not in (res.get("limits") or {}):
            problem(cw, "no memory limit")
        for ref in c.get("envFrom") or []:
            if "secretRef" in ref:
                problem(cw, f"envFrom a whole Secret ({ref['secretRef'].get('name')}): name the keys this container needs (least privilege)")
            if "configMapRef" in ref and ("ConfigMap", ref["configMapRef"].get("name")) not in objects:
                problem(cw, f"envFrom ConfigMap {ref['configMapRef'].get('name')} is not defined")
        # Settings this container gets, checked against what the engine reads and accepts.
        env = {}
        for ref in c.get("envFrom") or []:
            env.update(config_maps.get((ref.get("configMapRef") or {}).get("name"), {}))
        for var in c.get("env") or []:
            if "value" in var:
                env[var["name"]] = var["value"]
            elif "valueFrom" in var:
                env.setdefault(var["name"], None)
        for name, value in env.items():
            if name.startswith(("LOYALTY_", "Loyalty__")):
                if value is None:
                    if not engine_reads(name):
                        problem(cw, f"sets {name}, which the engine never reads")
                else:
                    check_setting(cw, name, str(value))
        yield c, env


def check_workload(where, kind, obj, objects, config_maps, role_bound_accounts, services):
    spec = obj["spec"]
    if kind == "CronJob":
        spec, kind = spec["jobTemplate"]["spec"], "Job"
    template = spec["template"]
    labels = (template.get("metadata") or {}).get("labels") or {}
    pod = template["spec"]
    if kind in ("Deployment", "StatefulSet") and not selects(spec.get("selector"), labels):
        problem(where, "selector does not select its own pod template's labels")
    if labels.get("app.kubernetes.io/part-of") != "loyaltygrains":
        problem(where, "pod template lacks app.kubernetes.io/part-of: loyaltygrains (NetworkPolicies select by it)")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    for container, env in check_pod(where, pod, objects, config_maps, role_bound_accounts):
        cw = f"{where} container {container['name']}"
        ports = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
        numbers = set(ports.values())
        for setting, port_name in PORT_SETTINGS.items():
            value = env.get(setting)
            if value and port_name in ports and str(ports[port_name]) != str(value):
                problem(cw, f"{setting}={value} but its containerPort {port_name} is {ports[port_name]}")
        pre_stop = ((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0)
        shutdown = env.get("Loyalty__ShutdownTimeout") or "00:00:30"
        seconds = timespan_seconds(shutdown)
        if kind != "Job" and seconds is not None and seconds + pre_stop >= grace:
            problem(cw, f"ShutdownTimeout {shutdown} + preStop {pre_stop}s is not below terminationGracePeriodSeconds {grace}: "
                        "the kubelet would kill a draining node")
        if kind == "Job":
            continue
        for probe_name, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            probe = container.get(probe_name)
            if not probe:
                problem(cw, f"no {probe_name}")
                continue
            get = probe.get("httpGet") or {}
            port = get.get("port")
            if port not in ports and port not in numbers:
                problem(cw, f"{probe_name} port {port!r} is not a port of the container")
            if port not in ("metrics", env.get("LOYALTY_METRICS_PORT")) and str(port) != str(env.get("LOYALTY_METRICS_PORT")):
                problem(cw, f"{probe_name} must probe the metrics port (where the engine serves {path})")
            if get.get("path") != path:
                problem(cw, f"{probe_name} must GET {path}, not {get.get('path')}")
        startup = container.get("startupProbe") or {}
        budget = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
        wait = timespan_seconds(env.get("Loyalty__Database__StartupWait") or "00:10:00") or 600
        if startup and budget < min(wait, 300):
            problem(cw, f"startupProbe allows {budget}s, less than the start-up wait for PostgreSQL: a fresh install would crash-loop")
        if kind == "Deployment" and not ((container.get("lifecycle") or {}).get("preStop")):
            problem(cw, "no preStop: the endpoint removal must reach the load balancer before the drain")
    if kind in ("Deployment", "StatefulSet"):
        spreads = pod.get("topologySpreadConstraints") or []
        if not spreads:
            problem(where, "no topologySpreadConstraints")
        for s in spreads:
            if not selects(s.get("labelSelector"), labels):
                problem(where, f"topologySpreadConstraint on {s.get('topologyKey')} does not select its own pods")
        anti = ((pod.get("affinity") or {}).get("podAntiAffinity")) or {}
        terms = list(anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []) + \
            [t.get("podAffinityTerm", {}) for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
        if not terms:
            problem(where, "no podAntiAffinity")
        for t in terms:
            if not selects(t.get("labelSelector"), labels):
                problem(where, "podAntiAffinity term does not select its own pods")
    if kind == "StatefulSet":
        anti = ((pod.get("affinity") or {}).get("podAntiAffinity")) or {}
        if not any(t.get("topologyKey") == "kubernetes.io/hostname" for t in anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []):
            problem(where, "silos need a required podAntiAffinity on kubernetes.io/hostname (one silo per node)")
        headless = services.get(spec.get("serviceName"))
        if headless is None or (headless["spec"].get("clusterIP") != "None"):
            problem(where, f"serviceName {spec.get('serviceName')} is not a headless Service")
        cluster_label = labels.get("orleans/clusterId")
        if cluster_label is not None:
            for container in pod["containers"]:
                cm = {}
                for ref in container.get("envFrom") or []:
                    cm.update(config_maps.get((ref.get("configMapRef") or {}).get("name"), {}))
                cluster_id = cm.get("LOYALTY_CLUSTER_ID", "loyalty")
                if cluster_label != cluster_id:
                    problem(where, f"label orleans/clusterId={cluster_label} but LOYALTY_CLUSTER_ID={cluster_id}: Kubernetes hosting would not find the silos")


def check_render(name, docs, is_base):
    where0 = f"kubernetes {name}"
    if not docs:
        problem(where0, "renders nothing")
        return
    if docs[0].get("kind") != "Namespace":
        problem(where0, f"the first object is a {docs[0].get('kind')}, not the Namespace (it must exist before what goes in it)")
    namespaces = {d["metadata"]["name"] for d in docs if d.get("kind") == "Namespace"}
    objects = {}
    schema_errors = 0
    for i, d in enumerate(docs):
        key = (d.get("apiVersion"), d.get("kind"))
        where = f"{where0} {d.get('kind')}/{(d.get('metadata') or {}).get('name')}"
        if key not in SCHEMAS:
            problem(where, f"apiVersion/kind {key[0]} {key[1]} is not one this project deploys (allow-list in check_schemas.py)")
            schema_errors += 1
            continue
        schema_problems = []
        validate(d, SCHEMAS[key], "", schema_problems)
        for p in schema_problems:
            problem(where, p.lstrip("."))
            schema_errors += 1
        if d["kind"] != "Namespace" and (d.get("metadata") or {}).get("namespace") not in namespaces:
            problem(where, f"namespace {d['metadata'].get('namespace')!r} is not the one this render creates {sorted(namespaces)}")
        if d["kind"] == "Secret":
            problem(where, "a Secret is shipped: it would overwrite the real one on every apply; create it from the vault and reference it")
        objects[(d["kind"], d["metadata"]["name"])] = d
    if schema_errors:
        return  # the checks below read fields the schema guarantees
    config_maps = {n: dict(o.get("data") or {}) for (k, n), o in objects.items() if k == "ConfigMap"}
    services = {n: o for (k, n), o in objects.items() if k == "Service"}
    roles = {n for (k, n) in objects if k == "Role"}
    role_bound = set()
    for (k, n), o in objects.items():
        if k == "RoleBinding":
            if o["roleRef"]["name"] not in roles:
                problem(f"{where0} RoleBinding/{n}", f"roleRef {o['roleRef']['name']} is not defined")
            for s in o.get("subjects") or []:
                if s["kind"] == "ServiceAccount":
                    if ("ServiceAccount", s["name"]) not in objects:
                        problem(f"{where0} RoleBinding/{n}", f"subject {s['name']} is not defined")
                    role_bound.add(s["name"])
        if k == "Role":
            for rule in o.get("rules") or []:
                if "*" in (rule.get("verbs") or []) or "*" in (rule.get("resources") or []):
                    problem(f"{where0} Role/{n}", "wildcards grant more than the silo needs")
        if k == "ServiceAccount" and o.get("automountServiceAccountToken") is not False:
            problem(f"{where0} ServiceAccount/{n}", "automountServiceAccountToken must be false (pods that need a token opt in)")
    # The install and upgrade runbook applies everything but the serving nodes first (migrations before silos), with
    # the selector app.kubernetes.io/component notin (silo,gateway): the workloads' own labels must say which is which.
    for (k, n), o in objects.items():
        component = (o["metadata"].get("labels") or {}).get("app.kubernetes.io/component")
        expected = {"StatefulSet": ("silo",), "Deployment": ("gateway",), "Job": ("migrations",), "CronJob": ("migrations",)}.get(k)
        if expected and component not in expected:
            problem(f"{where0} {k}/{n}", f"label app.kubernetes.io/component={component!r}, expected {expected[0]!r} (the runbook's two-step apply selects by it)")
    pods = {}  # workload name -> (labels, container port names and numbers)
    for (k, n), o in objects.items():
        if k in ("Deployment", "StatefulSet", "Job", "CronJob"):
            check_workload(f"{where0} {k}/{n}", k, o, objects, config_maps, role_bound, services)
            tpl = o["spec"]["jobTemplate"]["spec"]["template"] if k == "CronJob" else o["spec"]["template"]
            ports = {}
            for c in tpl["spec"]["containers"]:
                for p in c.get("ports") or []:
                    ports[p.get("name")] = p["containerPort"]
            pods[f"{k}/{n}"] = ((tpl.get("metadata") or {}).get("labels") or {}, ports)
        if k == "Cluster":  # CloudNativePG labels its instance pods with cnpg.io/cluster.
            pods[f"Cluster/{n}"] = ({"cnpg.io/cluster": n}, {"postgresql": 5432, "status": 8000, "metrics": 9187})
        if k == "Deployment" and o["spec"].get("replicas") is not None and \
                any(h["spec"]["scaleTargetRef"]["name"] == n for (hk, _), h in objects.items() if hk == "HorizontalPodAutoscaler"):
            problem(f"{where0} Deployment/{n}", "sets replicas while an HPA scales it: every apply would reset the count")

    def selected(selector):
        return [w for w, (labels, _) in pods.items() if selects(selector, labels)]

    for (k, n), o in objects.items():
        where = f"{where0} {k}/{n}"
        if k == "Service":
            targets = selected(o["spec"].get("selector"))
            if not targets:
                problem(where, "selects no pod")
            for p in o["spec"]["ports"]:
                target = p.get("targetPort", p["port"])
                for w in targets:
                    ports = pods[w][1]
                    if target not in ports and target not in ports.values():
                        problem(where, f"port {p.get('name')} targets {target!r}, which {w} does not declare")
        if k == "PodDisruptionBudget" and not selected(o["spec"]["selector"]):
            problem(where, "selects no pod")
        if k == "NetworkPolicy":
            targets = selected(o["spec"]["podSelector"])
            if not targets:
                problem(where, "podSelector selects no pod")
            for direction, peers_key in (("ingress", "from"), ("egress", "to")):
                for rule in o["spec"].get(direction) or []:
                    peers = [p["podSelector"] for p in rule.get(peers_key) or [] if "podSelector" in p and "namespaceSelector" not in p]
                    for sel in peers:
                        if not selected(sel):
                            problem(where, f"{direction} peer {sel} selects no pod of this deployment")
                    # Ingress ports must be ports the selected pods listen on; egress ports those of in-render peers.
                    owners = targets if direction == "ingress" else [w for sel in peers for w in selected(sel)]
                    for port in rule.get("ports") or []:
                        value = port.get("port")
                        if owners and not any(value in pods[w][1] or value in pods[w][1].values() for w in owners):
                            problem(where, f"{direction} port {value} is not a port of {owners}")
        if k == "ServiceMonitor":
            # Labels Prometheus puts on these targets: the operator's own, and the pod and Service labels copied over.
            scrape_labels.update({"namespace", "pod", "service", "container", "endpoint"})
            scrape_labels.update(re.sub(r"[^A-Za-z0-9_]", "_", l) for l in
                                 (o["spec"].get("podTargetLabels") or []) + (o["spec"].get("targetLabels") or []))
            matched = [s for s in services.values() if selects(o["spec"]["selector"], s["metadata"].get("labels") or {})]
            if not matched:
                problem(where, "selects no Service (by the Services' own labels)")
            for ep in o["spec"]["endpoints"]:
                for s in matched:
                    if ep.get("port") not in {p.get("name") for p in s["spec"]["ports"]}:
                        problem(where, f"endpoint port {ep.get('port')} is not a port of Service {s['metadata']['name']}")
        if k == "HorizontalPodAutoscaler":
            ref = o["spec"]["scaleTargetRef"]
            if (ref["kind"], ref["name"]) not in objects:
                problem(where, f"scales {ref['kind']}/{ref['name']}, which is not defined")
            if o["spec"].get("minReplicas", 1) < 2:
                problem(where, "minReplicas below 2 leaves one gateway")
        if k == "Ingress":
            if not o["spec"].get("tls"):
                problem(where, "no TLS: tokens would cross the network in clear text")
            for rule in o["spec"].get("rules") or []:
                for path in rule["http"]["paths"]:
                    svc = path["backend"]["service"]
                    s = services.get(svc["name"])
                    if s is None:
                        problem(where, f"backend Service {svc['name']} is not defined")
                    elif svc["port"].get("name") not in {p.get("name") for p in s["spec"]["ports"]} and \
                            svc["port"].get("number") not in {p["port"] for p in s["spec"]["ports"]}:
                        problem(where, f"backend port {svc['port']} is not a port of Service {svc['name']}")
        if k == "Cluster":
            sync = ((o["spec"].get("postgresql") or {}).get("synchronous")) or {}
            if sync.get("number", 0) < 1 and o["spec"].get("minSyncReplicas", 0) < 1:
                problem(where, "no synchronous standby: an acknowledged write could be lost with the primary")
            if not image_pinned(o["spec"].get("imageName", "")):
                problem(where, f"imageName {o['spec'].get('imageName')!r} is not pinned to an exact version")
    for kind in ("Ingress", "NetworkPolicy", "PodDisruptionBudget", "ServiceMonitor", "HorizontalPodAutoscaler", "Job"):
        if not any(k == kind for k, _ in objects):
            problem(where0, f"no {kind}")


scrape_labels = {"job", "instance"}  # target labels, from the ServiceMonitors and prometheus.yml
kube = os.path.join(deploy, "kubernetes")
renders = []
if os.path.isdir(os.path.join(kube, "base")):
    # Every file of the base must be a resource of its kustomization (a forgotten file is never applied) and none a Secret.
    base_kustomization = yaml.safe_load(open(os.path.join(kube, "base", "kustomization.yaml")))
    listed = set(base_kustomization.get("resources") or [])
    for f in sorted(os.listdir(os.path.join(kube, "base"))):
        path = os.path.join(kube, "base", f)
        if f.endswith((".yaml", ".yml")) and f != "kustomization.yaml":
            if f not in listed:
                problem(rel(path), "is not listed in base/kustomization.yaml resources")
            for d in load_yaml_docs(open(path).read(), rel(path)):
                if d.get("kind") == "Secret":
                    problem(rel(path), "a Secret in the base: it would overwrite the real one on every apply")
    if base_kustomization.get("secretGenerator"):
        problem(rel(os.path.join(kube, "base", "kustomization.yaml")), "generates a Secret in the base")
    renders.append(("base", os.path.join(kube, "base")))
else:
    problem(rel(kube), "no base/ kustomization")
overlays = os.path.join(kube, "overlays")
for o in sorted(os.listdir(overlays)) if os.path.isdir(overlays) else []:
    renders.append((f"overlays/{o}", os.path.join(overlays, o)))
if len(renders) < 2:
    problem(rel(kube), "no overlay under overlays/")
loose = [f for f in os.listdir(kube) if f.endswith((".yaml", ".yml"))] if os.path.isdir(kube) else []
for f in loose:
    problem(rel(os.path.join(kube, f)), "a manifest outside base/, components/ and overlays/ is never applied")
rendered_documents = 0
for name, path in renders:
    run = subprocess.run(["kubectl", "kustomize", path], capture_output=True, text=True)
    if run.returncode != 0:
        problem(f"kubernetes {name}", f"kubectl kustomize fails: {run.stderr.strip()}")
        continue
    docs = load_yaml_docs(run.stdout, f"kubernetes {name}")
    rendered_documents += len(docs)
    check_render(name, docs, name == "base")

# ---------------------------------------------------------------------------------------------------------------
# Docker
dockerignore = os.path.join(root, ".dockerignore")
ignored = open(dockerignore).read().split() if os.path.exists(dockerignore) else []
for needed in ("**/bin/", "**/obj/"):
    if needed not in ignored and needed.rstrip("/") not in ignored:
        problem(".dockerignore" if ignored else rel(root), f"must exclude {needed} (the host's build output would overwrite the image's restore)")


def project_closure(csproj, seen=None):
    seen = set() if seen is None else seen
    path = os.path.normpath(csproj)
    if path in seen or not os.path.exists(os.path.join(root, path)):
        return seen
    seen.add(path)
    text = open(os.path.join(root, path)).read()
    for ref in re.findall(r'<ProjectReference\s+Include="([^"]+)"', text):
        project_closure(os.path.join(os.path.dirname(path), ref.replace("\\", "/")), seen)
    return seen


dockerfiles = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(deploy) for f in fs if f.endswith("Dockerfile"))
for path in dockerfiles:
    where = rel(path)
    lines = [l.strip() for l in open(path).read().splitlines()]
    instructions = [l for l in lines if l and not l.startswith("#")]
    stages = [l for l in instructions if l.upper().startswith("FROM ")]
    if not stages:
        problem(where, "no FROM")
    stage_names = set()
    for f in stages:
        parts = f.split()
        image = parts[1]
        if image not in stage_names and not image_pinned(image):
            problem(where, f"base image {image} is not pinned to an exact version (x.y.z tag, and a digest in the bank's registry)")
        if len(parts) >= 4 and parts[2].upper() == "AS":
            stage_names.add(parts[3])
    last_stage = instructions[instructions.index(stages[-1]):] if stages else []
    users = [l.split()[1] for l in last_stage if l.upper().startswith("USER ")]
    if not users or not users[-1].isdigit() or users[-1] == "0":
        problem(where, "the runtime stage must switch to a numeric non-root USER (Kubernetes checks runAsNonRoot by uid)")
    copied = set()
    restore_done = False
    for l in instructions:
        upper = l.upper()
        if upper.startswith("COPY ") and "--from=" not in l:
            args = [a for a in l.split()[1:] if not a.startswith("--")]
            for src in args[:-1]:
                if not os.path.exists(os.path.join(root, src)):
                    problem(where, f"COPY {src}: no such path in the repository")
                copied.add(os.path.normpath(src))
        if upper.startswith("RUN ") and "dotnet restore" in l:
            project = re.search(r"dotnet restore\s+(\S+\.csproj)", l)
            if project:
                for needed in project_closure(project.group(1)):
                    if needed not in copied and not any(needed.startswith(c + os.sep) for c in copied if os.path.isdir(os.path.join(root, c))):
                        problem(where, f"{needed} is referenced by the restored project but not copied before `dotnet restore`")
            restore_done = True
        if upper.startswith("RUN ") and "dotnet publish" in l:
            project = re.search(r"dotnet publish\s+(\S+\.csproj)", l)
            if project and not os.path.exists(os.path.join(root, project.group(1))):
                problem(where, f"publishes {project.group(1)}, which does not exist")
            if project:
                text = open(os.path.join(root, project.group(1))).read() if os.path.exists(os.path.join(root, project.group(1))) else ""
                assembly = re.search(r"<AssemblyName>([^<]+)</AssemblyName>", text)
                dll = (assembly.group(1) if assembly else os.path.splitext(os.path.basename(project.group(1)))[0]) + ".dll"
                entry = [x for x in instructions if x.upper().startswith("ENTRYPOINT")]
                if entry and dll not in entry[-1]:
                    problem(where, f"ENTRYPOINT does not run {dll}, which the published project builds")
    if not restore_done:
        problem(where, "no `dotnet restore` layer")

for path in sorted(os.path.join(dp, f) for dp, _, fs in os.walk(deploy) for f in fs if re.match(r"(docker-)?compose.*\.ya?ml$", f)):
    where = rel(path)
    doc = (load_yaml_docs(open(path).read(), where) or [{}])[0]
    for name, service in (doc.get("services") or {}).items():
        build = service.get("build")
        if isinstance(build, dict):
            context = os.path.normpath(os.path.join(os.path.dirname(path), build.get("context", ".")))
            dockerfile = os.path.join(context, build.get("dockerfile", "Dockerfile"))
            if not os.path.exists(dockerfile):
                problem(where, f"service {name} builds {rel(dockerfile)}, which does not exist")
        image = service.get("image")
        if image and not image_pinned(image):
            problem(where, f"service {name} image {image} is not pinned to an exact version")
        env = service.get("environment") or {}
        if isinstance(env, dict):
            for k, v in env.items():
                if k.startswith(("LOYALTY_", "Loyalty__")) and "${" not in str(v):
                    check_setting(f"{where} service {name}", k, str(v))
        grace = service.get("stop_grace_period")
        shutdown = (env.get("Loyalty__ShutdownTimeout") if isinstance(env, dict) else None)
        if grace and shutdown and timespan_seconds(shutdown) is not None:
            m = re.fullmatch(r"(\d+)s", str(grace))
            if m and timespan_seconds(shutdown) >= int(m.group(1)):
                problem(where, f"service {name}: ShutdownTimeout {shutdown} is not below stop_grace_period {grace}")

# ---------------------------------------------------------------------------------------------------------------
# Prometheus rules and Grafana dashboards against the engine's real /metrics.
prom_dir = os.path.join(deploy, "prometheus")
rule_files = []
prom_config = os.path.join(prom_dir, "prometheus.yml")
if os.path.exists(prom_config):
    prom = yaml.safe_load(open(prom_config)) or {}
    for pattern in prom.get("rule_files") or []:
        rule_files += sorted(glob.glob(os.path.join(prom_dir, pattern)))
    for job in prom.get("scrape_configs") or []:
        for static in job.get("static_configs") or []:
            scrape_labels.update((static.get("labels") or {}).keys())
        for relabel in (job.get("relabel_configs") or []):
            if relabel.get("target_label"):
                scrape_labels.add(relabel["target_label"])
rules = []  # (where, rule)
for path in rule_files:
    for group in (yaml.safe_load(open(path)) or {}).get("groups") or []:
        for rule in group.get("rules") or []:
            rules.append((f"{rel(path)} {rule.get('alert') or rule.get('record')}", rule))

panels = []


def walk_panels(items):
    for p in items or []:
        panels.append(p)
        walk_panels(p.get("panels"))


dashboards = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(deploy, "grafana")) for f in fs if f.endswith(".json"))
dashboard_vars = set()
for path in dashboards:
    try:
        dash = json.load(open(path))
    except json.JSONDecodeError as e:
        problem(rel(path), f"does not parse: {e}")
        continue
    walk_panels(dash.get("panels"))
    for var in (dash.get("templating") or {}).get("list") or []:
        dashboard_vars.add(var.get("name"))

# Runbook links must point at a heading that exists.
operations = os.path.join(root, "docs", "OPERATIONS.md")
anchors = set()
if os.path.exists(operations):
    for line in open(operations):
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
        anchors.update(re.findall(r'<a (?:id|name)="([^"]+)"', line))
for where, rule in rules:
    url = ((rule.get("annotations") or {}).get("runbook_url")) or ""
    if "OPERATIONS.md#" in url and url.split("#", 1)[1] not in anchors:
        problem(where, f"runbook_url anchor #{url.split('#', 1)[1]} is not a heading of docs/OPERATIONS.md")

FUNCTIONS_AND_KEYWORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group",
    "limitk", "limit_ratio", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan",
}
TARGET_LABELS = scrape_labels


def parse_promql(expr):
    """(metric names, {metric: labels matched}, labels grouped on) of a PromQL expression; label_replace/label_join
    outputs are returned as created labels."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery durations
    text = re.sub(r"\$\{?\w+\}?", "1", text)  # Grafana variables ($__rate_interval, $job) stand for values
    metrics, matched, grouped, created = [], {}, set(), set()
    for m in re.finditer(r'label_(?:replace|join)\s*\(', expr):
        args = re.findall(r'"([^"]*)"', expr[m.end():])
        if args:
            created.add(args[0])
    i, n = 0, len(text)
    while i < n:
        m = re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", text[i:])
        if not m:
            if text[i] == "{":
                j = text.index("}", i)
                names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", text[i + 1:j])
                matched.setdefault(None, set()).update(names)
                i = j + 1
                continue
            i += 1
            continue
        word = m.group(0)
        if i > 0 and (text[i - 1].isdigit() or text[i - 1] == "."):
            i += len(word)  # a number's exponent or unit (1e-9)
            continue
        j = i + len(word)
        rest = text[j:].lstrip()
        if word in ("by", "without", "on", "ignoring", "group_left", "group_right") and rest.startswith("("):
            k = text.index("(", j)
            e = text.index(")", k)
            grouped.update(x.strip() for x in text[k + 1:e].split(",") if x.strip())
            i = e + 1
            continue
        if rest.startswith("(") or word in FUNCTIONS_AND_KEYWORDS:
            i = j
            continue
        metrics.append(word)
        if rest.startswith("{"):
            k = text.index("{", j)
            e = text.index("}", k)
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", text[k + 1:e])
            matched.setdefault(word, set()).update(names)
            i = e + 1
            continue
        i = j
    return metrics, matched, grouped, created


exported = {}  # metric -> set of labels (from the scrape)
if metrics_file:
    kinds = {}
    for line in open(metrics_file):
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            kinds[name] = kind
            exported.setdefault(name, set())
            if kind == "histogram":
                for suffix in ("_bucket", "_sum", "_count"):
                    exported.setdefault(name + suffix, set())
        elif line and not line.startswith("#"):
            m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s", line)
            if m:
                labels = set(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="', m.group(2) or ""))
                exported.setdefault(m.group(1), set()).update(labels)
    for name, kind in kinds.items():
        if kind == "histogram":
            base_labels = exported.get(name + "_count", set())
            exported[name] |= base_labels
            exported[name + "_sum"] |= base_labels
            exported[name + "_bucket"] |= {"le"}
    # An OpenTelemetry instrument appears in a scrape once it has a value: a failure counter may be absent from a
    # healthy node. Such an instrument declared in the engine's source ("loyalty.rpc.failures") counts as exported, and
    # the tag keys the source writes count as its possible labels.
    declared = {d.replace(".", "_") for d in string_literals if re.fullmatch(r"loyalty\.[a-z0-9_.]+", d)}
    source_tags = {t.replace(".", "_") for t in re.findall(r'(?:KeyValuePair<string,\s*object\??>\(|\{\s*|\bAdd\(|\[)\s*"([a-z][a-z0-9_.]*)"\s*[,\]]', source)}
    units = ("seconds", "milliseconds", "bytes", "ratio")
    for d in list(declared):
        exported.setdefault("__declared__" + d, set())

    def metric_labels(name):
        if name in exported:
            # OpenTelemetry writes an attribute only on the measurements that carry it (error.type only on failed
            # calls): a tag the engine's source writes counts as a possible label even when this scrape lacks it.
            return exported[name] | source_tags
        base = re.sub(r"_(bucket|sum|count|total)$", "", name)
        candidates = {base, re.sub(r"_(" + "|".join(units) + r")$", "", base)}
        if name.startswith("loyalty_") and candidates & declared:
            return source_tags | ({"le"} if name.endswith("_bucket") else set())
        return None

    recorded = {}
    for where, rule in rules:
        if "record" in rule:
            metrics, matched, grouped, created = parse_promql(rule["expr"])
            labels = set(grouped) if grouped else set().union(*[metric_labels(m) or set() for m in metrics] or [set()])
            recorded[rule["record"]] = labels | created | set((rule.get("labels") or {}).keys()) | TARGET_LABELS

    def known_labels(name):
        if name in recorded:
            return recorded[name]
        labels = metric_labels(name)
        return None if labels is None else labels | TARGET_LABELS

    def check_expr(where, expr):
        metrics, matched, grouped, created = parse_promql(expr)
        all_labels = set(created)
        for name in metrics:
            if name == "up":
                all_labels |= TARGET_LABELS
                continue
            labels = known_labels(name)
            if labels is None:
                problem(where, f"uses {name}, which the engine does not export")
                continue
            all_labels |= labels
            for label in matched.get(name, set()) - {"__name__"}:
                if label not in labels:
                    problem(where, f"matches label {label} on {name}, which has labels {sorted(labels - TARGET_LABELS)}")
        for label in grouped - all_labels:
            if metrics:
                problem(where, f"groups by label {label}, which none of {sorted(set(metrics))} has")
        return metrics

    for where, rule in rules:
        check_expr(where, rule["expr"])

    TIME_UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400,
                  "dtdurations": 1, "dtdurationms": 1e-3}
    BYTE_UNITS = {"bytes", "decbytes", "kbytes", "mbytes", "gbytes", "deckbytes", "decmbytes", "decgbytes"}

    def metric_unit(name):
        base = re.sub(r"_(bucket|sum|count|total)$", "", name)
        for unit, scale in (("seconds", 1), ("milliseconds", 1e-3), ("microseconds", 1e-6), ("nanoseconds", 1e-9)):
            if base.endswith("_" + unit):
                return ("time", scale)
        if base.endswith("_bytes"):
            return ("bytes", 1)
        return (None, None)

    def result_unit(expr, metrics):
        """The unit of what the query returns, when a time or byte metric is returned as such (a quantile of its
        histogram, a sum/count mean, or the gauge itself), else None; plus the scaling written in the query."""
        scale = 1.0
        for m in re.finditer(r"\*\s*(1e3|1000|1e6|1000000)\b|\b(1e3|1000)\s*\*", expr):
            scale *= float(m.group(1) or m.group(2))
        for m in re.finditer(r"/\s*(1e3|1000|1e6|1000000)\b", expr):
            scale /= float(m.group(1))
        if "histogram_quantile" in expr:
            buckets = [m for m in metrics if m.endswith("_bucket")]
            if buckets:
                return metric_unit(buckets[0]), scale
        sums = [m for m in metrics if m.endswith("_sum")]
        if sums and any(m.endswith("_count") for m in metrics):
            return metric_unit(sums[0]), scale
        if len(metrics) == 1 and not re.search(r"\b(rate|irate|increase|deriv|delta|count|count_over_time|changes|resets|absent)\s*\(", expr) \
                and not metrics[0].endswith(("_total", "_count", "_bucket")):
            return metric_unit(metrics[0]), scale
        return (None, None), scale

    for panel in panels:
        where = f"dashboard panel {panel.get('title')!r}"
        default_unit = ((panel.get("fieldConfig") or {}).get("defaults") or {}).get("unit")
        overrides = {}
        for o in (panel.get("fieldConfig") or {}).get("overrides") or []:
            matcher = o.get("matcher") or {}
            for prop in o.get("properties") or []:
                if prop.get("id") == "unit" and matcher.get("id") == "byFrameRefID":
                    overrides[matcher.get("options")] = prop.get("value")
        for target in panel.get("targets") or []:
            expr = target.get("expr")
            if not expr:
                continue
            metrics = check_expr(where, expr)
            unit = overrides.get(target.get("refId"), default_unit)
            (kind, metric_scale), query_scale = result_unit(expr, metrics)
            if kind == "time":
                if unit not in TIME_UNITS:
                    problem(where, f"query {expr!r} returns a duration but the panel's unit is {unit!r}")
                elif abs(metric_scale * query_scale - TIME_UNITS[unit]) > 1e-12 * TIME_UNITS[unit] * 1e3:
                    problem(where, f"query {expr!r} returns {metric_scale * query_scale:g} s per unit but the panel's unit is {unit!r}")
            elif kind == "bytes" and unit not in BYTE_UNITS:
                problem(where, f"query {expr!r} returns bytes but the panel's unit is {unit!r}")
            elif kind is None and unit in TIME_UNITS and metrics:
                problem(where, f"the panel's unit is {unit!r} but query {expr!r} does not return a duration")
            elif kind is None and unit in BYTE_UNITS and metrics:
                problem(where, f"the panel's unit is {unit!r} but query {expr!r} does not return bytes")

print(f"deploy/check.sh: {len(renders)} kustomize renders ({rendered_documents} objects), {len(dockerfiles)} Dockerfiles, "
      f"{len(rules)} rules, {len(panels)} dashboard panels checked"
      + (f" against {metrics_file}" if metrics_file else " (no METRICS_FILE: metric names, labels and units not checked)"))
if problems:
    print("\n".join("deploy/check.sh: " + p for p in dict.fromkeys(problems)))
    sys.exit(1)
