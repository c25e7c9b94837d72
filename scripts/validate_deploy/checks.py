"""The conventions the schemas cannot see, as plain functions of parsed documents: security
contexts, probes and ports against the configuration, selectors against pod labels, ConfigMap
and Secret keys against crates/platform/src/defaults.toml, the image's user against runAsUser,
the optional KEDA component, and docker-compose.yml."""

import re

from schemas import ident

SECRET_KEYS = {
    "database_url",
    "amqp_url",
    "admin_token",
    "secret_encryption_key",
    "secret_decryption_keys",
    "portal_signing_key",
    "proxy_url",
}
IMAGE = "ghcr.io/octohooks/octohooks"
UID = 10001
EXPECTED_OBJECTS = {
    ("Deployment", "octohooks-api"),
    ("Deployment", "octohooks-dispatcher"),
    ("Job", "octohooks-migrate"),
    ("Service", "octohooks-api"),
    ("HorizontalPodAutoscaler", "octohooks-api"),
    ("HorizontalPodAutoscaler", "octohooks-dispatcher"),
    ("PodDisruptionBudget", "octohooks-api"),
    ("PodDisruptionBudget", "octohooks-dispatcher"),
    ("ConfigMap", "octohooks"),
    ("ServiceAccount", "octohooks"),
}


class Keys:
    """The OCTOHOOKS_* variables the services know (every key of defaults.toml), split into
    those that belong in the Secret and those that belong in the ConfigMap."""

    def __init__(self, defaults):
        self.known = {f"OCTOHOOKS_{key.upper()}" for key in defaults}
        self.secret = {f"OCTOHOOKS_{key.upper()}" for key in SECRET_KEYS}
        self.plain = self.known - self.secret


def parse_seconds(text):
    match = re.fullmatch(r"(\d+)(ms|s|m|h)", str(text).strip())
    if not match:
        return None
    value, unit = int(match.group(1)), match.group(2)
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def port_of(addr):
    return int(str(addr).rsplit(":", 1)[1])


def by_kind(docs):
    kinds = {}
    for doc in docs:
        kinds.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    return kinds


def secret_example(report, docs, keys):
    """The example Secret holds exactly the secret keys; returns its data."""
    data = {}
    for doc in docs:
        if doc.get("kind") == "Secret":
            data = {**doc.get("data", {}), **doc.get("stringData", {})}
    report.check(
        set(data) == keys.secret,
        f"secret.example.yaml holds exactly {', '.join(sorted(keys.secret))}",
    )
    return data


def conventions(report, label, docs, keys):
    """Every convention of one rendered kustomization; returns its objects by kind and name."""
    report.section(f"conventions: {label}")
    kinds = by_kind(docs)
    _objects(report, label, docs, kinds)
    config = kinds.get("ConfigMap", {}).get("octohooks", {}).get("data", {})
    _config(report, label, config, keys)
    for workload in [*kinds.get("Deployment", {}).values(), *kinds.get("Job", {}).values()]:
        _workload(report, label, workload, kinds)
    _deployments(report, label, kinds, config)
    _selectors(report, label, kinds, config)
    return kinds


def _objects(report, label, docs, kinds):
    report.check("Secret" not in kinds, f"{label}: no Secret rendered (credentials stay out of Git)")
    namespaces = list(kinds.get("Namespace", {}))
    if report.check(len(namespaces) == 1, f"{label}: one Namespace ({', '.join(namespaces)})"):
        stray = [
            ident(d)
            for d in docs
            if d["kind"] != "Namespace" and d["metadata"].get("namespace") != namespaces[0]
        ]
        report.check(
            not stray,
            f"{label}: every object in namespace {namespaces[0]}"
            + (f" (not: {', '.join(stray)})" if stray else ""),
        )
    missing = sorted(f"{k}/{n}" for k, n in EXPECTED_OBJECTS if n not in kinds.get(k, {}))
    report.check(
        not missing,
        f"{label}: all expected objects present"
        + (f" (missing: {', '.join(missing)})" if missing else ""),
    )
    for account in kinds.get("ServiceAccount", {}).values():
        report.check(
            account.get("automountServiceAccountToken") is False,
            f"{label}: {ident(account)} automountServiceAccountToken false",
        )


def _config(report, label, config, keys):
    present = {k for k in config if k.startswith("OCTOHOOKS_")}
    report.check(
        present == keys.plain,
        f"{label}: ConfigMap has every non-secret key and no other OCTOHOOKS_* key"
        + (
            f" (missing: {sorted(keys.plain - present)}, unknown: {sorted(present - keys.plain)})"
            if present != keys.plain
            else ""
        ),
    )
    report.check(
        config.get("OCTOHOOKS_LISTEN_ADDR", "").startswith("0.0.0.0:")
        and config.get("OCTOHOOKS_DISPATCHER_LISTEN_ADDR", "").startswith("0.0.0.0:"),
        f"{label}: both listen addresses on 0.0.0.0",
    )
    report.check(
        config.get("OCTOHOOKS_ALLOW_PRIVATE_DESTINATIONS") == "false",
        f"{label}: OCTOHOOKS_ALLOW_PRIVATE_DESTINATIONS is false",
    )


def _workload(report, label, workload, kinds):
    name = f"{label}: {ident(workload)}"
    pod = workload["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    report.check(
        pod.get("automountServiceAccountToken") is False
        and pod.get("serviceAccountName") in kinds.get("ServiceAccount", {}),
        f"{name}: own ServiceAccount, no token mounted",
    )
    report.check(pod.get("enableServiceLinks") is False, f"{name}: enableServiceLinks false")
    report.check(
        psc.get("runAsNonRoot") is True
        and psc.get("runAsUser") == UID
        and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
        f"{name}: pod securityContext (non-root {UID}, seccomp RuntimeDefault)",
    )
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        _container(report, f"{name}/{container['name']}", container, kinds)


def _container(report, name, container, kinds):
    sc = container.get("securityContext", {})
    report.check(
        sc.get("runAsNonRoot") is True
        and sc.get("runAsUser") == UID
        and sc.get("readOnlyRootFilesystem") is True
        and sc.get("allowPrivilegeEscalation") is False
        and sc.get("capabilities", {}).get("drop") == ["ALL"]
        and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
        f"{name}: container securityContext (read-only root, no escalation, drop ALL)",
    )
    image = str(container.get("image", ""))
    report.check(
        image.startswith(IMAGE + ":") or image.startswith(IMAGE + "@"), f"{name}: image {image}"
    )
    resources = container.get("resources", {})
    report.check(
        {"cpu", "memory"} <= set(resources.get("requests", {}))
        and {"cpu", "memory"} <= set(resources.get("limits", {})),
        f"{name}: cpu and memory requests and limits",
    )
    refs = container.get("envFrom", [])
    config_maps = {r["configMapRef"]["name"] for r in refs if "configMapRef" in r}
    secrets = {r["secretRef"]["name"] for r in refs if "secretRef" in r}
    report.check(
        config_maps and config_maps <= set(kinds.get("ConfigMap", {})) and secrets == {"octohooks"},
        f"{name}: envFrom ConfigMap {sorted(config_maps)} and Secret {sorted(secrets)}",
    )
    command = container.get("command") or container.get("args") or []
    report.check(
        command[:1] in (["octohooks-api"], ["octohooks-dispatcher"]),
        f"{name}: runs {' '.join(command)}",
    )


def _listen_ports(config):
    return {
        "octohooks-api": port_of(config.get("OCTOHOOKS_LISTEN_ADDR", ":0")),
        "octohooks-dispatcher": port_of(config.get("OCTOHOOKS_DISPATCHER_LISTEN_ADDR", ":0")),
    }


def _deployments(report, label, kinds, config):
    """Probes on the configured ports, selectors, rolling updates, grace periods."""
    listen = _listen_ports(config)
    deployments = kinds.get("Deployment", {})
    for deployment in deployments.values():
        dname = deployment["metadata"]["name"]
        name = f"{label}: {ident(deployment)}"
        template_labels = deployment["spec"]["template"]["metadata"].get("labels", {})
        selector = deployment["spec"]["selector"].get("matchLabels", {})
        report.check(
            selector and selector.items() <= template_labels.items(),
            f"{name}: selector matches its pod labels",
        )
        strategy = deployment["spec"].get("strategy", {}).get("rollingUpdate", {})
        report.check(
            strategy.get("maxUnavailable") == 0, f"{name}: rolling update with maxUnavailable 0"
        )
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        report.check(
            listen.get(dname) in ports.values(),
            f"{name}: container port {listen.get(dname)} = the configured listen port",
        )
        for probe, path in (
            ("startupProbe", "/health/live"),
            ("livenessProbe", "/health/live"),
            ("readinessProbe", "/health/ready"),
        ):
            get = container.get(probe, {}).get("httpGet", {})
            port = ports.get(get.get("port"), get.get("port"))
            report.check(
                get.get("path") == path and port == listen.get(dname),
                f"{name}: {probe} GET {path} on port {port}",
            )
    api = deployments.get("octohooks-api")
    if api:
        pod = api["spec"]["template"]["spec"]
        lifecycle = pod["containers"][0].get("lifecycle", {})
        pre_stop = lifecycle.get("preStop", {}).get("exec", {}).get("command", [])
        report.check(pre_stop[:1] == ["sleep"], f"{label}: API preStop {' '.join(pre_stop)}")
        grace = pod.get("terminationGracePeriodSeconds", 30)
        report.check(
            grace >= 30,
            f"{label}: API grace period {grace} s covers preStop 5 s + actix shutdown_timeout 25 s",
        )
    dispatcher = deployments.get("octohooks-dispatcher")
    if dispatcher:
        grace = dispatcher["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
        timeout = parse_seconds(config.get("OCTOHOOKS_DELIVERY_TIMEOUT", "15s")) or 0
        report.check(
            grace > timeout,
            f"{label}: dispatcher grace period {grace} s > delivery timeout {timeout:g} s",
        )


def _selectors(report, label, kinds, config):
    """Services, disruption budgets, autoscalers and network policies reach the right pods."""
    deployments = kinds.get("Deployment", {})
    pod_labels = {
        n: d["spec"]["template"]["metadata"].get("labels", {}) for n, d in deployments.items()
    }
    for kind in ("Service", "PodDisruptionBudget"):
        for obj in kinds.get(kind, {}).values():
            selector = obj["spec"]["selector"]
            if kind == "PodDisruptionBudget":
                selector = selector.get("matchLabels", {})
            matched = [n for n, labels in pod_labels.items() if selector.items() <= labels.items()]
            report.check(
                len(matched) == 1,
                f"{label}: {ident(obj)} selects pods of {', '.join(matched) or 'nothing'}",
            )
    service = kinds.get("Service", {}).get("octohooks-api")
    api = deployments.get("octohooks-api")
    if service and api:
        api_port = _listen_ports(config)["octohooks-api"]
        container = api["spec"]["template"]["spec"]["containers"][0]
        names = {p.get("name") for p in container.get("ports", [])}
        report.check(
            all(
                p.get("targetPort") in names or p.get("targetPort") == api_port
                for p in service["spec"]["ports"]
            ),
            f"{label}: Service targetPort is the API's port",
        )
    for hpa in kinds.get("HorizontalPodAutoscaler", {}).values():
        target = hpa["spec"]["scaleTargetRef"]
        spec = hpa["spec"]
        report.check(
            target["kind"] == "Deployment" and target["name"] in pod_labels,
            f"{label}: {ident(hpa)} scales Deployment/{target['name']}"
            f" ({spec.get('minReplicas')}-{spec['maxReplicas']})",
        )
    for policy in kinds.get("NetworkPolicy", {}).values():
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        matched = [n for n, labels in pod_labels.items() if selector.items() <= labels.items()]
        report.check(matched, f"{label}: {ident(policy)} applies to {', '.join(matched)}")


def dockerfile(report, text):
    """The image runs as the manifests' user, builds locked, exposes the three ports."""
    report.section("Dockerfile")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    report.check(
        users and users[-1].split(":")[0] == str(UID),
        f"Dockerfile: final USER {users[-1] if users else None} = runAsUser {UID}",
    )
    report.check(
        re.search(r"cargo build --release --locked --bins", text) is not None,
        "Dockerfile: cargo build --release --locked --bins",
    )
    report.check(
        re.search(r"^EXPOSE\s+8080\s+8081\s+8082\s*$", text, re.M) is not None,
        "Dockerfile: EXPOSE 8080 8081 8082",
    )
    report.check(
        "OCTOHOOKS_METRICS_LISTEN_ADDR=0.0.0.0:8082" in text,
        "Dockerfile: the API's metrics listener on 0.0.0.0:8082",
    )


def keda(report, keda_docs, base_kinds, secret_data, with_keda):
    """The optional KEDA component's references, and that it replaces the CPU autoscaler."""
    report.section("KEDA (optional)")
    base_config = base_kinds.get("ConfigMap", {}).get("octohooks", {}).get("data", {})
    auths = {d["metadata"]["name"] for d in keda_docs if d.get("kind") == "TriggerAuthentication"}
    for doc in keda_docs:
        name = f"keda-scaledobject.yaml: {ident(doc)}"
        if doc.get("kind") == "ScaledObject":
            target = doc["spec"]["scaleTargetRef"]["name"]
            report.check(
                target in base_kinds.get("Deployment", {}),
                f"{name} scales Deployment/{target} of the base",
            )
            report.check(
                doc["spec"].get("minReplicaCount", 0) >= 1, f"{name} keeps at least one replica"
            )
            for trigger in doc["spec"].get("triggers", []):
                ref = trigger.get("authenticationRef", {}).get("name")
                if ref is not None:
                    report.check(
                        ref in auths,
                        f"{name}: trigger {trigger['type']} authenticationRef {ref} defined",
                    )
                if trigger["type"] == "rabbitmq":
                    queue = base_config.get("OCTOHOOKS_QUEUE_NAME")
                    report.check(
                        trigger["metadata"].get("queueName") in (queue, f"{queue}.fanout"),
                        f"{name}: rabbitmq queueName is OCTOHOOKS_QUEUE_NAME or its fan-out queue",
                    )
        elif doc.get("kind") == "TriggerAuthentication":
            for ref in doc["spec"].get("secretTargetRef", []):
                report.check(
                    ref["name"] == "octohooks" and ref["key"] in secret_data,
                    f"{name}: reads Secret octohooks key {ref['key']}",
                )
        else:
            report.fail(f"{name}: unexpected kind")
    if with_keda is None:
        return
    scaled = {d["spec"]["scaleTargetRef"]["name"] for d in with_keda if d.get("kind") == "ScaledObject"}
    hpa_targets = {
        d["spec"]["scaleTargetRef"]["name"]
        for d in with_keda
        if d.get("kind") == "HorizontalPodAutoscaler"
    }
    report.check(
        scaled and not scaled & hpa_targets,
        f"production+keda: {', '.join(sorted(scaled))} scaled by KEDA only (its CPU HPA removed)",
    )


def compose(report, compose_doc, keys):
    """docker-compose.yml: dependencies exist, only known keys, migrations before the services."""
    report.section("docker-compose.yml consistency")
    services = compose_doc.get("services", {})
    for sname, service in services.items():
        for dep in service.get("depends_on", {}) or {}:
            report.check(dep in services, f"compose: {sname} depends on defined service {dep}")
        env = service.get("environment", {}) or {}
        unknown = sorted(k for k in env if k.startswith("OCTOHOOKS_") and k not in keys.known)
        if any(k.startswith("OCTOHOOKS_") for k in env):
            report.check(
                not unknown,
                f"compose: {sname} sets only known OCTOHOOKS_* keys"
                + (f" (unknown: {unknown})" if unknown else ""),
            )
    report.check(
        services.get("migrate", {}).get("command") == ["octohooks-api", "migrate"],
        "compose: migrate runs octohooks-api migrate",
    )
    for sname in ("api", "dispatcher"):
        deps = services.get(sname, {}).get("depends_on", {})
        report.check(
            deps.get("migrate", {}).get("condition") == "service_completed_successfully",
            f"compose: {sname} waits for migrate to complete successfully",
        )
