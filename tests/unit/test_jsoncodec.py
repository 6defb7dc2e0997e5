"""The JSON codec of the hot paths gives the standard library's answers, faster."""

from __future__ import annotations

import json
import math

import pytest

from reconciler import jsoncodec

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}, "uid": "ü-1"},
    "spec": {"replicas": 3, "template": {"spec": {"containers": [{"image": "shop:1"}]}}},
    "status": {"conditions": [{"type": "Available", "status": "True"}], "ratio": 0.5},
    "nothing": None,
}


def test_round_trip_matches_the_standard_library() -> None:
    """An ordinary object encodes to JSON the standard library decodes to the same value."""
    encoded = jsoncodec.dumps(DEPLOYMENT)
    assert isinstance(encoded, bytes)
    assert json.loads(encoded) == DEPLOYMENT
    assert jsoncodec.loads(encoded) == DEPLOYMENT
    assert jsoncodec.loads(encoded.decode()) == DEPLOYMENT


def test_non_finite_floats_encode_as_the_standard_library_does() -> None:
    """NaN and infinities are written as NaN/Infinity (as json.dumps does), never as null."""
    value = {"a": [1.0, {"b": math.nan}], "c": None, "d": (math.inf,)}
    encoded = jsoncodec.dumps(value)
    assert encoded == json.dumps(value, separators=(",", ":")).encode()
    assert b"NaN" in encoded and b"Infinity" in encoded


def test_what_orjson_cannot_encode_falls_back() -> None:
    """Integers beyond 64 bits and keys that are not strings encode as json.dumps does."""
    for value in ({"big": 2**70}, {1: "one"}, {"s": "\ud800"}):
        assert jsoncodec.dumps(value) == json.dumps(value, separators=(",", ":")).encode()


def test_what_orjson_cannot_decode_falls_back() -> None:
    """A lone surrogate escape, which orjson refuses, decodes as json.loads decodes it."""
    assert jsoncodec.loads('{"s": "\\ud800"}') == {"s": "\ud800"}


@pytest.mark.parametrize(
    "text",
    ['{"a": NaN, "s": "\\ud800"}', "[Infinity]", b"-Infinity", '{"a": 1e400, "s": "\\ud800"}'],
)
def test_non_finite_constants_are_refused(text: str | bytes) -> None:
    """NaN, Infinity and numbers beyond a double are refused, even in text that needs the
    fallback."""
    with pytest.raises(ValueError):
        jsoncodec.loads(text)


def test_decoded_values_encode_as_dumps_does() -> None:
    """dumps_decoded gives dumps' answer for what loads returns, fallbacks included."""
    for value in (DEPLOYMENT, {"s": "\ud800"}, {"big": 2**70}):
        assert json.loads(jsoncodec.dumps_decoded(value)) == value


def test_invalid_json_raises_value_error() -> None:
    """Text that is not JSON raises ValueError, as json.loads does."""
    with pytest.raises(ValueError):
        jsoncodec.loads(b"{not json")


def test_unencodable_values_raise_type_error() -> None:
    """A value JSON cannot hold raises TypeError, as json.dumps does."""
    with pytest.raises(TypeError):
        jsoncodec.dumps({"when": object()})
