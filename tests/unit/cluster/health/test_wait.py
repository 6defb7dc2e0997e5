"""wait_healthy, against scripted test doubles of the injected callables."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from reconciler.cluster.health import wait_healthy
from reconciler.errors import KubernetesError, kubernetes_error
from reconciler.model import ObjectRef
from tests.unit.cluster.health.cases import DEGRADED, HEALTHY, PROGRESSING
from tests.unit.cluster.health.objects import (
    DEADLINE_EXCEEDED,
    NEW_TEMPLATE,
    Obj,
    deployment,
    merged,
    plain,
    pod,
    pvc,
    service,
)

Scripted = Obj | None | KubernetesError


@dataclass
class FakeCluster:
    """Scripted answers: each read returns the next item for that object, then repeats the last.

    Every read advances the fake clock, so timeouts happen after a known number of polls.
    """

    objects: dict[ObjectRef, list[Scripted]] = field(default_factory=dict)
    pods: list[list[Obj] | KubernetesError] = field(default_factory=list)
    now: float = 1000.0
    seconds_per_poll: float = 10.0
    reads: dict[ObjectRef, int] = field(default_factory=dict)
    pod_queries: list[tuple[str, str]] = field(default_factory=list)

    def add(self, obj: Obj, *later: Scripted) -> ObjectRef:
        ref = ObjectRef.from_object(obj)
        self.objects[ref] = [obj, *later]
        return ref

    def clock(self) -> float:
        return self.now

    async def read_object(self, ref: ObjectRef) -> Obj | None:
        count = self.reads.get(ref, 0)
        self.reads[ref] = count + 1
        script = self.objects[ref]
        answer = script[min(count, len(script) - 1)]
        if isinstance(answer, KubernetesError):
            raise answer
        return copy.deepcopy(answer)

    async def list_pods(self, namespace: str, selector: str) -> list[Obj]:
        self.pod_queries.append((namespace, selector))
        if not self.pods:
            return []
        answer = self.pods[0] if len(self.pods) == 1 else self.pods.pop(0)
        if isinstance(answer, KubernetesError):
            raise answer
        return answer

    async def tick(self) -> bool:
        """Used as should_stop: time passes once per poll."""
        self.now += self.seconds_per_poll
        return False


async def wait(cluster: FakeCluster, refs: list[ObjectRef], **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "refs": refs,
        "read_object": cluster.read_object,
        "list_pods": cluster.list_pods,
        "timeout_s": 300,
        "poll_interval_s": 0,
        "should_stop": cluster.tick,
        "clock": cluster.clock,
    }
    arguments.update(overrides)
    return await wait_healthy(**arguments)


ROLLING = deployment(metadata={"generation": 5})
HALFWAY = deployment(
    metadata={"generation": 5},
    status={"observedGeneration": 5, "updatedReplicas": 3, "availableReplicas": 1},
)
DONE = deployment(metadata={"generation": 5}, status={"observedGeneration": 5})


async def test_wait_until_all_healthy() -> None:
    """Waiting ends HEALTHY once every object is, and healthy objects are not read again."""
    cluster = FakeCluster()
    web = cluster.add(ROLLING, HALFWAY, DONE)
    config = cluster.add(plain("v1", "ConfigMap", "web-config"))
    outcome = await wait(cluster, [web, config, web])
    assert (outcome.status, outcome.timed_out, outcome.stopped) == (HEALTHY, False, False)
    assert cluster.reads == {web: 3, config: 1}


async def test_wait_with_no_objects() -> None:
    """Nothing to wait for is healthy at once."""
    outcome = await wait(FakeCluster(), [])
    assert outcome.status == HEALTHY


async def test_wait_suspended_counts_as_done() -> None:
    """A paused Deployment is what the user asked for, so waiting ends."""
    cluster = FakeCluster()
    web = cluster.add(deployment(spec={"paused": True}, status={"availableReplicas": 0}))
    outcome = await wait(cluster, [web])
    assert outcome.status == HEALTHY


async def test_wait_fails_fast_on_progress_deadline() -> None:
    """A degraded object ends waiting at once with the cluster's reason."""
    cluster = FakeCluster()
    web = cluster.add(ROLLING, merged(HALFWAY, {"status": {"conditions": DEADLINE_EXCEEDED}}))
    outcome = await wait(cluster, [web])
    assert (outcome.status, outcome.reason) == (DEGRADED, "ProgressDeadlineExceeded")
    assert outcome.message.startswith(
        "Deployment web-prod/web: ProgressDeadlineExceeded: exceeded its progress deadline"
    )
    assert not outcome.timed_out


async def test_wait_fails_fast_on_pods() -> None:
    """Pods of the rolling workload stuck on their image end waiting long before the deadline."""
    stuck = pod(
        name="web-7c9d-abcde",
        template=NEW_TEMPLATE,
        phase="Pending",
        waiting=("ImagePullBackOff", 'Back-off pulling image "reg/web:sha-new"'),
    )
    cluster = FakeCluster(pods=[[], [stuck]])
    web = cluster.add(HALFWAY)
    outcome = await wait(cluster, [web])
    assert outcome.status == DEGRADED
    assert outcome.reason == "ImagePullBackOff"
    assert outcome.message == (
        "Deployment web-prod/web: ImagePullBackOff: pod web-7c9d-abcde: container web: "
        'image reg/web:sha-new: Back-off pulling image "reg/web:sha-new"'
    )
    assert cluster.pod_queries == [("web-prod", "app=web"), ("web-prod", "app=web")]


async def test_wait_does_not_list_pods_of_healthy_or_non_workloads() -> None:
    """Pods are listed only for workloads still progressing."""
    cluster = FakeCluster()
    refs = [cluster.add(DONE), cluster.add(service("LoadBalancer"), service("LoadBalancer", []))]
    cluster.objects[refs[1]].append(service("LoadBalancer", [{"ip": "203.0.113.7"}]))
    outcome = await wait(cluster, refs)
    assert outcome.status == HEALTHY
    assert cluster.pod_queries == []


async def test_wait_reports_a_degraded_object_among_healthy_ones() -> None:
    """One degraded object fails the whole wait."""
    cluster = FakeCluster()
    config = cluster.add(plain("v1", "ConfigMap", "web-config"))
    claim = cluster.add(pvc("Pending"), pvc("Lost"))
    outcome = await wait(cluster, [config, claim])
    assert (outcome.status, outcome.reason) == (DEGRADED, "ClaimLost")
    assert outcome.message == "PersistentVolumeClaim web-prod/data: ClaimLost: its volume was lost"


async def test_wait_times_out() -> None:
    """At the timeout waiting ends PROGRESSING, naming what is still pending and why."""
    cluster = FakeCluster()
    web = cluster.add(HALFWAY)
    ready = cluster.add(plain("v1", "ConfigMap", "ready"))
    outcome = await wait(cluster, [web, ready])
    assert (outcome.status, outcome.timed_out, outcome.reason) == (PROGRESSING, True, "Timeout")
    assert outcome.message == (
        "timed out after 300s waiting for: "
        "Deployment web-prod/web (1 of 3 updated replicas are available)"
    )
    # 300 s at 10 s a poll.
    assert cluster.reads[web] == 30


async def test_wait_missing_object_keeps_waiting() -> None:
    """An object that is not there yet is waited for, and named if it never shows up."""
    cluster = FakeCluster()
    late = cluster.add(plain("v1", "ConfigMap", "late"))
    cluster.objects[late] = [None, None, plain("v1", "ConfigMap", "late")]
    never = cluster.add(plain("v1", "Secret", "never"))
    cluster.objects[never] = [None]
    outcome = await wait(cluster, [late, never], timeout_s=60)
    assert outcome.timed_out
    assert outcome.message == "timed out after 60s waiting for: Secret never (not found)"
    assert cluster.reads[late] == 3


async def test_wait_retries_transient_errors() -> None:
    """A transient API error is retried on the next poll."""
    cluster = FakeCluster()
    web = cluster.add(HALFWAY)
    cluster.objects[web] = [
        kubernetes_error("GET deployments/web: 503 Service Unavailable", status=503),
        kubernetes_error("connection refused", status=0),
        DONE,
    ]
    outcome = await wait(cluster, [web])
    assert outcome.status == HEALTHY
    assert cluster.reads[web] == 3


async def test_wait_names_a_transient_error_at_the_timeout() -> None:
    """When an object could never be read, the timeout message says why."""
    cluster = FakeCluster()
    web = cluster.add(HALFWAY)
    cluster.objects[web] = [kubernetes_error("429 Too Many Requests", status=429)]
    outcome = await wait(cluster, [web], timeout_s=30)
    assert outcome.timed_out
    assert "Deployment web-prod/web (could not be read: 429 Too Many Requests)" in outcome.message


async def test_wait_propagates_permanent_errors() -> None:
    """A permanent API error (403) is raised, not retried."""
    cluster = FakeCluster()
    web = cluster.add(HALFWAY)
    cluster.objects[web] = [kubernetes_error("deployments is forbidden", status=403)]
    with pytest.raises(KubernetesError, match="forbidden"):
        await wait(cluster, [web])
    assert cluster.reads[web] == 1


async def test_wait_retries_transient_pod_list_errors() -> None:
    """A transient error listing pods is retried like a read."""
    stuck = pod(template=NEW_TEMPLATE, waiting=("CrashLoopBackOff", "back-off"))
    cluster = FakeCluster(pods=[kubernetes_error("timeout", status=504), [stuck]])
    web = cluster.add(HALFWAY)
    outcome = await wait(cluster, [web])
    assert (outcome.status, outcome.reason) == (DEGRADED, "CrashLoopBackOff")


async def test_wait_propagates_permanent_pod_list_errors() -> None:
    """A permanent error listing pods (no RBAC to list them) is raised."""
    cluster = FakeCluster(pods=[kubernetes_error("pods is forbidden", status=403)])
    web = cluster.add(HALFWAY)
    with pytest.raises(KubernetesError, match="pods is forbidden"):
        await wait(cluster, [web])


async def test_wait_stops_when_asked() -> None:
    """should_stop ends waiting with stopped=True, checked on every poll."""
    cluster = FakeCluster()
    web = cluster.add(HALFWAY)
    polls = 0

    async def stop_on_third_poll() -> bool:
        nonlocal polls
        polls += 1
        return polls == 3

    outcome = await wait(cluster, [web], should_stop=stop_on_third_poll)
    assert (outcome.status, outcome.stopped, outcome.timed_out) == (PROGRESSING, True, False)
    assert outcome.reason == "Stopped"
    assert "Deployment web-prod/web (1 of 3 updated replicas are available)" in outcome.message
    assert cluster.reads[web] == 2


async def test_wait_reads_objects_concurrently() -> None:
    """All pending objects are read in the same poll, concurrently."""
    cluster = FakeCluster()
    refs = [cluster.add(plain("v1", "ConfigMap", f"config-{index}")) for index in range(3)]
    in_flight = 0
    most_in_flight = 0

    async def read_slowly(ref: ObjectRef) -> Obj | None:
        nonlocal in_flight, most_in_flight
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        # Yield to the loop so that concurrent reads overlap here; sequential ones cannot.
        for _ in range(3):
            await asyncio.sleep(0)
        in_flight -= 1
        return await cluster.read_object(ref)

    outcome = await wait(cluster, refs, read_object=read_slowly)
    assert outcome.status == HEALTHY
    assert most_in_flight == len(refs)


async def test_wait_does_not_mistake_a_callable_timeout_for_its_own() -> None:
    """A TimeoutError raised by read_object itself propagates (it breaks the contract)."""

    async def broken_read(ref: ObjectRef) -> Obj | None:
        raise TimeoutError("client-side timeout")

    ref = ObjectRef("v1", "ConfigMap", "web-config", "web-prod")
    with pytest.raises(TimeoutError, match="client-side"):
        await wait(FakeCluster(), [ref], read_object=broken_read)


async def test_wait_gives_up_on_a_hung_api_call() -> None:
    """A read that never answers does not hold the rollout past its timeout."""
    never = asyncio.Event()

    async def hang(ref: ObjectRef) -> Obj | None:
        await never.wait()
        return None

    ref = ObjectRef("apps/v1", "Deployment", "web", "web-prod")
    outcome = await wait_healthy(
        refs=[ref],
        read_object=hang,
        list_pods=FakeCluster().list_pods,
        timeout_s=0.01,
        poll_interval_s=0.01,
    )
    assert outcome.timed_out
    assert "Deployment web-prod/web (the API server did not answer)" in outcome.message


async def test_reads_that_cannot_hang_are_not_cut_off() -> None:
    """With reads_can_hang=False (reads from memory) a slow read is waited for, not cut off
    after the poll budget."""
    ref = ObjectRef("v1", "ConfigMap", "web-config", "web-prod")

    async def slow_read(ref: ObjectRef) -> Obj | None:
        await asyncio.sleep(1.2)  # longer than the one-second floor of a poll's budget
        return plain("v1", "ConfigMap")

    outcome = await wait_healthy(
        refs=[ref],
        read_object=slow_read,
        list_pods=FakeCluster().list_pods,
        timeout_s=0.01,
        poll_interval_s=0.01,
        reads_can_hang=False,
    )
    assert outcome.status == HEALTHY
