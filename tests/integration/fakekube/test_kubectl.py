"""Conformance with the real kubectl (1.32): the commands ops engineers and CI run."""

from __future__ import annotations

import yaml

from reconciler.testing.fakekube import FakeKube
from tests.support.kubectl import Kubectl

MANIFESTS = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: {image}
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
"""


def manifests(image: str = "nginx:1.25") -> str:
    """The multi-document file the tests apply."""
    return MANIFESTS.replace("{image}", image)


async def _apply(kubectl: Kubectl, image: str = "nginx:1.25") -> str:
    path = kubectl.write("app.yaml", manifests(image))
    result = await kubectl.run("apply", "--server-side", "-f", str(path))
    return result.stdout


async def test_apply_server_side_multi_document(kubectl: Kubectl) -> None:
    """kubectl apply --server-side applies every document of a file, namespace first."""
    out = await _apply(kubectl)
    assert out.splitlines() == [
        "namespace/shop serverside-applied",
        "configmap/settings serverside-applied",
        "deployment.apps/web serverside-applied",
        "service/web serverside-applied",
    ]
    again = await _apply(kubectl)
    assert "deployment.apps/web serverside-applied" in again


async def test_get_yaml_with_managed_fields(kubectl: Kubectl) -> None:
    """get -o yaml --show-managed-fields shows kubectl's Apply entry in FieldsV1."""
    await _apply(kubectl)
    result = await kubectl.run(
        "get", "deploy", "web", "-n", "shop", "-o", "yaml", "--show-managed-fields"
    )
    obj = yaml.safe_load(result.stdout)
    applied = next(e for e in obj["metadata"]["managedFields"] if e["operation"] == "Apply")
    assert applied["manager"] == "kubectl"
    containers = applied["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert 'k:{"name":"web"}' in containers
    hidden = await kubectl.run("get", "deploy", "web", "-n", "shop", "-o", "yaml")
    assert "managedFields" not in hidden.stdout


async def test_diff_after_apply_is_empty(kubectl: Kubectl) -> None:
    """diff --server-side right after an apply finds nothing; a change is shown."""
    await _apply(kubectl)
    # Let the controllers settle: a diff during a rollout shows their status writes.
    await kubectl.run("rollout", "status", "deploy/web", "-n", "shop", "--timeout=30s")
    path = kubectl.write("app.yaml", manifests())
    quiet = await kubectl.run("diff", "--server-side", "-f", str(path), check=False)
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert quiet.stdout == ""
    changed = kubectl.write("changed.yaml", manifests("nginx:1.27"))
    loud = await kubectl.run("diff", "--server-side", "-f", str(changed), check=False)
    assert loud.returncode == 1
    assert "+      - image: nginx:1.27" in loud.stdout


async def test_rollout_status_succeeds_for_a_good_image(kubectl: Kubectl) -> None:
    """rollout status waits for the rollout and reports success."""
    await _apply(kubectl)
    result = await kubectl.run("rollout", "status", "deploy/web", "-n", "shop", "--timeout=30s")
    assert 'deployment "web" successfully rolled out' in result.stdout


async def test_rollout_status_fails_past_the_progress_deadline(
    kubectl: Kubectl, fakekube: FakeKube
) -> None:
    """A crashlooping image makes rollout status fail with 'exceeded its progress deadline'."""
    fakekube.time_factor = 0.005
    fakekube.faults.crashloop_images = ["*:broken"]
    await _apply(kubectl, "shop/web:broken")
    result = await kubectl.run(
        "rollout", "status", "deploy/web", "-n", "shop", "--timeout=60s", check=False
    )
    assert result.returncode != 0
    assert 'deployment "web" exceeded its progress deadline' in result.stderr


async def test_scale_and_wait(kubectl: Kubectl) -> None:
    """kubectl scale changes replicas; wait --for=condition=Available returns once it holds."""
    await _apply(kubectl)
    scaled = await kubectl.run("scale", "deploy/web", "-n", "shop", "--replicas=3")
    assert "deployment.apps/web scaled" in scaled.stdout
    waited = await kubectl.run(
        "wait", "--for=condition=Available", "deploy/web", "-n", "shop", "--timeout=30s"
    )
    assert "condition met" in waited.stdout
    replicas = await kubectl.run(
        "get", "deploy", "web", "-n", "shop", "-o", "jsonpath={.spec.replicas}"
    )
    assert replicas.stdout == "3"


async def test_delete_file(kubectl: Kubectl, fakekube: FakeKube) -> None:
    """delete -f deletes every document and waits for them to go."""
    await _apply(kubectl)
    path = kubectl.write("app.yaml", manifests())
    result = await kubectl.run("delete", "-f", str(path), "--timeout=30s")
    assert 'namespace "shop" deleted' in result.stdout
    assert 'deployment.apps "web" deleted' in result.stdout
    assert fakekube.get_object(api_version="v1", kind="Namespace", name="shop") is None
    assert (
        fakekube.get_object(api_version="apps/v1", kind="Deployment", name="web", namespace="shop")
        is None
    )


async def test_conflict_between_managers_then_force(kubectl: Kubectl) -> None:
    """A second field manager conflicts on replicas; --force-conflicts takes it over."""
    await _apply(kubectl)
    other = manifests().replace("replicas: 2", "replicas: 5")
    path = kubectl.write("other.yaml", other)
    conflict = await kubectl.run(
        "apply", "--server-side", "--field-manager=ops", "-f", str(path), check=False
    )
    assert conflict.returncode != 0
    assert 'conflict with "kubectl"' in conflict.stderr
    assert ".spec.replicas" in conflict.stderr
    await kubectl.run(
        "apply", "--server-side", "--field-manager=ops", "--force-conflicts", "-f", str(path)
    )
    replicas = await kubectl.run(
        "get", "deploy", "web", "-n", "shop", "-o", "jsonpath={.spec.replicas}"
    )
    assert replicas.stdout == "5"


async def test_get_all(kubectl: Kubectl) -> None:
    """get all lists pods, services, deployments and replica sets with their columns."""
    await _apply(kubectl)
    await kubectl.run("rollout", "status", "deploy/web", "-n", "shop", "--timeout=30s")
    result = await kubectl.run("get", "all", "-n", "shop")
    out = result.stdout
    assert "service/web" in out and "ClusterIP" in out
    assert "deployment.apps/web" in out and "2/2" in out
    assert "replicaset.apps/web-" in out
    assert out.count("pod/web-") == 2 and "Running" in out


async def test_client_side_apply_and_edit_style_patches(kubectl: Kubectl) -> None:
    """Client-side apply (strategic merge patches with directives) and set image work."""
    path = kubectl.write("app.yaml", manifests())
    await kubectl.run("apply", "-f", str(path))
    changed = kubectl.write("app.yaml", manifests("nginx:1.27"))
    result = await kubectl.run("apply", "-f", str(changed))
    assert "deployment.apps/web configured" in result.stdout
    await kubectl.run("set", "image", "deploy/web", "-n", "shop", "web=nginx:1.28")
    image = await kubectl.run(
        "get",
        "deploy",
        "web",
        "-n",
        "shop",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    )
    assert image.stdout == "nginx:1.28"
    restarted = await kubectl.run("rollout", "restart", "deploy/web", "-n", "shop")
    assert "restarted" in restarted.stdout


async def test_imperative_create_is_refused_with_a_clear_message(kubectl: Kubectl) -> None:
    """kubectl create sends protobuf, which fakekube refuses saying so."""
    result = await kubectl.run("create", "namespace", "imperative", check=False)
    assert result.returncode != 0
    assert "protobuf" in result.stderr


async def test_client_side_to_server_side_upgrade(kubectl: Kubectl) -> None:
    """After a client-side apply, kubectl's first server-side apply takes its fields over."""
    path = kubectl.write("app.yaml", manifests())
    await kubectl.run("apply", "-f", str(path))
    scaled = kubectl.write("scaled.yaml", manifests().replace("replicas: 2", "replicas: 4"))
    result = await kubectl.run("apply", "--server-side", "-f", str(scaled))
    assert "deployment.apps/web serverside-applied" in result.stdout
    replicas = await kubectl.run(
        "get", "deploy", "web", "-n", "shop", "-o", "jsonpath={.spec.replicas}"
    )
    assert replicas.stdout == "4"
