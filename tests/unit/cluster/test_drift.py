"""Drift: the fields that differ from our apply's dry-run, and the managers that changed them.

The managedFields below are what a kube-apiserver (1.30) writes: our forced server-side apply
(``reconciler``, Apply), the deployment controller's revision annotation and status updates
(``kube-controller-manager``, Update, the latter through the status subresource), ``kubectl
scale`` (no field manager flag, so the server names it after the User-Agent: ``kubectl``,
Update, scale subresource) and ``kubectl set image`` (``kubectl-set``, Update).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from reconciler.cluster.drift import (
    DELETED,
    changed_by,
    describe_drift,
    drifted_fields,
    format_path,
    parse_path,
)

OURS = "reconciler"
WEB_KEY = 'k:{"name":"web"}'
PORT_KEY = 'k:{"containerPort":8080,"protocol":"TCP"}'


def our_apply_entry(*, owns_replicas: bool = True, owns_image: bool = True) -> dict[str, Any]:
    """Our Apply entry; an Update by someone else takes the fields it changed away from it."""
    container: dict[str, Any] = {
        "f:env": {'k:{"name":"MODE"}': {".": {}, "f:name": {}, "f:value": {}}},
        "f:name": {},
        "f:ports": {PORT_KEY: {".": {}, "f:containerPort": {}, "f:name": {}}},
    }
    if owns_image:
        container["f:image"] = {}
    spec: dict[str, Any] = {
        "f:selector": {},
        "f:template": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:containers": {WEB_KEY: container}},
        },
    }
    if owns_replicas:
        spec["f:replicas"] = {}
    return {
        "manager": OURS,
        "operation": "Apply",
        "apiVersion": "apps/v1",
        "time": "2026-12-01T10:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}, "f:tier": {}}}, "f:spec": spec},
    }


def controller_entries(*, time: str) -> list[dict[str, Any]]:
    """The deployment controller's writes: the revision annotation and the status."""
    revision = {
        "manager": "kube-controller-manager",
        "operation": "Update",
        "apiVersion": "apps/v1",
        "time": time,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:annotations": {".": {}, "f:deployment.kubernetes.io/revision": {}}}
        },
    }
    status = {
        "manager": "kube-controller-manager",
        "operation": "Update",
        "apiVersion": "apps/v1",
        "time": time,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:status": {
                "f:availableReplicas": {},
                "f:conditions": {
                    ".": {},
                    'k:{"type":"Available"}': {".": {}, "f:status": {}, "f:type": {}},
                },
                "f:observedGeneration": {},
                "f:readyReplicas": {},
                "f:replicas": {},
            }
        },
        "subresource": "status",
    }
    return [revision, status]


KUBECTL_SCALE = {
    "manager": "kubectl",
    "operation": "Update",
    "apiVersion": "apps/v1",
    "time": "2026-12-01T11:00:00Z",
    "fieldsType": "FieldsV1",
    "fieldsV1": {"f:spec": {"f:replicas": {}}},
    "subresource": "scale",
}
KUBECTL_SET_IMAGE = {
    "manager": "kubectl-set",
    "operation": "Update",
    "apiVersion": "apps/v1",
    "time": "2026-12-01T12:00:00Z",
    "fieldsType": "FieldsV1",
    "fieldsV1": {
        "f:spec": {"f:template": {"f:spec": {"f:containers": {WEB_KEY: {"f:image": {}}}}}}
    },
}


def deployment(
    *, replicas: int = 2, image: str = "registry.example/web:1.4", revision: str = "3"
) -> dict[str, Any]:
    """A live Deployment as the API server returns it (defaults filled in)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "app-prod",
            "uid": "0b1c6a8e-8f1d-4c1e-9f55-6d0c3f1c2a11",
            "resourceVersion": "48213",
            "generation": 4,
            "creationTimestamp": "2026-12-01T10:00:00Z",
            "labels": {"app": "web", "tier": "front"},
            "annotations": {"deployment.kubernetes.io/revision": revision},
            "managedFields": [our_apply_entry(), *controller_entries(time="2026-12-01T10:00:05Z")],
        },
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": image,
                            "env": [{"name": "MODE", "value": "prod"}],
                            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                            "imagePullPolicy": "IfNotPresent",
                            "terminationMessagePath": "/dev/termination-log",
                        },
                        {"name": "sidecar", "image": "registry.example/proxy:2"},
                    ],
                    "restartPolicy": "Always",
                    "dnsPolicy": "ClusterFirst",
                },
            },
        },
        "status": {"replicas": replicas, "readyReplicas": replicas, "observedGeneration": 4},
    }


def drifted_by_kubectl() -> dict[str, Any]:
    """The Deployment after ``kubectl scale --replicas=5`` and ``kubectl set image``."""
    live = deployment(replicas=5, image="registry.example/web:debug", revision="4")
    live["metadata"]["managedFields"] = [
        our_apply_entry(owns_replicas=False, owns_image=False),
        KUBECTL_SCALE,
        KUBECTL_SET_IMAGE,
        *controller_entries(time="2026-12-01T12:00:03Z"),
    ]
    live["metadata"]["resourceVersion"] = "51877"
    live["metadata"]["generation"] = 6
    return live


def test_an_unchanged_object_has_no_drift() -> None:
    """Identical objects, server bookkeeping and status aside, have no drifted field."""
    desired = deployment()
    live = deployment()
    live["metadata"]["resourceVersion"] = "99999"
    live["metadata"]["generation"] = 9
    live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "7"
    live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
    live["status"] = {"replicas": 1}
    live["metadata"]["managedFields"] = []
    assert drifted_fields(desired=desired, live=live) == []


def test_kubectl_scale_and_set_image_are_found_by_path() -> None:
    """Replicas and the web container's image differ; the sidecar (keyed by name) does not."""
    desired = deployment()
    live = drifted_by_kubectl()
    paths = drifted_fields(desired=desired, live=live)
    assert paths == ["spec.replicas", "spec.template.spec.containers[name=web].image"]


def test_the_managers_that_own_the_drifted_fields_are_named_newest_first() -> None:
    """kubectl-set (newest) then kubectl through the scale subresource; never ourselves nor the
    controller that only wrote status and the revision."""
    live = drifted_by_kubectl()
    paths = drifted_fields(desired=deployment(), live=live)
    assert changed_by(live=live, paths=paths, our_manager=OURS) == [
        "kubectl-set (Update)",
        "kubectl (Update, scale subresource)",
    ]
    assert changed_by(live=live, paths=["spec.replicas"], our_manager=OURS) == [
        "kubectl (Update, scale subresource)"
    ]


def test_list_items_are_compared_by_their_kubernetes_keys() -> None:
    """Reordered containers are no drift; a changed env value or container port is found
    under its key; an added container is found as a whole item."""
    desired = deployment()
    live = deployment()
    containers = live["spec"]["template"]["spec"]["containers"]
    containers.reverse()
    assert drifted_fields(desired=desired, live=live) == []
    web = containers[1]
    web["env"][0]["value"] = "debug"
    web["ports"][0]["name"] = "web"
    containers.append({"name": "debugger", "image": "busybox"})
    assert drifted_fields(desired=desired, live=live) == [
        "spec.template.spec.containers[name=web].env[name=MODE].value",
        "spec.template.spec.containers[name=web].ports[containerPort=8080,protocol=TCP].name",
        "spec.template.spec.containers[name=debugger]",
    ]


def test_other_lists_are_compared_whole() -> None:
    """A container's args, a list without keys, is one path when any element differs."""
    desired = deployment()
    desired["spec"]["template"]["spec"]["containers"][0]["args"] = ["--port", "8080"]
    live = copy.deepcopy(desired)
    live["spec"]["template"]["spec"]["containers"][0]["args"] = ["--port", "9090"]
    assert drifted_fields(desired=desired, live=live) == [
        "spec.template.spec.containers[name=web].args"
    ]


def test_service_ports_are_keyed_by_port_and_protocol() -> None:
    """Service ports (port+protocol) are compared item by item, UDP apart from TCP."""

    def service(target: int) -> dict[str, Any]:
        ports = [
            {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": target},
        ]
        return {"apiVersion": "v1", "kind": "Service", "spec": {"ports": ports}}

    assert drifted_fields(desired=service(53), live=service(5353)) == [
        "spec.ports[port=53,protocol=TCP].targetPort"
    ]


def test_configmap_data_and_labels_with_dots_read_plainly() -> None:
    """data.key, and label keys that are not plain words quoted so the path stays unambiguous."""
    desired: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "web-config", "labels": {"app.kubernetes.io/name": "web"}},
        "data": {"greeting": "hello", "mode": "prod"},
    }
    live = copy.deepcopy(desired)
    live["data"]["greeting"] = "hi"
    live["metadata"]["labels"]["app.kubernetes.io/name"] = "other"
    paths = drifted_fields(desired=desired, live=live)
    assert paths == ['metadata.labels["app.kubernetes.io/name"]', "data.greeting"]
    label = {
        "manager": "kubectl-label",
        "operation": "Update",
        "time": "2026-12-01T15:00:00Z",
        "fieldsV1": {"f:metadata": {"f:labels": {"f:app.kubernetes.io/name": {}}}},
    }
    edit = {
        "manager": "kubectl-edit",
        "operation": "Update",
        "time": "2026-12-01T14:00:00Z",
        "fieldsV1": {"f:data": {"f:greeting": {}}},
    }
    live["metadata"]["managedFields"] = [edit, label]
    assert changed_by(live=live, paths=paths, our_manager=OURS) == [
        "kubectl-label (Update)",
        "kubectl-edit (Update)",
    ]
    assert changed_by(live=live, paths=paths[1:], our_manager=OURS) == ["kubectl-edit (Update)"]


def test_a_removed_label_is_drift_too() -> None:
    """A field our apply sets and someone removed is a drifted path (present on one side)."""
    desired = deployment()
    live = deployment()
    del live["metadata"]["labels"]["tier"]
    assert drifted_fields(desired=desired, live=live) == ["metadata.labels.tier"]


def test_a_deleted_object_is_the_deleted_sentinel() -> None:
    """No live object: the one path DELETED, described as deleted."""
    paths = drifted_fields(desired=deployment(), live=None)
    assert paths == [DELETED]
    assert describe_drift("Deployment app-prod/web", paths, []) == (
        "Deployment app-prod/web was deleted"
    )


def test_a_path_nobody_owns_falls_back_to_managers_newer_than_ours() -> None:
    """A label removed by kubectl edit is owned by no one: kubectl-edit, which wrote after our
    apply, is named; the controller's bookkeeping and status writes (newer too) are not."""
    live = deployment()
    del live["metadata"]["labels"]["tier"]
    edit = {
        "manager": "kubectl-edit",
        "operation": "Update",
        "apiVersion": "apps/v1",
        "time": "2026-12-01T13:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {"f:owner": {}}}},
    }
    older = {**edit, "manager": "helm", "time": "2026-12-01T09:00:00Z"}
    live["metadata"]["managedFields"] = [
        older,
        our_apply_entry(),
        *controller_entries(time="2026-12-01T13:30:00Z"),
        edit,
    ]
    paths = drifted_fields(desired=deployment(), live=live)
    assert changed_by(live=live, paths=paths, our_manager=OURS) == ["kubectl-edit (Update)"]


def test_managers_without_a_time_come_last_and_each_is_named_once() -> None:
    """An entry with no time (some servers omit it for scale) is listed after dated ones."""
    live = drifted_by_kubectl()
    undated = {k: v for k, v in KUBECTL_SCALE.items() if k != "time"}
    live["metadata"]["managedFields"][1] = undated
    paths = ["spec.replicas", "spec.template.spec.containers[name=web].image", "spec.replicas"]
    assert changed_by(live=live, paths=paths, our_manager=OURS) == [
        "kubectl-set (Update)",
        "kubectl (Update, scale subresource)",
    ]


def test_a_whole_container_is_owned_by_whoever_owns_its_item() -> None:
    """An added container is put down to the manager whose k:{"name":...} item covers it, and
    an atomic value (a leaf) covers every path beneath it."""
    live = deployment()
    debugger = {"name": "debugger", "image": "busybox", "args": ["sh"]}
    live["spec"]["template"]["spec"]["containers"].append(debugger)
    patch = {
        "manager": "kubectl-patch",
        "operation": "Update",
        "time": "2026-12-01T14:00:00Z",
        "fieldsV1": {
            "f:spec": {
                "f:template": {
                    "f:spec": {
                        "f:containers": {
                            'k:{"name":"debugger"}': {".": {}, "f:args": {}, "f:name": {}}
                        }
                    }
                }
            }
        },
    }
    live["metadata"]["managedFields"].append(patch)
    paths = drifted_fields(desired=deployment(), live=live)
    assert paths == ["spec.template.spec.containers[name=debugger]"]
    assert changed_by(live=live, paths=paths, our_manager=OURS) == ["kubectl-patch (Update)"]
    inner = ["spec.template.spec.containers[name=debugger].args"]
    assert changed_by(live=live, paths=inner, our_manager=OURS) == ["kubectl-patch (Update)"]


def test_malformed_managed_fields_are_skipped_not_fatal() -> None:
    """Entries that are not maps, lack a manager, or hold nonsense are ignored."""
    live = drifted_by_kubectl()
    live["metadata"]["managedFields"] = [
        "nonsense",
        {"operation": "Update"},
        {"manager": "weird", "time": "yesterday", "fieldsV1": ["f:spec"]},
        {"manager": "badkey", "fieldsV1": {"f:spec": {"f:template": {"k:{oops": {}}}}},
        KUBECTL_SCALE,
    ]
    assert changed_by(live=live, paths=["spec.replicas", "]["], our_manager=OURS) == [
        "kubectl (Update, scale subresource)"
    ]
    live["metadata"] = {"managedFields": "nope"}
    assert changed_by(live=live, paths=["spec.replicas"], our_manager=OURS) == []


def test_paths_read_back_to_their_segments() -> None:
    """format_path and parse_path are inverse for fields, quoted keys and item keys."""
    paths = [
        ("spec", "template", "spec", "containers", (("name", "web"),), "image"),
        ("metadata", "labels", "app.kubernetes.io/name"),
        ("spec", "ports", (("port", 53), ("protocol", "UDP")), "targetPort"),
        ("spec", "containers", (("name", "8080-tcp"),)),
        ("spec", "volumeMounts", (("mountPath", "/data"),)),
        ("data", "true"),
        ("spec", "x", (("name", 'we,ird]"="'),)),
    ]
    for path in paths:
        assert parse_path(format_path(path)) == path, format_path(path)
    assert format_path(paths[3]) == 'spec.containers[name="8080-tcp"]'
    for nonsense in ["", "a..b", "[name=", "spec[=1]", '["unterminated', "a b"]:
        assert parse_path(nonsense) is None, nonsense


def test_the_description_is_bounded() -> None:
    """Ten paths and five managers at most, the rest counted."""
    paths = [f"data.key{i}" for i in range(13)]
    managers = [f"m{i} (Update)" for i in range(7)]
    text = describe_drift("ConfigMap app/cfg", paths, managers)
    assert text == (
        "ConfigMap app/cfg: "
        + ", ".join(paths[:10])
        + " and 3 more changed by "
        + ", ".join(managers[:5])
        + " and 2 more"
    )
    assert describe_drift("ConfigMap app/cfg", ["data.a"], []) == (
        "ConfigMap app/cfg: data.a changed (by a field manager not recorded)"
    )
    assert len(describe_drift("ConfigMap app/cfg", ["x" * 5000], [])) < 300


def test_the_example_of_the_brief_reads_as_one_line() -> None:
    """Deployment app-prod/web: spec.replicas, ...image changed by kubectl-set (Update)."""
    paths = ["spec.replicas", "spec.template.spec.containers[name=web].image"]
    assert describe_drift("Deployment app-prod/web", paths, ["kubectl-set (Update)"]) == (
        "Deployment app-prod/web: spec.replicas, spec.template.spec.containers[name=web].image"
        " changed by kubectl-set (Update)"
    )


def test_hostile_objects_give_paths_not_errors() -> None:
    """Odd metadata, non-map items in keyed lists, duplicate keys and deep nesting compare."""
    desired: dict[str, Any] = {"metadata": "x", "spec": {"containers": [{"name": "a"}, 3]}}
    live: dict[str, Any] = {"metadata": {}, "spec": {"containers": [{"name": "a"}, 4]}}
    assert drifted_fields(desired=desired, live=live) == ["metadata", "spec.containers"]
    dupes = {"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}
    assert drifted_fields(desired={"spec": dupes}, live={"spec": {"env": []}}) == ["spec.env"]
    nested = {"left": json.loads("1"), "right": json.loads("2")}
    for _ in range(500):
        nested = {side: {"a": value} for side, value in nested.items()}
    paths = drifted_fields(desired={"spec": nested["left"]}, live={"spec": nested["right"]})
    assert len(paths) == 1 and paths[0].startswith("spec.a.a.a")
