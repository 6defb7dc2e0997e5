"""Bad input, table-driven: each case's exact user-facing message, the daemon still serving,
and the other deployments untouched."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog

from reconciler.errors import InputError
from reconciler.model import Deployment
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.reliability

SECRET = "hunter2-TOPSECRET-value"
CREDENTIAL = "s3cr3t-t0ken"

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: bad
spec:
  replicas: 1
  selector:
    matchLabels: {app: bad}
  template:
    metadata:
      labels: {app: bad}
    spec:
      containers:
        - name: app
          image: {{ image_ref }}
"""


@dataclass(frozen=True)
class Case:
    """One bad input: how to write it, and the message a user must see."""

    id: str
    files: dict[str, str] = field(default_factory=dict)
    """Files of project 'bad' in the ops repo (path relative to the project dir)."""
    row: dict[str, Any] = field(default_factory=dict)
    """Columns of the 'bad' deployment row, beyond the defaults."""
    expect_status: str = "failed"
    message: str = ""
    """The exact status_message (and history message)."""
    write_error: str = ""
    """For input refused at write time: the exact error the writer gets."""
    regex: bool = False
    """``message`` is a regular expression (for text with timings in it)."""
    symlink: tuple[str, str] | None = None
    setup: Callable[[Pipeline], Awaitable[None]] | None = None
    check: Callable[[Pipeline], None] | None = None
    """What else must hold once the bad deployment has ended (what reached the cluster)."""


def _with_deployment(**templates: str) -> dict[str, str]:
    return {"deployment.yaml.j2": DEPLOYMENT, "values.yaml": "replicas: 1\n", **templates}


async def _repo_with_credentials(p: Pipeline) -> None:
    repo = await p.store.add_ops_repo(
        name="private", repo_url=f"https://deploy:{CREDENTIAL}@127.0.0.1:9/ops.git"
    )
    p.ops_repo_id = repo.id


INJECTED = (
    "hi\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
    "metadata: {name: pwn}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole,"
    " name: cluster-admin}\nsubjects: [{kind: Group, name: 'system:authenticated'}]\n"
)
WEB_STYLE_CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: c
data:
{% for key, value in values.config | dictsort %}
  {{ key }}: {{ value | string | tojson }}
{% endfor %}
  plain: {{ values.config.motd }}
"""


def _injection_stayed_a_string(p: Pipeline) -> None:
    config = p.fakekube.get_object(
        api_version="v1", kind="ConfigMap", name="c", namespace="bad-prod"
    )
    assert config is not None and config["data"] == {"motd": INJECTED, "plain": INJECTED}
    assert not [r.path for r in p.fakekube.request_log if "clusterrolebindings" in r.path]
    assert (
        p.fakekube.get_object(
            api_version="rbac.authorization.k8s.io/v1", kind="ClusterRoleBinding", name="pwn"
        )
        is None
    )


STATUS_CASES = [
    Case(
        "template_syntax_error",
        files=_with_deployment(**{"broken.yaml.j2": "a: {% if %}\n"}),
        message="render failed: broken.yaml.j2:1: template syntax: Expected an expression, got 'end of statement block'",
    ),
    Case(
        "undefined_name",
        files=_with_deployment(
            **{
                "cm.yaml.j2": "apiVersion: v1\nkind: ConfigMap\n"
                "metadata:\n  name: c\ndata:\n"
                "  a: '{{ values.nope }}'\n"
            }
        ),
        message="render failed: cm.yaml.j2:6: undefined name 'nope': no such key in the mapping (it has keys: replicas)",
    ),
    Case(
        "template_loops_forever",
        files=_with_deployment(
            **{
                "loop.yaml.j2": "{% for i in range(100000) %}"
                "{% for j in range(100000) %}{% endfor %}"
                "{% endfor %}"
            }
        ),
        message="render failed: bad: rendering took longer than 2s and was stopped (a template loops too long?)",
    ),
    Case(
        "template_builds_huge_string",
        files=_with_deployment(**{"huge.yaml.j2": "a: {{ 'x' * 100000000 }}\n"}),
        message="render failed: huge.yaml.j2:1: the template sandbox refused this: repetition with '*' would build a string or list of 100000000 elements; the limit is 1048576",
    ),
    Case(
        "invalid_yaml",
        files=_with_deployment(**{"bad.yaml": "apiVersion: v1\nkind: [unclosed\n"}),
        message="render failed: bad.yaml:3: YAML: expected ',' or ']', but got '<stream end>'",
    ),
    Case(
        "document_is_a_list",
        files=_with_deployment(**{"list.yaml": "- a\n- b\n"}),
        message="render failed: list.yaml:1: document 1 is a list, not a mapping; every document must be one Kubernetes object",
    ),
    Case(
        "document_is_a_scalar",
        files=_with_deployment(**{"scalar.yaml": "just words\n"}),
        message="render failed: scalar.yaml:1: document 1 is a string, not a mapping; every document must be one Kubernetes object",
    ),
    Case(
        "missing_api_version",
        files=_with_deployment(**{"cm.yaml": "kind: ConfigMap\nmetadata:\n  name: c\n"}),
        message="render failed: cm.yaml:1: document 1 has no apiVersion",
    ),
    Case(
        "missing_kind",
        files=_with_deployment(**{"cm.yaml": "apiVersion: v1\nmetadata:\n  name: c\n"}),
        message="render failed: cm.yaml:1: document 1 has no kind",
    ),
    Case(
        "missing_name",
        files=_with_deployment(**{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"}),
        message="render failed: cm.yaml:1: document 1 has no metadata.name",
    ),
    Case(
        "duplicate_object",
        files=_with_deployment(**{"again.yaml.j2": DEPLOYMENT}),
        message="render failed: deployment.yaml.j2:1: duplicate object Deployment bad-prod/bad (API group apps): already defined in again.yaml.j2 document 1 (line 1)",
    ),
    Case(
        "values_yaml_not_a_mapping",
        files={"deployment.yaml.j2": DEPLOYMENT, "values.yaml": "- 1\n- 2\n"},
        message="render failed: values.yaml: values must be a mapping of names to values at the top level, not a list",
    ),
    Case(
        "values_env_not_a_mapping",
        files=_with_deployment(**{"values-prod.yaml": "just a string\n"}),
        message="render failed: values-prod.yaml: values must be a mapping of names to values at the top level, not a string",
    ),
    Case(
        "template_includes_a_file",
        files=_with_deployment(**{"inc.yaml.j2": "{% include '/etc/passwd' %}\n"}),
        message="render failed: inc.yaml.j2:1: cannot include or import '/etc/passwd': only this project's own templates (.yaml, .yml, .yaml.j2, .yml.j2) can be included",
    ),
    Case(
        "template_reaches_python_internals",
        files=_with_deployment(**{"py.yaml.j2": "a: {{ ''.__class__.__mro__ }}\n"}),
        message="render failed: py.yaml.j2:1: the template sandbox refused this: access to attribute '__class__' of 'str' object is unsafe.",
    ),
    Case(
        "values_string_smuggles_a_document",
        files=_with_deployment(**{"cm.yaml.j2": WEB_STYLE_CONFIGMAP}),
        row={"values_override": {"config": {"motd": INJECTED}}},
        expect_status="healthy",
        message="",
        check=_injection_stayed_a_string,
    ),
    Case(
        "environment_typo",
        files=_with_deployment(**{"values-prod.yaml": "replicas: 1\n"}),
        row={"environment": "prdo"},
        message="render failed: environment 'prdo' is not declared by project 'bad' "
        "(it has values files for: prod)",
    ),
    Case(
        "symlink_out_of_the_checkout",
        files=_with_deployment(),
        symlink=("passwd.yaml", "/etc/passwd"),
        message="render failed: passwd.yaml: resolves outside the ops repo checkout (a symlink?); refusing to read it (in project directory bad)",
    ),
    Case(
        "project_missing_from_repo",
        files={},
        message="render failed: project directory bad does not exist in the ops repo (check the project name and the ops repo's path)",
    ),
    Case(
        "kind_not_served",
        files=_with_deployment(
            **{"w.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"}
        ),
        message="apply Widget bad-prod/w: the cluster does not serve Widget in example.com/v1 (a missing CRD, or a wrong apiVersion?)",
    ),
    Case(
        "api_rejects_object",
        files=_with_deployment(
            **{
                "svc.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n"
                "  name: s\nspec:\n  ports:\n"
                "    - port: 99999\n"
            }
        ),
        message='apply Service bad-prod/s: 422 Invalid: Service "s" is invalid: spec.ports[0].port: Invalid value: 99999: must be between 1 and 65535, inclusive',
    ),
    Case(
        "rollback_with_no_healthy_history",
        files=_with_deployment(),
        row={"desired_status": "rollback"},
        message="nothing to roll back to: no healthy deploy of an image other than reg/app:1 "
        "in the history of bad/prod",
    ),
    Case(
        "stop_of_a_deployment_never_deployed",
        files=_with_deployment(),
        row={"desired_status": "stopped"},
        expect_status="stopped",
        message="nothing was running: no Deployment or StatefulSet of it exists",
    ),
    Case(
        "ops_repo_url_with_credentials",
        files={},
        setup=_repo_with_credentials,
        message=r"ops repo private has no checkout yet: ops repo 'private' "
        r"\(https://\*\*\*@127\.0\.0\.1:9/ops\.git\): remote unreachable "
        r"\(git clone said: fatal: unable to access 'https://127\.0\.0\.1:9/ops\.git/': "
        r"Failed to connect to 127\.0\.0\.1 port 9 after \d+ ms: "
        r"(Couldn't connect to server|Connection refused)\)",
        regex=True,
    ),
    Case(
        "secret_in_values_never_logged",
        files={
            "deployment.yaml.j2": DEPLOYMENT,
            "secret.yaml.j2": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n"
            "stringData:\n  password: {{ values.password | tojson }}\n",
            "svc.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n"
            "  ports:\n    - port: 99999\n",
            "values.yaml": f"password: {SECRET}\n",
        },
        message='apply Service bad-prod/s: 422 Invalid: Service "s" is invalid: spec.ports[0].port: Invalid value: 99999: must be between 1 and 65535, inclusive',
    ),
]


@pytest.mark.parametrize("case", STATUS_CASES, ids=[c.id for c in STATUS_CASES])
async def test_bad_input_fails_clearly_and_alone(pipeline: Pipeline, case: Case) -> None:
    """The bad deployment ends with the exact message; the daemon and the others carry on."""
    control = await _converged_control(pipeline)
    applies_before = pipeline.applies(name="control")
    if case.files:
        for name, text in case.files.items():
            pipeline.ops.write(f"bad/{name}", text)
    if case.symlink:
        os.symlink(case.symlink[1], pipeline.ops.path / "bad" / case.symlink[0])
    if case.files or case.symlink:
        # The row is written once the daemon has the commit, as a pipeline would after its push.
        await pipeline.wait_repo_synced(pipeline.ops.commit(case.id))
    if case.setup:
        await case.setup(pipeline)
    with structlog.testing.capture_logs() as events:
        await pipeline.deploy("bad", **case.row)
        bad = await pipeline.wait_for(
            "bad",
            case.row.get("environment", "prod"),
            until=lambda d: d.current_status in ("failed", "stopped", "healthy"),
            timeout_s=40,
        )
        await _still_serving(pipeline)
    print(
        json.dumps({"case": case.id, "status": bad.current_status, "message": bad.status_message})
    )
    assert bad.current_status == case.expect_status
    if case.regex:
        assert re.fullmatch(case.message, bad.status_message), bad.status_message
    else:
        assert bad.status_message == case.message
    [entry] = await pipeline.store.history(deployment_id=bad.id)
    assert entry.message == bad.status_message
    # Nothing leaks: no credential or secret value anywhere a user or a log reader looks.
    everything = json.dumps(events, default=str) + bad.status_message + entry.message
    for repo in await pipeline.store.list_ops_repos():
        everything += repo.last_error or ""
    assert CREDENTIAL not in everything and SECRET not in everything
    if case.check:
        case.check(pipeline)
    # The control deployment was not touched by any of it.
    after = await pipeline.store.get_deployment(project="control", environment="prod")
    assert after is not None and after.current_status == "healthy"
    assert pipeline.applies(name="control") == applies_before + 1  # only _still_serving's
    rows = await pipeline.store.history(deployment_id=control.id)
    assert len(rows) == 2, [(h.action, h.status, h.image_ref, h.sha, h.message) for h in rows]


DNS_RULE = "must be a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters)"
WRITE_CASES = [
    Case(
        "values_override_is_a_json_array",
        row={"values_override": [1, 2]},
        write_error="deployment bad/prod: values_override must be a JSON object "
        "(deployments_values_override_is_object)",
    ),
    Case(
        "image_ref_empty",
        row={"image_ref": ""},
        write_error="deployment bad/prod: image_ref must be non-empty, without spaces "
        "(deployments_image_ref_without_spaces)",
    ),
    Case(
        "image_ref_with_spaces",
        row={"image_ref": "reg/app: 1"},
        write_error="deployment bad/prod: image_ref must be non-empty, without spaces "
        "(deployments_image_ref_without_spaces)",
    ),
    Case(
        "project_with_dots",
        row={"project": ".."},
        write_error=f"deployment ../prod: project {DNS_RULE}, got '..' "
        "(deployments_project_is_dns_label)",
    ),
    Case(
        "project_with_slash",
        row={"project": "a/b"},
        write_error=f"deployment a/b/prod: project {DNS_RULE}, got 'a/b' "
        "(deployments_project_is_dns_label)",
    ),
    Case(
        "project_with_nul",
        row={"project": "a\x00b"},
        write_error="deployment a\\x00b/prod: text values must not contain NUL characters",
    ),
    Case(
        "project_300_characters",
        row={"project": "a" * 300},
        write_error=f"deployment {'a' * 61}.../prod: project {DNS_RULE}, got '{'a' * 70}' "
        "(deployments_project_is_dns_label)",
    ),
    Case(
        "environment_with_dots",
        row={"environment": "../prod"},
        write_error=f"deployment bad/../prod: environment {DNS_RULE}, got '../prod' "
        "(deployments_environment_is_dns_label)",
    ),
    Case(
        "namespace_not_a_dns_label",
        row={"namespace": "Bad_Namespace"},
        write_error=f"deployment bad/prod: namespace {DNS_RULE}, got 'Bad_Namespace' "
        "(deployments_namespace_is_dns_label)",
    ),
    Case(
        "default_namespace_too_long",
        row={"project": "p" * 40, "environment": "e" * 30},
        write_error=f"deployment {'p' * 40}/{'e' * 30}: the default namespace "
        f"'{'p' * 40}-{'e' * 30}' is longer than 63 characters: set namespace "
        "explicitly (deployments_namespace_is_dns_label)",
    ),
    Case(
        "ops_repo_id_points_at_nothing",
        row={"ops_repo_id": 999999},
        write_error="deployment bad/prod: ops_repo_id names no ops repo "
        "(deployments_ops_repo_id_fkey)",
    ),
    Case(
        "namespace_kube_system",
        row={"namespace": "kube-system"},
        write_error="deployment bad/prod: namespace 'kube-system' is not allowed for ops repo 'ops' "
        "(allowed: the default bad-prod) (deployments_namespace_allowed)",
    ),
    Case(
        "namespace_of_another_team",
        row={"namespace": "control-prod"},
        write_error="deployment bad/prod: namespace 'control-prod' is not allowed for ops repo 'ops' "
        "(allowed: the default bad-prod) (deployments_namespace_allowed)",
    ),
    Case(
        "ops_repo_name_typo_in_the_subquery",
        # what (SELECT id FROM ops_repos WHERE name = 'opz') gives the pipeline's INSERT
        row={"ops_repo_id": None},
        write_error="deployment bad/prod: ops_repo_id is NULL: no ops repo matched "
        "(registered ops repos: ops) (deployments_ops_repo_id_fkey)",
    ),
    Case(
        "desired_status_unknown",
        row={"desired_status": "paused"},
        write_error="deployment bad/prod: desired_status must be active, stopped or rollback "
        "(deployments_desired_status_known)",
    ),
]


@pytest.mark.parametrize("case", WRITE_CASES, ids=[c.id for c in WRITE_CASES])
async def test_bad_rows_are_refused_at_write_time(pipeline: Pipeline, case: Case) -> None:
    """A row breaking the contract is refused with a message naming the rule; nothing else moves."""
    control = await _converged_control(pipeline)
    values: dict[str, Any] = {
        "project": "bad",
        "environment": "prod",
        "ops_repo_id": pipeline.ops_repo_id,
        "image_ref": "reg/app:1",
    }
    values.update(case.row)
    with pytest.raises(InputError) as caught:
        await pipeline.store.upsert_deployment(**values)
    print(json.dumps({"case": case.id, "error": str(caught.value)}))
    assert str(caught.value) == case.write_error
    assert [d.project for d in await pipeline.store.list_deployments()] == ["control"]
    await _still_serving(pipeline)
    rows = await pipeline.store.history(deployment_id=control.id)
    assert len(rows) == 2, [(h.action, h.status, h.image_ref, h.sha, h.message) for h in rows]


async def _converged_control(p: Pipeline) -> Deployment:
    p.ops.write_project("control")
    p.ops.commit("control")
    await p.start_daemon(render_timeout_s=2.0, health_timeout_s=10.0)
    await p.deploy("control", image_ref="reg/control:1")
    return await p.wait_for("control", until=lambda d: d.current_status == "healthy")


async def _still_serving(p: Pipeline) -> None:
    """The daemon still deploys: a new image for the control deployment rolls out."""
    await p.store.set_desired(project="control", environment="prod", image_ref="reg/control:2")
    await p.wait_for(
        "control",
        until=lambda d: d.current_status == "healthy" and d.current_image_ref == "reg/control:2",
    )
    await asyncio.sleep(0)
