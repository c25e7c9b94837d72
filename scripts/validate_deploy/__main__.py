"""`make validate-deploy`: offline checks of the deployment files, no cluster and no Docker
engine needed. Run from the repository root: `python3 scripts/validate_deploy`.

1. docker-compose.yml against the compose-spec JSON schema (vendored by check-jsonschema), and
   its consistency (depends_on targets, known OCTOHOOKS_* keys).
2. `kubectl kustomize` of deploy/base and deploy/overlays/production; every rendered document,
   and deploy/base/secret.example.yaml, against the Kubernetes OpenAPI schemas bundled with
   kubernetes-validate (strict), for the oldest and the newest Kubernetes version it bundles
   (override: K8S_VERSIONS="1.30.0 1.33.0").
3. The conventions the schemas cannot see (checks.py).
4. The production overlay with the optional KEDA component (deploy/optional): built-in kinds
   against the schemas as above; KEDA's kinds are custom resources with no bundled schema, so
   their schema check is skipped (said so in the output) and only their references are checked.
5. deploy/rabbitmq/cluster.yaml (a three-node RabbitMQ cluster, applied on its own): its
   PodDisruptionBudget against the schemas; the operator's RabbitmqCluster is skipped likewise.

Needs python3 and kubectl (KUBECTL=/path/to/kubectl); installs the Python packages pyyaml,
kubernetes-validate and check-jsonschema with pip when they are missing. Without kubectl the
manifests cannot be rendered: those checks are reported as skipped and the rest still run.
Exits non-zero on any failure.
"""

import importlib.util
import os
import shutil
import site
import subprocess
import sys
import tempfile
import tomllib

import checks
import schemas
from report import Report

PACKAGES = {
    "yaml": "pyyaml",
    "kubernetes_validate": "kubernetes-validate",
    "check_jsonschema": "check-jsonschema",
}
TARGETS = ("deploy/base", "deploy/overlays/production")


def pip_install(package):
    """pip, installed from Debian's package if absent; into the user's site when the system's
    Python is externally managed (Debian 12)."""
    if importlib.util.find_spec("pip") is None:
        apt = ["apt-get", "install", "-y", "-qq", "python3-pip"]
        subprocess.run(apt if os.geteuid() == 0 else ["sudo", *apt], check=True)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if subprocess.run([*pip, package]).returncode != 0:
        subprocess.run([*pip, "--user", "--break-system-packages", package], check=True)


def install_missing():
    for module, package in PACKAGES.items():
        if importlib.util.find_spec(module) is None:
            print(f"validate-deploy: installing {package}")
            pip_install(package)
    # A user site made just now is not on the path yet.
    site.addsitedir(site.getusersitepackages())
    importlib.invalidate_caches()


def load(path):
    import yaml

    with open(path) as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def kustomize(kubectl, target, label=None):
    """The rendered documents of one kustomization, or None (with the error printed)."""
    import yaml

    label = label or target
    done = subprocess.run([kubectl, "kustomize", target], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"FAIL {label}: kubectl kustomize failed")
        for line in done.stderr.splitlines():
            print(f"     {line}")
        return None
    docs = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    print(f"ok   {label}: {len(docs)} documents")
    return docs


def with_keda(kubectl, workdir):
    """The production overlay with the optional KEDA component, as an overlay would use it."""
    overlay = os.path.join(workdir, "keda")
    os.makedirs(overlay)
    with open(os.path.join(overlay, "kustomization.yaml"), "w") as handle:
        handle.write(
            "apiVersion: kustomize.config.k8s.io/v1beta1\n"
            "kind: Kustomization\n"
            "resources:\n"
            f"  - {os.path.relpath(os.path.abspath('deploy/overlays/production'), overlay)}\n"
            "components:\n"
            f"  - {os.path.relpath(os.path.abspath('deploy/optional'), overlay)}\n"
        )
    return kustomize(kubectl, overlay, "deploy/overlays/production + deploy/optional (KEDA)")


def main():
    install_missing()
    import yaml

    report = Report()
    print("== docker-compose.yml: compose-spec schema")
    compose_schema = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"]
    )
    report.check(compose_schema.returncode == 0, "docker-compose.yml: compose-spec schema")

    with open("crates/platform/src/defaults.toml", "rb") as handle:
        keys = checks.Keys(tomllib.load(handle))
    secret_example = load("deploy/base/secret.example.yaml")
    keda_docs = load("deploy/optional/keda-scaledobject.yaml")

    print("== kustomize build")
    kubectl = shutil.which(os.environ.get("KUBECTL", "kubectl"))
    rendered, keda_rendered = {}, None
    if kubectl is None:
        report.skip("kubectl not found: the kustomizations are not rendered or checked")
    else:
        with tempfile.TemporaryDirectory() as workdir:
            for target in TARGETS:
                docs = kustomize(kubectl, target)
                if docs is None:
                    return 1
                rendered["base" if target == "deploy/base" else "production"] = docs
            keda_rendered = with_keda(kubectl, workdir)
            if keda_rendered is None:
                return 1

    print("== Kubernetes schemas and conventions")
    versions = schemas.versions()
    print(f"     schemas for Kubernetes {', '.join(versions)} (strict)")
    report.section("schemas")
    for label, docs in rendered.items():
        schemas.schema_check(report, label, docs, versions)
    schemas.schema_check(report, "secret.example.yaml", secret_example, versions)
    if keda_rendered is not None:
        schemas.schema_check(report, "production+keda", keda_rendered, versions)
    schemas.schema_check(report, "rabbitmq/cluster.yaml", load("deploy/rabbitmq/cluster.yaml"), versions)

    report.section("configuration keys (against defaults.toml)")
    secret_data = checks.secret_example(report, secret_example, keys)
    kinds = {label: checks.conventions(report, label, docs, keys) for label, docs in rendered.items()}
    with open("Dockerfile") as handle:
        checks.dockerfile(report, handle.read())
    base_kinds = kinds.get("base") or checks.by_kind(
        [doc for path in ("configmap.yaml", "api-deployment.yaml", "dispatcher-deployment.yaml")
         for doc in load(os.path.join("deploy/base", path))]
    )
    checks.keda(report, keda_docs, base_kinds, secret_data, keda_rendered)
    with open("docker-compose.yml") as handle:
        checks.compose(report, yaml.safe_load(handle), keys)

    counts = report.counts
    total = counts["ok"] + counts["fail"]
    if counts["fail"]:
        print(f"validate-deploy: FAILED, {counts['fail']} of {total} checks ({counts['skip']} skipped)")
        return 1
    print(f"validate-deploy: {total} checks ok ({counts['skip']} skipped)")
    return 0


if __name__ == "__main__":
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    sys.exit(main())
