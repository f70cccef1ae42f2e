"""Strict schemas for the Kubernetes objects deploy/kubernetes renders, written from the Kubernetes API reference
(v1.32), the Prometheus Operator's ServiceMonitor (monitoring.coreos.com/v1) and CloudNativePG's Cluster
(postgresql.cnpg.io/v1). A field not listed here is refused, so a misspelt `readinesProbe` or an unknown apiVersion
fails. Only what these manifests may use is listed; a new field is added here with its documented type."""

# A schema is a dict of field -> type; a type is one of: str, int, bool, "quantity" (str or int), "intstr" (str or int),
# "map" (string -> string), "any" (free-form), a nested dict schema, or a one-element list [type] for arrays.
# "__required__" lists the fields that must be present.

QUANTITY = "quantity"
INTSTR = "intstr"
MAP = "map"
ANY = "any"

OBJECT_META = {
    "name": str, "namespace": str, "labels": MAP, "annotations": MAP, "generateName": str,
    "__required__": ["name"],
}
TEMPLATE_META = {"labels": MAP, "annotations": MAP, "name": str}
LABEL_SELECTOR = {
    "matchLabels": MAP,
    "matchExpressions": [{"key": str, "operator": str, "values": [str], "__required__": ["key", "operator"]}],
}
KEY_REF = {"name": str, "key": str, "optional": bool, "__required__": ["key"]}
ENV_VAR = {
    "name": str, "value": str,
    "valueFrom": {
        "secretKeyRef": KEY_REF, "configMapKeyRef": KEY_REF,
        "fieldRef": {"fieldPath": str, "apiVersion": str, "__required__": ["fieldPath"]},
        "resourceFieldRef": {"resource": str, "containerName": str, "divisor": QUANTITY},
    },
    "__required__": ["name"],
}
ENV_FROM = {"configMapRef": {"name": str, "optional": bool}, "secretRef": {"name": str, "optional": bool}, "prefix": str}
HTTP_GET = {"path": str, "port": INTSTR, "host": str, "scheme": str,
            "httpHeaders": [{"name": str, "value": str}], "__required__": ["port"]}
PROBE = {
    "httpGet": HTTP_GET, "tcpSocket": {"port": INTSTR, "host": str, "__required__": ["port"]},
    "grpc": {"port": int, "service": str, "__required__": ["port"]}, "exec": {"command": [str]},
    "initialDelaySeconds": int, "periodSeconds": int, "timeoutSeconds": int, "successThreshold": int,
    "failureThreshold": int, "terminationGracePeriodSeconds": int,
}
LIFECYCLE_HANDLER = {"exec": {"command": [str]}, "httpGet": HTTP_GET, "tcpSocket": {"port": INTSTR},
                     "sleep": {"seconds": int, "__required__": ["seconds"]}}
SECCOMP = {"type": str, "localhostProfile": str, "__required__": ["type"]}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": bool, "privileged": bool, "readOnlyRootFilesystem": bool, "runAsNonRoot": bool,
    "runAsUser": int, "runAsGroup": int, "procMount": str,
    "capabilities": {"add": [str], "drop": [str]}, "seccompProfile": SECCOMP,
    "appArmorProfile": {"type": str, "localhostProfile": str},
    "seLinuxOptions": {"level": str, "role": str, "type": str, "user": str},
}
POD_SECURITY = {
    "runAsNonRoot": bool, "runAsUser": int, "runAsGroup": int, "fsGroup": int, "fsGroupChangePolicy": str,
    "supplementalGroups": [int], "seccompProfile": SECCOMP, "sysctls": [{"name": str, "value": str}],
    "appArmorProfile": {"type": str, "localhostProfile": str},
    "seLinuxOptions": {"level": str, "role": str, "type": str, "user": str},
}
RESOURCES = {"requests": {"cpu": QUANTITY, "memory": QUANTITY, "ephemeral-storage": QUANTITY},
             "limits": {"cpu": QUANTITY, "memory": QUANTITY, "ephemeral-storage": QUANTITY}}
CONTAINER = {
    "name": str, "image": str, "imagePullPolicy": str, "command": [str], "args": [str], "workingDir": str,
    "env": [ENV_VAR], "envFrom": [ENV_FROM],
    "ports": [{"name": str, "containerPort": int, "protocol": str, "hostPort": int, "hostIP": str,
               "__required__": ["containerPort"]}],
    "startupProbe": PROBE, "livenessProbe": PROBE, "readinessProbe": PROBE,
    "lifecycle": {"preStop": LIFECYCLE_HANDLER, "postStart": LIFECYCLE_HANDLER},
    "resources": RESOURCES, "securityContext": CONTAINER_SECURITY,
    "volumeMounts": [{"name": str, "mountPath": str, "readOnly": bool, "subPath": str,
                      "__required__": ["name", "mountPath"]}],
    "terminationMessagePath": str, "terminationMessagePolicy": str, "stdin": bool, "tty": bool,
    "restartPolicy": str,
    "__required__": ["name", "image"],
}
POD_AFFINITY_TERM = {"labelSelector": LABEL_SELECTOR, "topologyKey": str, "namespaces": [str],
                     "namespaceSelector": LABEL_SELECTOR, "matchLabelKeys": [str], "__required__": ["topologyKey"]}
POD_ANTI_AFFINITY = {
    "requiredDuringSchedulingIgnoredDuringExecution": [POD_AFFINITY_TERM],
    "preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": int, "podAffinityTerm": POD_AFFINITY_TERM, "__required__": ["weight", "podAffinityTerm"]}],
}
POD_SPEC = {
    "containers": [CONTAINER], "initContainers": [CONTAINER],
    "serviceAccountName": str, "automountServiceAccountToken": bool, "terminationGracePeriodSeconds": int,
    "securityContext": POD_SECURITY, "restartPolicy": str, "nodeSelector": MAP, "priorityClassName": str,
    "affinity": {"podAntiAffinity": POD_ANTI_AFFINITY, "podAffinity": POD_ANTI_AFFINITY, "nodeAffinity": ANY},
    "topologySpreadConstraints": [{
        "maxSkew": int, "topologyKey": str, "whenUnsatisfiable": str, "labelSelector": LABEL_SELECTOR,
        "minDomains": int, "matchLabelKeys": [str], "nodeAffinityPolicy": str, "nodeTaintsPolicy": str,
        "__required__": ["maxSkew", "topologyKey", "whenUnsatisfiable"]}],
    "tolerations": [{"key": str, "operator": str, "value": str, "effect": str, "tolerationSeconds": int}],
    "volumes": [{
        "name": str, "emptyDir": {"medium": str, "sizeLimit": QUANTITY},
        "configMap": {"name": str, "items": [{"key": str, "path": str}], "defaultMode": int, "optional": bool},
        "secret": {"secretName": str, "items": [{"key": str, "path": str}], "defaultMode": int, "optional": bool},
        "projected": ANY, "persistentVolumeClaim": {"claimName": str, "readOnly": bool},
        "__required__": ["name"]}],
    "imagePullSecrets": [{"name": str}], "dnsPolicy": str, "enableServiceLinks": bool,
    "hostNetwork": bool, "hostPID": bool, "hostIPC": bool, "shareProcessNamespace": bool,
    "__required__": ["containers"],
}
POD_TEMPLATE = {"metadata": TEMPLATE_META, "spec": POD_SPEC, "__required__": ["metadata", "spec"]}
NETWORK_PEER = {"podSelector": LABEL_SELECTOR, "namespaceSelector": LABEL_SELECTOR,
                "ipBlock": {"cidr": str, "except": [str], "__required__": ["cidr"]}}
NETWORK_PORT = {"port": INTSTR, "endPort": int, "protocol": str}
SERVICE_BACKEND = {"name": str, "port": {"name": str, "number": int}, "__required__": ["name", "port"]}


def top(spec, **extra):
    schema = {"apiVersion": str, "kind": str, "metadata": OBJECT_META, "__required__": ["apiVersion", "kind", "metadata"]}
    if spec is not None:
        schema["spec"] = spec
        schema["__required__"] = schema["__required__"] + ["spec"]
    schema.update(extra)
    return schema


SCHEMAS = {
    ("v1", "Namespace"): top(None),
    ("v1", "ConfigMap"): top(None, data=MAP, binaryData=MAP, immutable=bool),
    ("v1", "Secret"): top(None, data=MAP, stringData=MAP, type=str, immutable=bool),
    ("v1", "ServiceAccount"): top(None, automountServiceAccountToken=bool, imagePullSecrets=[{"name": str}]),
    ("v1", "Service"): top({
        "type": str, "clusterIP": str, "selector": MAP, "publishNotReadyAddresses": bool, "sessionAffinity": str,
        "internalTrafficPolicy": str, "externalTrafficPolicy": str, "ipFamilyPolicy": str,
        "ports": [{"name": str, "port": int, "targetPort": INTSTR, "protocol": str, "appProtocol": str,
                   "nodePort": int, "__required__": ["port"]}],
        "__required__": ["ports"]}),
    ("rbac.authorization.k8s.io/v1", "Role"): top(None, rules=[{
        "apiGroups": [str], "resources": [str], "verbs": [str], "resourceNames": [str],
        "__required__": ["verbs"]}]),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): top(None, subjects=[{
        "kind": str, "name": str, "namespace": str, "apiGroup": str, "__required__": ["kind", "name"]}],
        roleRef={"apiGroup": str, "kind": str, "name": str, "__required__": ["apiGroup", "kind", "name"]}),
    ("apps/v1", "Deployment"): top({
        "replicas": int, "selector": LABEL_SELECTOR, "template": POD_TEMPLATE, "minReadySeconds": int,
        "revisionHistoryLimit": int, "progressDeadlineSeconds": int, "paused": bool,
        "strategy": {"type": str, "rollingUpdate": {"maxUnavailable": INTSTR, "maxSurge": INTSTR}},
        "__required__": ["selector", "template"]}),
    ("apps/v1", "StatefulSet"): top({
        "replicas": int, "selector": LABEL_SELECTOR, "template": POD_TEMPLATE, "serviceName": str,
        "podManagementPolicy": str, "minReadySeconds": int, "revisionHistoryLimit": int,
        "updateStrategy": {"type": str, "rollingUpdate": {"partition": int, "maxUnavailable": INTSTR}},
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": str, "whenScaled": str},
        "volumeClaimTemplates": [ANY],
        "__required__": ["selector", "template", "serviceName"]}),
    ("batch/v1", "Job"): top({
        "template": POD_TEMPLATE, "backoffLimit": int, "activeDeadlineSeconds": int, "ttlSecondsAfterFinished": int,
        "completions": int, "parallelism": int, "suspend": bool,
        "__required__": ["template"]}),
    ("batch/v1", "CronJob"): top({
        "schedule": str, "timeZone": str, "concurrencyPolicy": str, "suspend": bool, "startingDeadlineSeconds": int,
        "successfulJobsHistoryLimit": int, "failedJobsHistoryLimit": int,
        "jobTemplate": {"metadata": TEMPLATE_META, "spec": {
            "template": POD_TEMPLATE, "backoffLimit": int, "activeDeadlineSeconds": int, "ttlSecondsAfterFinished": int,
            "completions": int, "parallelism": int, "__required__": ["template"]}, "__required__": ["spec"]},
        "__required__": ["schedule", "jobTemplate"]}),
    ("policy/v1", "PodDisruptionBudget"): top({
        "minAvailable": INTSTR, "maxUnavailable": INTSTR, "selector": LABEL_SELECTOR,
        "unhealthyPodEvictionPolicy": str, "__required__": ["selector"]}),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): top({
        "scaleTargetRef": {"apiVersion": str, "kind": str, "name": str, "__required__": ["kind", "name"]},
        "minReplicas": int, "maxReplicas": int,
        "metrics": [{"type": str, "resource": {"name": str, "target": {
            "type": str, "averageUtilization": int, "averageValue": QUANTITY, "value": QUANTITY,
            "__required__": ["type"]}, "__required__": ["name", "target"]}, "pods": ANY, "object": ANY,
            "external": ANY, "containerResource": ANY, "__required__": ["type"]}],
        "behavior": {"scaleUp": ANY, "scaleDown": {"stabilizationWindowSeconds": int, "selectPolicy": str,
                                                   "policies": [ANY]}},
        "__required__": ["scaleTargetRef", "maxReplicas"]}),
    ("networking.k8s.io/v1", "NetworkPolicy"): top({
        "podSelector": LABEL_SELECTOR, "policyTypes": [str],
        "ingress": [{"from": [NETWORK_PEER], "ports": [NETWORK_PORT]}],
        "egress": [{"to": [NETWORK_PEER], "ports": [NETWORK_PORT]}],
        "__required__": ["podSelector"]}),
    ("networking.k8s.io/v1", "Ingress"): top({
        "ingressClassName": str, "defaultBackend": {"service": SERVICE_BACKEND},
        "tls": [{"hosts": [str], "secretName": str}],
        "rules": [{"host": str, "http": {"paths": [{
            "path": str, "pathType": str, "backend": {"service": SERVICE_BACKEND, "__required__": ["service"]},
            "__required__": ["pathType", "backend"]}], "__required__": ["paths"]}}],
    }),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): top({
        "selector": LABEL_SELECTOR, "namespaceSelector": {"any": bool, "matchNames": [str]}, "jobLabel": str,
        "targetLabels": [str], "podTargetLabels": [str],
        "endpoints": [{"port": str, "targetPort": INTSTR, "path": str, "scheme": str, "interval": str,
                       "scrapeTimeout": str, "honorLabels": bool, "relabelings": [ANY],
                       "metricRelabelings": [ANY], "tlsConfig": ANY}],
        "__required__": ["selector", "endpoints"]}),
    ("postgresql.cnpg.io/v1", "Cluster"): top({
        "instances": int, "imageName": str, "primaryUpdateStrategy": str, "primaryUpdateMethod": str,
        "postgresql": {"parameters": MAP, "pg_hba": [str], "synchronous": {
            "method": str, "number": int, "dataDurability": str, "maxStandbyNamesFromCluster": int,
            "standbyNamesPre": [str], "standbyNamesPost": [str], "__required__": ["method", "number"]}},
        "bootstrap": {"initdb": {"database": str, "owner": str, "secret": {"name": str},
                                 "postInitApplicationSQL": [str], "dataChecksums": bool},
                      "recovery": ANY, "pg_basebackup": ANY},
        "managed": {"roles": [{"name": str, "ensure": str, "login": bool, "superuser": bool, "createdb": bool,
                               "passwordSecret": {"name": str}, "inRoles": [str], "connectionLimit": int,
                               "__required__": ["name"]}]},
        "storage": {"size": QUANTITY, "storageClass": str}, "walStorage": {"size": QUANTITY, "storageClass": str},
        "resources": RESOURCES,
        "affinity": {"enablePodAntiAffinity": bool, "podAntiAffinityType": str, "topologyKey": str,
                     "nodeSelector": MAP, "tolerations": [ANY]},
        "monitoring": {"enablePodMonitor": bool},
        "backup": ANY, "externalClusters": [ANY], "minSyncReplicas": int, "maxSyncReplicas": int,
        "__required__": ["instances"]}),
}


def validate(value, schema, path, problems):
    """Appends one problem per unknown field, missing required field or wrong type."""
    if schema is ANY:
        return
    if schema is MAP:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            problems.append(f"{path}: must be a map of strings")
        return
    if schema in (QUANTITY, INTSTR):
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            problems.append(f"{path}: must be a string or an integer")
        return
    if schema is str or schema is int or schema is bool:
        if not isinstance(value, schema) or (schema is int and isinstance(value, bool)):
            problems.append(f"{path}: must be {schema.__name__}, is {type(value).__name__} {value!r}")
        return
    if isinstance(schema, list):
        if not isinstance(value, list):
            problems.append(f"{path}: must be a list")
            return
        for i, item in enumerate(value):
            validate(item, schema[0], f"{path}[{i}]", problems)
        return
    if not isinstance(value, dict):
        problems.append(f"{path}: must be an object")
        return
    for key, item in value.items():
        if key not in schema or key == "__required__":
            problems.append(f"{path}.{key}: unknown field")
        else:
            validate(item, schema[key], f"{path}.{key}", problems)
    for key in schema.get("__required__", []):
        if key not in value:
            problems.append(f"{path}.{key}: required")
