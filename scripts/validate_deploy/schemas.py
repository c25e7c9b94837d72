"""Rendered documents against the Kubernetes OpenAPI schemas bundled with kubernetes-validate
(strict: unknown fields fail), for the oldest and the newest version it bundles."""

import os

# API groups of custom resources: no schema is bundled for them, so they are skipped.
CRD_GROUPS = {"keda.sh", "rabbitmq.com"}


def ident(doc):
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def group(doc):
    api_version = doc.get("apiVersion", "")
    return api_version.split("/")[0] if "/" in api_version else ""


def versions():
    """The Kubernetes versions to check: K8S_VERSIONS, or the oldest and newest bundled."""
    from kubernetes_validate import utils as kv

    bundled = sorted(set(kv.all_versions()), key=lambda v: tuple(int(p) for p in v.split(".")))
    return os.environ.get("K8S_VERSIONS", "").split() or sorted(
        {bundled[0], bundled[-1]}, key=bundled.index
    )


def schema_check(report, label, docs, k8s_versions):
    from kubernetes_validate import utils as kv

    for doc in docs:
        name = f"{label}: {ident(doc)}"
        if group(doc) in CRD_GROUPS:
            report.skip(f"{name} ({doc['apiVersion']} is a custom resource: no bundled schema)")
            continue
        errors = []
        for version in k8s_versions:
            try:
                kv.validate(doc, version, strict=True)
            except kv.ValidationError as err:
                where = "/".join(str(p) for p in err.path) or "(root)"
                errors.append(f"k8s {version}: {where}: {err.message}")
            except kv.SchemaNotFoundError as err:
                errors.append(err.message)
        if errors:
            report.fail(name, errors)
        else:
            report.ok(f"{name} schema")
