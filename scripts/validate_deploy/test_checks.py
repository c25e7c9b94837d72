"""Each convention check fails on a manifest that breaks it, and the real manifests pass them
all. Run from the repository root: `python3 -m unittest discover -s scripts/validate_deploy`."""

import copy
import os
import shutil
import subprocess
import tomllib
import unittest

import yaml

import checks
from report import Report

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
KUBECTL = shutil.which(os.environ.get("KUBECTL", "kubectl"))


def read(path):
    with open(os.path.join(ROOT, path)) as handle:
        return handle.read()


def keys():
    with open(os.path.join(ROOT, "crates/platform/src/defaults.toml"), "rb") as handle:
        return checks.Keys(tomllib.load(handle))


def rendered_base():
    done = subprocess.run(
        [KUBECTL, "kustomize", os.path.join(ROOT, "deploy/base")],
        capture_output=True,
        text=True,
        check=True,
    )
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def find(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def failures_of(docs):
    report = Report(quiet=True)
    checks.conventions(report, "base", docs, keys())
    return report.failures


@unittest.skipIf(KUBECTL is None, "kubectl is needed to render deploy/base")
class Conventions(unittest.TestCase):
    def setUp(self):
        self.docs = rendered_base()

    def broken(self):
        return copy.deepcopy(self.docs)

    def assert_fails(self, docs, fragment):
        failed = failures_of(docs)
        self.assertTrue(
            any(fragment in message for message in failed),
            f"no failure mentions {fragment!r}: {failed}",
        )

    def test_the_base_passes(self):
        self.assertEqual(failures_of(self.docs), [])

    def test_a_pod_running_as_root_fails(self):
        docs = self.broken()
        find(docs, "Deployment", "octohooks-api")["spec"]["template"]["spec"]["securityContext"][
            "runAsUser"
        ] = 0
        self.assert_fails(docs, "Deployment/octohooks-api: pod securityContext")

    def test_a_writable_root_filesystem_fails(self):
        docs = self.broken()
        pod = find(docs, "Deployment", "octohooks-dispatcher")["spec"]["template"]["spec"]
        pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
        self.assert_fails(docs, "container securityContext")

    def test_a_missing_configuration_key_fails(self):
        docs = self.broken()
        del find(docs, "ConfigMap", "octohooks")["data"]["OCTOHOOKS_RETRY_SCHEDULE"]
        self.assert_fails(docs, "ConfigMap has every non-secret key")

    def test_a_probe_on_another_port_fails(self):
        docs = self.broken()
        container = find(docs, "Deployment", "octohooks-api")["spec"]["template"]["spec"][
            "containers"
        ][0]
        container["readinessProbe"]["httpGet"]["port"] = 9999
        self.assert_fails(docs, "readinessProbe GET /health/ready")

    def test_a_service_selecting_nothing_fails(self):
        docs = self.broken()
        find(docs, "Service", "octohooks-api")["spec"]["selector"] = {"app": "nobody"}
        self.assert_fails(docs, "Service/octohooks-api selects pods of nothing")

    def test_a_rendered_secret_fails(self):
        docs = self.broken()
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "octohooks", "namespace": "octohooks"},
            }
        )
        self.assert_fails(docs, "no Secret rendered")

    def test_a_short_dispatcher_grace_period_fails(self):
        docs = self.broken()
        pod = find(docs, "Deployment", "octohooks-dispatcher")["spec"]["template"]["spec"]
        pod["terminationGracePeriodSeconds"] = 10
        self.assert_fails(docs, "dispatcher grace period 10 s > delivery timeout")


class Files(unittest.TestCase):
    def test_the_dockerfile_passes_and_a_root_user_fails(self):
        text = read("Dockerfile")
        report = Report(quiet=True)
        checks.dockerfile(report, text)
        self.assertEqual(report.failures, [])
        report = Report(quiet=True)
        checks.dockerfile(report, text + "\nUSER root\n")
        self.assertTrue(any("final USER root" in m for m in report.failures), report.failures)

    def test_compose_passes_and_an_unknown_key_fails(self):
        compose = yaml.safe_load(read("docker-compose.yml"))
        report = Report(quiet=True)
        checks.compose(report, compose, keys())
        self.assertEqual(report.failures, [])
        compose["services"]["api"].setdefault("environment", {})["OCTOHOOKS_NO_SUCH_KEY"] = "1"
        report = Report(quiet=True)
        checks.compose(report, compose, keys())
        self.assertTrue(
            any("OCTOHOOKS_NO_SUCH_KEY" in m for m in report.failures), report.failures
        )

    def test_the_secret_example_holds_exactly_the_secret_keys(self):
        docs = [d for d in yaml.safe_load_all(read("deploy/base/secret.example.yaml")) if d]
        report = Report(quiet=True)
        checks.secret_example(report, docs, keys())
        self.assertEqual(report.failures, [])
        secret = next(d for d in docs if d["kind"] == "Secret")
        secret.setdefault("stringData", {})["OCTOHOOKS_LISTEN_ADDR"] = "0.0.0.0:1"
        report = Report(quiet=True)
        checks.secret_example(report, docs, keys())
        self.assertEqual(len(report.failures), 1)


if __name__ == "__main__":
    unittest.main()
