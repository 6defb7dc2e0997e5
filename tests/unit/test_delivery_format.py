"""Outgoing webhooks, the pure part: bodies, signatures, the retry verdict, the checks."""

from __future__ import annotations

import hashlib
import hmac
import json
import random

import pytest

from reconciler.deliveries import DeliveryOptions, shown_url
from reconciler.delivery_format import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    RetryPolicy,
    after_attempt,
    body_for,
    check_webhook,
    request_headers,
    slack_text,
    verify,
)
from reconciler.errors import ConfigError, InputError
from reconciler.settings import from_env

EVENT = {
    "id": 7,
    "project": "web",
    "environment": "prod",
    "from": "syncing",
    "to": "failed",
    "image_ref": "reg/web:2",
    "current_image_ref": "reg/web:1",
    "message": "Deployment web-prod/web: <!channel> & crash",
    "message_truncated": False,
}
POLICY = RetryPolicy(max_attempts=3, base_s=10.0, max_s=60.0)


def test_the_json_body_is_the_event() -> None:
    """Format json posts the event itself, as JSON."""
    assert json.loads(body_for("json", EVENT)) == EVENT


def test_the_slack_body_is_one_escaped_line_of_text() -> None:
    """Format slack posts {"text": ...}: project/environment, from -> to, image, message, with
    Slack's markup characters escaped so a message cannot ping a channel."""
    assert json.loads(body_for("slack", EVENT)) == {"text": slack_text(EVENT)}
    assert slack_text(EVENT) == (
        "web/prod: syncing -&gt; failed, reg/web:1, "
        "Deployment web-prod/web: &lt;!channel&gt; &amp; crash"
    )


def test_the_slack_text_leaves_out_an_empty_message_and_says_when_it_was_cut() -> None:
    """No message: no trailing comma; a cut message says so."""
    quiet = {**EVENT, "to": "healthy", "message": ""}
    assert slack_text(quiet) == "web/prod: syncing -&gt; healthy, reg/web:1"
    assert slack_text({**EVENT, "message_truncated": True}).endswith(" (cut)")


def test_an_unknown_format_is_refused() -> None:
    """A body in a format that does not exist is a ValueError naming it."""
    with pytest.raises(ValueError, match="'xml'"):
        body_for("xml", EVENT)


def test_the_signature_covers_the_timestamp_and_the_body() -> None:
    """X-Reconciler-Signature is sha256= the HMAC of '<timestamp>.' + body; verify accepts it
    and refuses another body, another timestamp or an old request."""
    body = body_for("json", EVENT)
    headers = request_headers(body=body, secret="s3cret", timestamp=1_700_000_000, delivery_id=3)
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == f"sha256={expected}"
    assert headers[TIMESTAMP_HEADER] == "1700000000"
    assert verify(secret="s3cret", body=body, headers=headers, now=1_700_000_010)
    assert not verify(secret="s3cret", body=body + b" ", headers=headers, now=1_700_000_010)
    assert not verify(secret="other", body=body, headers=headers, now=1_700_000_010)
    replayed = {**headers, TIMESTAMP_HEADER: "1700000500"}
    assert not verify(secret="s3cret", body=body, headers=replayed, now=1_700_000_500)
    assert not verify(secret="s3cret", body=body, headers=headers, now=1_700_001_000)


def test_an_unsigned_webhook_gets_no_signature_header() -> None:
    """Without a secret the request carries the delivery id and timestamp but no signature."""
    headers = request_headers(body=b"{}", secret=None, timestamp=1, delivery_id=9)
    assert SIGNATURE_HEADER not in headers
    assert headers["X-Reconciler-Delivery"] == "9"


def test_a_2xx_answer_delivers() -> None:
    """200 and 204 deliver, whatever the attempt."""
    for code in (200, 204):
        verdict = after_attempt(code=code, attempts=3, policy=POLICY)
        assert (verdict.status, verdict.retry_in_s) == ("delivered", None)


def test_other_answers_retry_with_a_doubling_jittered_delay_then_fail() -> None:
    """A 500, a redirect or no answer retries after base * 2^(n-1) with jitter (half to all
    of it), until the last attempt: then it failed."""
    rng = random.Random(1)
    first = after_attempt(code=500, attempts=1, policy=POLICY, rng=rng)
    second = after_attempt(code=None, attempts=2, policy=POLICY, rng=rng)
    assert first.status == second.status == "pending"
    assert first.retry_in_s is not None and 5.0 <= first.retry_in_s <= 10.0
    assert second.retry_in_s is not None and 10.0 <= second.retry_in_s <= 20.0
    assert after_attempt(code=302, attempts=3, policy=POLICY).status == "failed"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"name": "Bad Name"}, "must be a slug"),
        ({"url": "ftp://host/x"}, "http:// or https://"),
        ({"url": "https://host/a b"}, "http:// or https://"),
        ({"url": "https://"}, "http:// or https://"),
        ({"format": "xml"}, "format 'xml'"),
        ({"statuses": ("healthy", "broken")}, "unknown status 'broken'"),
    ],
)
def test_a_bad_webhook_is_refused_naming_the_field(fields: dict[str, object], named: str) -> None:
    """check_webhook names what is wrong: the name, the URL, the format, a status."""
    values: dict[str, object] = {
        "name": "chat",
        "url": "https://hooks.example.com/x",
        "format": "json",
        "statuses": None,
    }
    with pytest.raises(InputError, match=named):
        check_webhook(**{**values, **fields})  # type: ignore[arg-type]


def test_a_good_webhook_passes() -> None:
    """A slug, an https URL, a known format and statuses pass."""
    check_webhook(
        name="team-chat", url="https://h.example/x?y=1", format="slack", statuses=("failed",)
    )


def test_urls_in_messages_hide_credentials_and_token_paths() -> None:
    """User and password, credential-like query values and token-like path segments (a Slack
    webhook's) are masked; an ordinary path stays readable."""
    assert shown_url("https://user:pw@hooks.example.com/deploys") == (
        "https://***@hooks.example.com/deploys"
    )
    slack = "https://hooks.slack.com/services/T0123ABCD/B0123ABCD/abcdEFGH1234ijklMNOP5678"
    assert "abcdEFGH1234" not in shown_url(slack)
    assert shown_url("http://r.test/hook?token=abc") == "http://r.test/hook?token=***"


def test_the_webhook_settings_are_read_and_checked() -> None:
    """RECONCILER_WEBHOOK_* set the deliverer's timeout, slots and retries; a bad value is
    refused naming the variable."""
    settings = from_env(
        {
            "RECONCILER_WEBHOOK_TIMEOUT_S": "2.5",
            "RECONCILER_WEBHOOK_CONCURRENCY": "3",
            "RECONCILER_WEBHOOK_MAX_ATTEMPTS": "4",
            "RECONCILER_WEBHOOK_RETRY_BASE_S": "1",
            "RECONCILER_WEBHOOK_RETRY_MAX_S": "30",
        }
    )
    options = DeliveryOptions.from_settings(settings)
    assert (options.timeout_s, options.concurrency) == (2.5, 3)
    assert options.retry == RetryPolicy(max_attempts=4, base_s=1.0, max_s=30.0)
    defaults = DeliveryOptions.from_settings(from_env({}))
    assert (defaults.timeout_s, defaults.retry.max_attempts) == (5.0, 8)
    with pytest.raises(ConfigError, match="RECONCILER_WEBHOOK_TIMEOUT_S must be a positive"):
        from_env({"RECONCILER_WEBHOOK_TIMEOUT_S": "-1"})
