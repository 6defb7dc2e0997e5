"""The HTTP API's pure pieces: scopes and projects, tokens, bearer headers, body and query
validation, and the OpenAPI document built from the same declarations."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import jsonschema
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_30

from reconciler.access import (
    TOKEN_PREFIX,
    ApiToken,
    Scope,
    check_token_name,
    implies,
    new_token,
    parse_scope,
    refusal,
    token_hash,
)
from reconciler.web.api import deployments, document, ops_repos
from reconciler.web.api.auth import bearer_token, require
from reconciler.web.api.errors import ApiError, to_json
from reconciler.web.api.schemas import body_schema
from reconciler.web.api.validation import (
    Field,
    nesting_depth,
    parse_json,
    query_value,
    unknown_query,
    validate_body,
)

NOW = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)


def _token(scope: str, project: str | None = None) -> ApiToken:
    return ApiToken(id=1, name="ci", scope=scope, project=project, created_at=NOW)


@pytest.mark.parametrize(
    ("held", "required", "allowed"),
    [
        ("deploy:read", Scope.DEPLOY_READ, True),
        ("deploy:read", Scope.DEPLOY_PROMOTE, False),
        ("deploy:read", Scope.ADMIN, False),
        ("deploy:promote", Scope.DEPLOY_READ, True),
        ("deploy:promote", Scope.DEPLOY_PROMOTE, True),
        ("deploy:promote", Scope.ADMIN, False),
        ("admin", Scope.DEPLOY_READ, True),
        ("admin", Scope.DEPLOY_PROMOTE, True),
        ("admin", Scope.ADMIN, True),
        ("deploy:everything", Scope.DEPLOY_READ, False),
    ],
)
def test_each_scope_implies_the_lower_ones(held: str, required: Scope, allowed: bool) -> None:
    """deploy:read < deploy:promote < admin; an unknown scope grants nothing."""
    assert implies(held, required) is allowed


def test_a_project_token_reaches_its_project_only() -> None:
    """A token bound to a project may act on it, not on another, nor on every project's."""
    bound = _token("admin", "web")
    assert refusal(bound, scope=Scope.DEPLOY_PROMOTE, project="web") is None
    assert "limited to project 'web', not project 'api'" in str(
        refusal(bound, scope=Scope.DEPLOY_READ, project="api")
    )
    assert "resources of every project" in str(refusal(bound, scope=Scope.ADMIN, project=None))
    assert refusal(_token("admin"), scope=Scope.ADMIN, project=None) is None


def test_a_low_scope_is_refused_naming_both_scopes() -> None:
    """The refusal says what the token has and what is needed."""
    why = refusal(_token("deploy:read"), scope=Scope.DEPLOY_PROMOTE, project="web")
    assert why == "token 'ci' has scope deploy:read; this needs deploy:promote"


def test_require_is_a_403_with_the_challenge() -> None:
    """A refused scope is a 403 with WWW-Authenticate naming insufficient_scope."""
    with pytest.raises(ApiError) as refused:
        require(_token("deploy:read"), Scope.ADMIN, project=None)
    assert refused.value.status == 403
    assert 'error="insufficient_scope", scope="admin"' in refused.value.headers["WWW-Authenticate"]


def test_tokens_are_random_prefixed_and_stored_as_sha256() -> None:
    """Two tokens differ, carry the prefix and 256 bits; the hash is SHA-256 hex."""
    first, second = new_token(), new_token()
    assert first != second and first.startswith(TOKEN_PREFIX)
    assert len(first) >= len(TOKEN_PREFIX) + 43
    assert re.fullmatch(r"[0-9a-f]{64}", token_hash(first))
    assert token_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_scope_and_name_checks_say_what_is_valid() -> None:
    """An unknown scope lists the valid ones; a token name must be a slug."""
    assert parse_scope("admin") is Scope.ADMIN
    with pytest.raises(ValueError, match="valid: deploy:read, deploy:promote, admin"):
        parse_scope("root")
    assert check_token_name("ci-web_1") == "ci-web_1"
    with pytest.raises(ValueError, match="lowercase"):
        check_token_name("CI Web")


@pytest.mark.parametrize(
    ("header", "status", "words"),
    [
        (None, 401, "authentication required"),
        ("", 401, "authentication required"),
        ("Basic abc", 401, "Bearer <token>"),
        ("Bearer", 401, "Bearer <token>"),
        ("Bearer   ", 401, "Bearer <token>"),
    ],
)
def test_a_missing_or_malformed_header_is_401(header: str | None, status: int, words: str) -> None:
    """No header, another scheme or no token: 401 with a Bearer challenge."""
    with pytest.raises(ApiError) as refused:
        bearer_token(header)
    assert refused.value.status == status
    assert words in refused.value.message
    assert refused.value.headers["WWW-Authenticate"].startswith('Bearer realm="reconciler"')


def test_the_bearer_scheme_is_case_insensitive() -> None:
    """``bearer`` works as well as ``Bearer``; spaces around the token are dropped."""
    assert bearer_token("bearer  rcn_x ") == "rcn_x"


def _refused(body: Any) -> tuple[int, str | None, str]:
    with pytest.raises(ApiError) as refused:
        validate_body(deployments.PATCH_BODY, body)
    return refused.value.status, refused.value.field, refused.value.message


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ([], None, "must be a JSON object"),
        ({}, None, "nothing to change"),
        ({"image": "x"}, "image", "unknown field 'image'"),
        ({"image_ref": None}, "image_ref", "must not be null"),
        ({"image_ref": 1}, "image_ref", "must be a string"),
        ({"image_ref": "a\tb"}, "image_ref", "must match"),
        ({"image_ref": "x" * 4097}, "image_ref", "at most 4096"),
        ({"paused": 1}, "paused", "true or false"),
        ({"desired_status": "Active"}, "desired_status", "one of active"),
        ({"values_override": "{}"}, "values_override", "must be a JSON object"),
        ({"values_override": {"a": [[[[]]]]}}, None, ""),
    ],
)
def test_patch_bodies_are_checked_naming_the_field(
    body: Any, field: str | None, words: str
) -> None:
    """Each wrong body is a 400 naming its field and what is wrong (the last one is fine)."""
    if not words:
        assert validate_body(deployments.PATCH_BODY, body) == body
        return
    assert _refused(body)[:2] == (400, field)
    assert words in _refused(body)[2]


def test_integers_are_not_booleans_and_stay_in_range() -> None:
    """JSON true is no integer; bounds are inclusive."""
    spec = ops_repos.PATCH_BODY
    assert validate_body(spec, {"sync_interval_s": 0}) == {"sync_interval_s": 0}
    for bad in (True, -1, 2**31, 1.5):
        with pytest.raises(ApiError) as refused:
            validate_body(spec, {"sync_interval_s": bad})
        assert refused.value.field == "sync_interval_s"


def test_required_fields_are_named() -> None:
    """A create without repo_url names it."""
    with pytest.raises(ApiError) as refused:
        validate_body(ops_repos.CREATE_BODY, {"name": "ops"})
    assert (refused.value.field, refused.value.message) == ("repo_url", "repo_url is required")


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"{", "not valid JSON"),
        (b"\xff", "not UTF-8"),
        (b"[" * 50000, "nested too deeply"),
        (b'{"values_override": {"a": NaN}}', "NaN is not a JSON number"),
    ],
)
def test_bodies_that_are_not_json_are_400(raw: bytes, words: str) -> None:
    """Bad JSON, bad UTF-8 and nesting too deep for the decoder are 400s, never a crash."""
    with pytest.raises(ApiError) as refused:
        parse_json(raw)
    assert refused.value.status == 400
    assert words in refused.value.message


def test_answers_are_ascii_json_whatever_a_client_sent() -> None:
    """A field name holding a lone surrogate is echoed escaped, so the answer encodes."""
    with pytest.raises(ApiError) as refused:
        validate_body(deployments.PATCH_BODY, parse_json(b'{"\\ud800": 1}'))
    assert refused.value.field == "\ud800"
    to_json({"error": {"field": refused.value.field}}).encode("ascii")


def test_an_empty_body_is_an_empty_object() -> None:
    """POST .../rollback without a body means the default target."""
    assert parse_json(b"") == {} and parse_json(b" \n") == {}


def test_query_values_are_parsed_and_checked() -> None:
    """An integer parameter is parsed; garbage, out-of-range and unknown names are 400s."""
    limit = Field(kind="integer", description="", minimum=1, maximum=10)
    assert query_value({"limit": "3"}, "limit", limit) == 3
    assert query_value({}, "limit", limit) is None
    for bad in ("x", "0", "11", "9" * 30):
        with pytest.raises(ApiError):
            query_value({"limit": bad}, "limit", limit)
    with pytest.raises(ApiError) as refused:
        unknown_query({"limt": "1"}, ("limit",))
    assert refused.value.field == "limt"


def test_nesting_depth_counts_without_recursing() -> None:
    """A value nested 100,000 levels is measured without a RecursionError."""
    deep: Any = {}
    for _ in range(100_000):
        deep = {"a": deep}
    assert nesting_depth(deep) == 100_001
    assert nesting_depth({"a": [1, {"b": 2}]}) == 3


def test_the_openapi_document_validates_against_the_openapi_30_schema() -> None:
    """The document is valid OpenAPI 3.0, and every request body refuses unknown fields."""
    doc = document()
    jsonschema.Draft4Validator(OPENAPI_30).validate(doc)
    for body in (deployments.PATCH_BODY, deployments.ROLLBACK_BODY, ops_repos.CREATE_BODY):
        assert doc["components"]["schemas"][body.name]["additionalProperties"] is False


@pytest.mark.parametrize(
    "body",
    [
        {"image_ref": "reg/app:2"},
        {"paused": False, "desired_status": "stopped"},
        {"values_override": {"replicas": 2}},
        {"image_ref": "reg/app:2", "extra": 1},
        {"image_ref": ""},
        {"desired_status": "gone"},
        {},
    ],
)
def test_the_documented_schema_and_the_check_agree(body: dict[str, Any]) -> None:
    """A body the document's schema accepts is one validation accepts, and the reverse."""
    schema = {**body_schema(deployments.PATCH_BODY)}
    schema.pop("description")
    documented = jsonschema.Draft4Validator(schema).is_valid(body)
    try:
        validate_body(deployments.PATCH_BODY, body)
        checked = True
    except ApiError:
        checked = False
    assert documented is checked
