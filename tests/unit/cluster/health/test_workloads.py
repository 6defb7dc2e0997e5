"""assess on the apps/v1 workloads: Deployment, StatefulSet, DaemonSet, ReplicaSet.

Rules pinned here: gitops-engine ``pkg/health/health_{deployment,statefulset,daemonset,
replicaset}.go`` (borrowed from ``kubectl rollout status``) and its fixtures
``deployment-{progressing,suspended,degraded}.yaml``, ``statefulset.yaml``,
``statefulset-ondelete.yaml``, ``daemonset-ondelete.yaml``.  Status fields and conditions are
Kubernetes' (https://kubernetes.io/docs/concepts/workloads/controllers/deployment/
#deployment-status, .../statefulset/#update-strategies, .../daemonset/).
"""

from __future__ import annotations

import pytest

from reconciler.cluster.health import assess
from tests.unit.cluster.health.cases import DEGRADED, HEALTHY, PROGRESSING, SUSPENDED, Case
from tests.unit.cluster.health.objects import (
    DEADLINE_EXCEEDED,
    daemonset,
    deployment,
    replicaset,
    statefulset,
)

CASES: dict[str, Case] = {
    # Deployment: paused first, then observedGeneration, then the Progressing condition's
    # ProgressDeadlineExceeded reason, then updated / old / available replica counts.
    "deployment rolled out": Case(deployment(), HEALTHY, says="3 replicas available"),
    "deployment paused": Case(deployment(spec={"paused": True}), SUSPENDED, says="paused"),
    "deployment paused wins over a pending rollout": Case(
        deployment(metadata={"generation": 5}, spec={"paused": True}), SUSPENDED
    ),
    "deployment generation not observed": Case(
        deployment(metadata={"generation": 5}), PROGRESSING, says="generation 5 (observed 4)"
    ),
    "deployment without status yet": Case(
        deployment() | {"status": {}},
        PROGRESSING,
        says="observed 0",
    ),
    "deployment progress deadline exceeded": Case(
        deployment(
            status={"updatedReplicas": 1, "availableReplicas": 2, "conditions": DEADLINE_EXCEEDED}
        ),
        DEGRADED,
        reason="ProgressDeadlineExceeded",
        says='ReplicaSet "web-7c9d" has timed out progressing.',
    ),
    "deployment deadline exceeded but new generation not observed yet": Case(
        deployment(metadata={"generation": 5}, status={"conditions": DEADLINE_EXCEEDED}),
        PROGRESSING,
    ),
    "deployment replicas not all updated": Case(
        deployment(status={"updatedReplicas": 1, "replicas": 4, "availableReplicas": 3}),
        PROGRESSING,
        says="1 of 3 replicas updated",
    ),
    "deployment old replicas pending termination": Case(
        deployment(status={"replicas": 4}), PROGRESSING, says="1 old replicas are pending"
    ),
    "deployment updated replicas not available": Case(
        deployment(status={"availableReplicas": 1}),
        PROGRESSING,
        says="1 of 3 updated replicas are available",
    ),
    "deployment without spec.replicas, all available": Case(
        deployment(spec={"replicas": None}), HEALTHY
    ),
    "deployment deadline exceeded wins over replica counts": Case(
        deployment(status={"replicas": 5, "conditions": DEADLINE_EXCEEDED}),
        DEGRADED,
        reason="ProgressDeadlineExceeded",
    ),
    "deployment scaled to zero": Case(
        deployment(
            spec={"replicas": 0},
            status={"replicas": 0, "updatedReplicas": 0, "availableReplicas": 0},
        ),
        HEALTHY,
    ),
    "deployment being deleted": Case(
        deployment(metadata={"deletionTimestamp": "2024-05-01T10:00:00Z"}),
        PROGRESSING,
        says="pending deletion",
    ),
    # StatefulSet: never observed or behind -> Progressing; readyReplicas; then a
    # RollingUpdate with a rollingUpdate block is judged by its partition, OnDelete is healthy,
    # anything else compares currentRevision with updateRevision.
    "statefulset rolled out": Case(statefulset(), HEALTHY),
    "statefulset never observed": Case(
        statefulset(status={"observedGeneration": 0}), PROGRESSING, says="generation"
    ),
    "statefulset generation not observed": Case(
        statefulset(metadata={"generation": 3}), PROGRESSING, says="generation 3 (observed 2)"
    ),
    "statefulset pods not ready": Case(
        statefulset(status={"readyReplicas": 1}), PROGRESSING, says="1 of 3 pods are ready"
    ),
    "statefulset rolling update in progress": Case(
        statefulset(status={"updatedReplicas": 1, "updateRevision": "db-7c8d"}),
        PROGRESSING,
        says="1 of 3 pods updated",
    ),
    "statefulset partitioned rollout done": Case(
        statefulset(
            spec={"updateStrategy": {"rollingUpdate": {"partition": 2}}},
            status={"updatedReplicas": 1, "currentReplicas": 2, "updateRevision": "db-7c8d"},
        ),
        HEALTHY,
    ),
    "statefulset partitioned rollout waiting": Case(
        statefulset(
            spec={"replicas": 5, "updateStrategy": {"rollingUpdate": {"partition": 2}}},
            status={"replicas": 5, "readyReplicas": 5, "updatedReplicas": 2},
        ),
        PROGRESSING,
        says="2 of 3 pods updated",
    ),
    "statefulset partition without replicas in spec": Case(
        statefulset(
            spec={"replicas": None, "updateStrategy": {"rollingUpdate": {"partition": 2}}},
            status={"updatedReplicas": 0},
        ),
        HEALTHY,
    ),
    "statefulset rollingUpdate block without partition": Case(
        statefulset(
            spec={"updateStrategy": {"rollingUpdate": {"partition": None, "maxUnavailable": 1}}},
            status={"updatedReplicas": 0, "updateRevision": "db-7c8d"},
        ),
        HEALTHY,
        says="rollout complete",
    ),
    "statefulset OnDelete pods not ready": Case(
        statefulset(
            spec={"updateStrategy": {"type": "OnDelete", "rollingUpdate": None}},
            status={"readyReplicas": 2},
        ),
        PROGRESSING,
    ),
    "statefulset OnDelete with old pods": Case(
        statefulset(
            spec={"updateStrategy": {"type": "OnDelete", "rollingUpdate": None}},
            status={"updatedReplicas": 0, "updateRevision": "db-7c8d"},
        ),
        HEALTHY,
        says="OnDelete",
    ),
    "statefulset without rollingUpdate block, revisions differ": Case(
        statefulset(
            spec={"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": None}},
            status={"updateRevision": "db-7c8d"},
        ),
        PROGRESSING,
        says="revision db-7c8d",
    ),
    "statefulset without rollingUpdate block, revisions equal": Case(
        statefulset(spec={"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": None}}),
        HEALTHY,
    ),
    # DaemonSet: generation, then OnDelete is healthy, then updatedNumberScheduled and
    # numberAvailable against desiredNumberScheduled.
    "daemonset rolled out": Case(daemonset(), HEALTHY),
    "daemonset generation not observed": Case(
        daemonset(metadata={"generation": 4}), PROGRESSING, says="generation 4"
    ),
    "daemonset pods not updated": Case(
        daemonset(status={"updatedNumberScheduled": 1}), PROGRESSING, says="1 of 2 pods updated"
    ),
    "daemonset pods not available": Case(
        daemonset(status={"numberAvailable": 1}), PROGRESSING, says="1 of 2 updated pods"
    ),
    "daemonset OnDelete generation not observed": Case(
        daemonset(
            metadata={"generation": 4},
            spec={"updateStrategy": {"type": "OnDelete", "rollingUpdate": None}},
        ),
        PROGRESSING,
    ),
    "daemonset OnDelete with old pods": Case(
        daemonset(
            spec={"updateStrategy": {"type": "OnDelete", "rollingUpdate": None}},
            status={"updatedNumberScheduled": 0},
        ),
        HEALTHY,
    ),
    # ReplicaSet: generation, then ReplicaFailure=True, then availableReplicas.
    "replicaset available": Case(replicaset(), HEALTHY),
    "replicaset generation not observed": Case(replicaset(metadata={"generation": 2}), PROGRESSING),
    "replicaset replica failure": Case(
        replicaset(
            status={
                "availableReplicas": 0,
                "conditions": [
                    {
                        "type": "ReplicaFailure",
                        "status": "True",
                        "reason": "FailedCreate",
                        "message": 'pods "web-5f8d7c9b6-" is forbidden: exceeded quota',
                    }
                ],
            }
        ),
        DEGRADED,
        reason="FailedCreate",
        says="exceeded quota",
    ),
    "replicaset replica failure cleared": Case(
        replicaset(
            status={"conditions": [{"type": "ReplicaFailure", "status": "False"}]},
        ),
        HEALTHY,
    ),
    "replicaset replica failure not first condition": Case(
        replicaset(
            status={
                "conditions": [
                    {"type": "Other", "status": "True"},
                    {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate"},
                ]
            }
        ),
        DEGRADED,
        reason="FailedCreate",
    ),
    "replicaset replicas not available": Case(
        replicaset(status={"availableReplicas": 1}), PROGRESSING, says="1 of 2 replicas"
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_assess(case: Case) -> None:
    """assess gives each kind's status, cluster reason and message by Argo CD's rules."""
    health = assess(case.obj)
    assert (health.status, health.reason) == (case.status, case.reason), health
    assert case.says in health.message
