#!/usr/bin/env bash
# `make validate-deploy`: offline checks of the deployment files, no cluster and no Docker
# engine needed.
#
#   1. docker-compose.yml against the compose-spec JSON schema (vendored by check-jsonschema),
#      plus consistency checks (depends_on targets, known OCTOHOOKS_* keys).
#   2. `kubectl kustomize` of deploy/base and deploy/overlays/production; every rendered
#      document, and deploy/base/secret.example.yaml, against the Kubernetes OpenAPI schemas
#      bundled with kubernetes-validate (strict: unknown fields fail), for the oldest and the
#      newest Kubernetes version it bundles (override: K8S_VERSIONS="1.30.0 1.33.0").
#   3. Conventions the schemas cannot see: security contexts, probes and ports against the
#      configuration, selectors against pod labels, ConfigMap and Secret keys against
#      crates/platform/src/defaults.toml, the image's user against runAsUser.
#   4. The production overlay with the optional KEDA component (deploy/optional): built-in
#      kinds against the schemas as above; KEDA's kinds are custom resources with no bundled
#      schema, so their schema check is skipped (said so in the output) and only their
#      references are checked.
#
# Needs kubectl and python3; installs the Python packages kubernetes-validate and
# check-jsonschema with pip when they are missing. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
KUBECTL=${KUBECTL:-kubectl}

if ! command -v "$KUBECTL" >/dev/null 2>&1; then
  echo "validate-deploy: kubectl not found (set KUBECTL=/path/to/kubectl)" >&2
  exit 1
fi
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "validate-deploy: $PYTHON not found (set PYTHON=...)" >&2
  exit 1
fi
for pair in yaml:pyyaml kubernetes_validate:kubernetes-validate check_jsonschema:check-jsonschema; do
  module=${pair%%:*}
  package=${pair#*:}
  if ! "$PYTHON" -c "import $module" >/dev/null 2>&1; then
    echo "validate-deploy: installing $package"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check "$package"
  fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

status=0

echo "== docker-compose.yml: compose-spec schema"
if ! "$PYTHON" -m check_jsonschema --builtin-schema vendor.compose-spec docker-compose.yml; then
  status=1
fi

echo "== kustomize build"
for target in deploy/base deploy/overlays/production; do
  out="$tmp/$(echo "$target" | tr / _).yaml"
  if "$KUBECTL" kustomize "$target" >"$out" 2>"$tmp/kustomize.err"; then
    echo "ok   $target: $(grep -c '^kind:' "$out") documents"
  else
    echo "FAIL $target: kubectl kustomize failed"
    sed 's/^/     /' "$tmp/kustomize.err"
    exit 1
  fi
done

# The production overlay with the optional KEDA component, as an overlay would use it.
mkdir -p "$tmp/keda"
relpath() { "$PYTHON" -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$1" "$2"; }
cat >"$tmp/keda/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(relpath "$PWD/deploy/overlays/production" "$tmp/keda")
components:
  - $(relpath "$PWD/deploy/optional" "$tmp/keda")
EOF
if "$KUBECTL" kustomize "$tmp/keda" >"$tmp/keda.yaml" 2>"$tmp/kustomize.err"; then
  echo "ok   deploy/overlays/production + deploy/optional (KEDA): $(grep -c '^kind:' "$tmp/keda.yaml") documents"
else
  echo "FAIL deploy/overlays/production + deploy/optional (KEDA): kubectl kustomize failed"
  sed 's/^/     /' "$tmp/kustomize.err"
  exit 1
fi

echo "== Kubernetes schemas and conventions"
"$PYTHON" - "$tmp/deploy_base.yaml" "$tmp/deploy_overlays_production.yaml" "$tmp/keda.yaml" <<'PY' || status=1
import os
import re
import sys
import tomllib

import yaml
import kubernetes_validate
from kubernetes_validate import utils as kv

BASE, PRODUCTION, WITH_KEDA = sys.argv[1], sys.argv[2], sys.argv[3]
SECRET_EXAMPLE = "deploy/base/secret.example.yaml"
KEDA = "deploy/optional/keda-scaledobject.yaml"
COMPOSE = "docker-compose.yml"
DEFAULTS = "crates/platform/src/defaults.toml"
SECRET_KEYS = {"database_url", "amqp_url", "admin_token", "secret_encryption_key", "secret_decryption_keys",
               "portal_signing_key"}
IMAGE = "ghcr.io/octohooks/octohooks"
UID = 10001
# API groups of custom resources: no schema is bundled for them, so they are skipped.
CRD_GROUPS = {"keda.sh"}

results = {"ok": 0, "fail": 0, "skip": 0}


def ok(message):
    results["ok"] += 1
    print(f"ok   {message}")


def fail(message):
    results["fail"] += 1
    print(f"FAIL {message}")


def skip(message):
    results["skip"] += 1
    print(f"skip {message}")


def check(condition, message):
    (ok if condition else fail)(message)
    return condition


def load(path):
    with open(path) as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def ident(doc):
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def group(doc):
    api_version = doc.get("apiVersion", "")
    return api_version.split("/")[0] if "/" in api_version else ""


# Kubernetes versions: the oldest and the newest bundled, unless K8S_VERSIONS says otherwise.
bundled = sorted(set(kv.all_versions()), key=lambda v: tuple(int(p) for p in v.split(".")))
versions = os.environ.get("K8S_VERSIONS", "").split() or sorted({bundled[0], bundled[-1]}, key=bundled.index)
print(f"     kubernetes-validate {kubernetes_validate.__version__ if hasattr(kubernetes_validate, '__version__') else ''}"
      f" schemas for Kubernetes {', '.join(versions)} (strict)")


def schema_check(label, docs):
    for doc in docs:
        name = f"{label}: {ident(doc)}"
        if group(doc) in CRD_GROUPS:
            skip(f"{name} ({doc['apiVersion']} is a custom resource: no bundled schema)")
            continue
        errors = []
        for version in versions:
            try:
                kv.validate(doc, version, strict=True)
            except kv.ValidationError as err:
                where = "/".join(str(p) for p in err.path) or "(root)"
                errors.append(f"k8s {version}: {where}: {err.message}")
            except kv.SchemaNotFoundError as err:
                errors.append(err.message)
        if errors:
            fail(name)
            for error in errors:
                print(f"       {error}")
        else:
            ok(f"{name} schema")


rendered = {"base": load(BASE), "production": load(PRODUCTION)}
with_keda = load(WITH_KEDA)
secret_example = load(SECRET_EXAMPLE)
keda = load(KEDA)

print("-- schemas")
for label, docs in rendered.items():
    schema_check(label, docs)
schema_check("secret.example.yaml", secret_example)
schema_check("production+keda", with_keda)

# ---------------------------------------------------------------------------------------
print("-- configuration keys (against defaults.toml)")
with open(DEFAULTS, "rb") as handle:
    defaults = tomllib.load(handle)
known_env = {f"OCTOHOOKS_{key.upper()}" for key in defaults}
secret_env = {f"OCTOHOOKS_{key.upper()}" for key in SECRET_KEYS}
plain_env = known_env - secret_env

secret_data = {}
for doc in secret_example:
    if doc.get("kind") == "Secret":
        secret_data = {**doc.get("data", {}), **doc.get("stringData", {})}
check(set(secret_data) == secret_env,
      f"secret.example.yaml holds exactly {', '.join(sorted(secret_env))}")


def parse_seconds(text):
    match = re.fullmatch(r"(\d+)(ms|s|m|h)", str(text).strip())
    if not match:
        return None
    value, unit = int(match.group(1)), match.group(2)
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def port_of(addr):
    return int(str(addr).rsplit(":", 1)[1])


# ---------------------------------------------------------------------------------------
def conventions(label, docs):
    print(f"-- conventions: {label}")
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc

    check("Secret" not in by_kind, f"{label}: no Secret rendered (credentials stay out of Git)")
    namespaces = list(by_kind.get("Namespace", {}))
    if check(len(namespaces) == 1, f"{label}: one Namespace ({', '.join(namespaces)})"):
        stray = [ident(d) for d in docs
                 if d["kind"] != "Namespace" and d["metadata"].get("namespace") != namespaces[0]]
        check(not stray, f"{label}: every object in namespace {namespaces[0]}"
              + (f" (not: {', '.join(stray)})" if stray else ""))
    expected = {
        ("Deployment", "octohooks-api"), ("Deployment", "octohooks-dispatcher"),
        ("Job", "octohooks-migrate"), ("Service", "octohooks-api"),
        ("HorizontalPodAutoscaler", "octohooks-api"),
        ("HorizontalPodAutoscaler", "octohooks-dispatcher"),
        ("PodDisruptionBudget", "octohooks-api"), ("PodDisruptionBudget", "octohooks-dispatcher"),
        ("ConfigMap", "octohooks"), ("ServiceAccount", "octohooks"),
    }
    missing = sorted(f"{k}/{n}" for k, n in expected if n not in by_kind.get(k, {}))
    check(not missing, f"{label}: all expected objects present"
          + (f" (missing: {', '.join(missing)})" if missing else ""))
    for sa in by_kind.get("ServiceAccount", {}).values():
        check(sa.get("automountServiceAccountToken") is False,
              f"{label}: {ident(sa)} automountServiceAccountToken false")

    config = by_kind.get("ConfigMap", {}).get("octohooks", {}).get("data", {})
    octo_keys = {k for k in config if k.startswith("OCTOHOOKS_")}
    check(octo_keys == plain_env,
          f"{label}: ConfigMap has every non-secret key and no other OCTOHOOKS_* key"
          + (f" (missing: {sorted(plain_env - octo_keys)}, unknown: {sorted(octo_keys - plain_env)})"
             if octo_keys != plain_env else ""))
    check(config.get("OCTOHOOKS_LISTEN_ADDR", "").startswith("0.0.0.0:")
          and config.get("OCTOHOOKS_DISPATCHER_LISTEN_ADDR", "").startswith("0.0.0.0:"),
          f"{label}: both listen addresses on 0.0.0.0")
    check(config.get("OCTOHOOKS_ALLOW_PRIVATE_DESTINATIONS") == "false",
          f"{label}: OCTOHOOKS_ALLOW_PRIVATE_DESTINATIONS is false")

    workloads = [*by_kind.get("Deployment", {}).values(), *by_kind.get("Job", {}).values()]
    for workload in workloads:
        name = f"{label}: {ident(workload)}"
        pod = workload["spec"]["template"]["spec"]
        psc = pod.get("securityContext", {})
        check(pod.get("automountServiceAccountToken") is False
              and pod.get("serviceAccountName") in by_kind.get("ServiceAccount", {}),
              f"{name}: own ServiceAccount, no token mounted")
        check(pod.get("enableServiceLinks") is False, f"{name}: enableServiceLinks false")
        check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == UID
              and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
              f"{name}: pod securityContext (non-root {UID}, seccomp RuntimeDefault)")
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            cname = f"{name}/{container['name']}"
            sc = container.get("securityContext", {})
            check(sc.get("runAsNonRoot") is True and sc.get("runAsUser") == UID
                  and sc.get("readOnlyRootFilesystem") is True
                  and sc.get("allowPrivilegeEscalation") is False
                  and sc.get("capabilities", {}).get("drop") == ["ALL"]
                  and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
                  f"{cname}: container securityContext (read-only root, no escalation, drop ALL)")
            check(str(container.get("image", "")).startswith(IMAGE + ":")
                  or str(container.get("image", "")).startswith(IMAGE + "@"),
                  f"{cname}: image {container.get('image')}")
            resources = container.get("resources", {})
            check({"cpu", "memory"} <= set(resources.get("requests", {}))
                  and {"cpu", "memory"} <= set(resources.get("limits", {})),
                  f"{cname}: cpu and memory requests and limits")
            refs = container.get("envFrom", [])
            cm = {r["configMapRef"]["name"] for r in refs if "configMapRef" in r}
            sec = {r["secretRef"]["name"] for r in refs if "secretRef" in r}
            check(cm and cm <= set(by_kind.get("ConfigMap", {})) and sec == {"octohooks"},
                  f"{cname}: envFrom ConfigMap {sorted(cm)} and Secret {sorted(sec)}")
            command = container.get("command") or container.get("args") or []
            check(command[:1] in (["octohooks-api"], ["octohooks-dispatcher"]),
                  f"{cname}: runs {' '.join(command)}")

    # Deployments: probes on the configured ports; selectors; grace periods.
    listen = {
        "octohooks-api": port_of(config.get("OCTOHOOKS_LISTEN_ADDR", ":0")),
        "octohooks-dispatcher": port_of(config.get("OCTOHOOKS_DISPATCHER_LISTEN_ADDR", ":0")),
    }
    for deployment in by_kind.get("Deployment", {}).values():
        dname = deployment["metadata"]["name"]
        name = f"{label}: {ident(deployment)}"
        template_labels = deployment["spec"]["template"]["metadata"].get("labels", {})
        selector = deployment["spec"]["selector"].get("matchLabels", {})
        check(selector and selector.items() <= template_labels.items(),
              f"{name}: selector matches its pod labels")
        check(deployment["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxUnavailable") == 0,
              f"{name}: rolling update with maxUnavailable 0")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        check(listen.get(dname) in ports.values(),
              f"{name}: container port {listen.get(dname)} = the configured listen port")
        for probe, path in (("startupProbe", "/health/live"), ("livenessProbe", "/health/live"),
                            ("readinessProbe", "/health/ready")):
            get = container.get(probe, {}).get("httpGet", {})
            port = get.get("port")
            port = ports.get(port, port)
            check(get.get("path") == path and port == listen.get(dname),
                  f"{name}: {probe} GET {path} on port {port}")
    api = by_kind.get("Deployment", {}).get("octohooks-api")
    if api:
        pod = api["spec"]["template"]["spec"]
        pre_stop = pod["containers"][0].get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        check(pre_stop[:1] == ["sleep"], f"{label}: API preStop {' '.join(pre_stop)}")
        check(pod.get("terminationGracePeriodSeconds", 30) >= 30,
              f"{label}: API grace period {pod.get('terminationGracePeriodSeconds', 30)} s"
              " covers preStop 5 s + actix shutdown_timeout 25 s")
    dispatcher = by_kind.get("Deployment", {}).get("octohooks-dispatcher")
    if dispatcher:
        grace = dispatcher["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
        timeout = parse_seconds(config.get("OCTOHOOKS_DELIVERY_TIMEOUT", "15s")) or 0
        check(grace > timeout, f"{label}: dispatcher grace period {grace} s > delivery timeout {timeout:g} s")

    pod_labels = {n: d["spec"]["template"]["metadata"].get("labels", {})
                  for n, d in by_kind.get("Deployment", {}).items()}
    for kind in ("Service", "PodDisruptionBudget"):
        for obj in by_kind.get(kind, {}).values():
            selector = obj["spec"]["selector"]
            selector = selector.get("matchLabels", {}) if kind == "PodDisruptionBudget" else selector
            matched = [n for n, labels in pod_labels.items() if selector.items() <= labels.items()]
            check(len(matched) == 1, f"{label}: {ident(obj)} selects pods of {', '.join(matched) or 'nothing'}")
    service = by_kind.get("Service", {}).get("octohooks-api")
    if service and api:
        names = {p.get("name") for p in api["spec"]["template"]["spec"]["containers"][0].get("ports", [])}
        check(all(p.get("targetPort") in names or p.get("targetPort") == listen["octohooks-api"]
                  for p in service["spec"]["ports"]),
              f"{label}: Service targetPort is the API's port")
    for hpa in by_kind.get("HorizontalPodAutoscaler", {}).values():
        target = hpa["spec"]["scaleTargetRef"]
        check(target["kind"] == "Deployment" and target["name"] in pod_labels,
              f"{label}: {ident(hpa)} scales Deployment/{target['name']} ({hpa['spec'].get('minReplicas')}-{hpa['spec']['maxReplicas']})")
    for policy in by_kind.get("NetworkPolicy", {}).values():
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        matched = [n for n, labels in pod_labels.items() if selector.items() <= labels.items()]
        check(matched, f"{label}: {ident(policy)} applies to {', '.join(matched)}")
    return by_kind


kinds = {}
for label, docs in rendered.items():
    kinds[label] = conventions(label, docs)

# ---------------------------------------------------------------------------------------
print("-- Dockerfile")
with open("Dockerfile") as handle:
    dockerfile = handle.read()
users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
check(users and users[-1].split(":")[0] == str(UID), f"Dockerfile: final USER {users[-1] if users else None} = runAsUser {UID}")
check(re.search(r"cargo build --release --locked --bins", dockerfile) is not None,
      "Dockerfile: cargo build --release --locked --bins")
check(re.search(r"^EXPOSE\s+8080\s+8081\s+8082\s*$", dockerfile, re.M) is not None,
      "Dockerfile: EXPOSE 8080 8081 8082")
check("OCTOHOOKS_METRICS_LISTEN_ADDR=0.0.0.0:8082" in dockerfile,
      "Dockerfile: the API's metrics listener on 0.0.0.0:8082")

# ---------------------------------------------------------------------------------------
print("-- KEDA (optional)")
base = kinds["base"]
base_config = base.get("ConfigMap", {}).get("octohooks", {}).get("data", {})
auths = {d["metadata"]["name"] for d in keda if d.get("kind") == "TriggerAuthentication"}
for doc in keda:
    name = f"keda-scaledobject.yaml: {ident(doc)}"
    if doc.get("kind") == "ScaledObject":
        target = doc["spec"]["scaleTargetRef"]["name"]
        check(target in base.get("Deployment", {}), f"{name} scales Deployment/{target} of the base")
        check(doc["spec"].get("minReplicaCount", 0) >= 1, f"{name} keeps at least one replica")
        for trigger in doc["spec"].get("triggers", []):
            ref = trigger.get("authenticationRef", {}).get("name")
            if ref is not None:
                check(ref in auths, f"{name}: trigger {trigger['type']} authenticationRef {ref} defined")
            if trigger["type"] == "rabbitmq":
                check(trigger["metadata"].get("queueName") == base_config.get("OCTOHOOKS_QUEUE_NAME"),
                      f"{name}: rabbitmq queueName = OCTOHOOKS_QUEUE_NAME")
    elif doc.get("kind") == "TriggerAuthentication":
        for ref in doc["spec"].get("secretTargetRef", []):
            check(ref["name"] == "octohooks" and ref["key"] in secret_data,
                  f"{name}: reads Secret octohooks key {ref['key']}")
    else:
        fail(f"{name}: unexpected kind")
scaled = {d["spec"]["scaleTargetRef"]["name"] for d in with_keda if d.get("kind") == "ScaledObject"}
hpa_targets = {d["spec"]["scaleTargetRef"]["name"] for d in with_keda
               if d.get("kind") == "HorizontalPodAutoscaler"}
check(scaled and not scaled & hpa_targets,
      f"production+keda: {', '.join(sorted(scaled))} scaled by KEDA only (its CPU HPA removed)")

# ---------------------------------------------------------------------------------------
print("-- docker-compose.yml consistency")
with open(COMPOSE) as handle:
    compose = yaml.safe_load(handle)
services = compose.get("services", {})
for sname, service in services.items():
    for dep in service.get("depends_on", {}) or {}:
        check(dep in services, f"compose: {sname} depends on defined service {dep}")
    env = service.get("environment", {}) or {}
    unknown = sorted(k for k in env if k.startswith("OCTOHOOKS_") and k not in known_env)
    if any(k.startswith("OCTOHOOKS_") for k in env):
        check(not unknown, f"compose: {sname} sets only known OCTOHOOKS_* keys"
              + (f" (unknown: {unknown})" if unknown else ""))
check(services.get("migrate", {}).get("command") == ["octohooks-api", "migrate"], "compose: migrate runs octohooks-api migrate")
for sname in ("api", "dispatcher"):
    deps = services.get(sname, {}).get("depends_on", {})
    check(deps.get("migrate", {}).get("condition") == "service_completed_successfully",
          f"compose: {sname} waits for migrate to complete successfully")

total = results["ok"] + results["fail"]
if results["fail"]:
    print(f"validate-deploy: FAILED, {results['fail']} of {total} checks ({results['skip']} skipped)")
    sys.exit(1)
print(f"validate-deploy: {total} checks ok ({results['skip']} skipped)")
PY

if [ "$status" -ne 0 ]; then
  echo "validate-deploy: FAILED" >&2
fi
exit "$status"
