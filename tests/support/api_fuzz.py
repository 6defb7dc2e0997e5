"""A property-based run of the API against its own OpenAPI document (schemathesis), bounded
and deterministic: a fixed number of examples per operation, derandomized, no example
database written anywhere."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclasses.dataclass
class FuzzReport:
    """What the run did: cases sent per operation, and each failure found."""

    cases: dict[str, int] = dataclasses.field(default_factory=dict)
    failures: list[str] = dataclasses.field(default_factory=list)


def fuzz_api(
    document: dict[str, Any],
    *,
    base_url: str,
    token: str,
    known_paths: dict[str, str],
    max_examples: int,
    scratch: Path,
) -> FuzzReport:
    """Send generated requests to every operation of ``document`` with ``token``; half of the
    path parameters are ``known_paths`` (rows that exist), the rest generated.  Blocking:
    call it in a thread while the server runs.  What hypothesis caches (the constants it
    collects) goes under ``scratch``, not into the working directory."""
    set_hypothesis_home_dir(scratch / "hypothesis")
    try:
        return _fuzz_all(
            document,
            base_url=base_url,
            token=token,
            known_paths=known_paths,
            max_examples=max_examples,
        )
    finally:
        set_hypothesis_home_dir(None)


def _fuzz_all(
    document: dict[str, Any],
    *,
    base_url: str,
    token: str,
    known_paths: dict[str, str],
    max_examples: int,
) -> FuzzReport:
    schema = schemathesis.openapi.from_dict(document)
    schema.validate()
    report = FuzzReport()
    headers = {"Authorization": f"Bearer {token}"}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        report.cases[label] = 0
        names = [p.name for p in operation.path_parameters]
        fixed = {name: known_paths[name] for name in names}
        strategy = operation.as_strategy()
        if fixed:
            strategy = st.one_of(strategy, operation.as_strategy(path_parameters=fixed))

        _fuzz_operation(
            strategy,
            label=label,
            report=report,
            send=headers,
            base_url=base_url,
            max_examples=max_examples,
        )
    return report


def _fuzz_operation(
    strategy: st.SearchStrategy[schemathesis.Case],
    *,
    label: str,
    report: FuzzReport,
    send: dict[str, str],
    base_url: str,
    max_examples: int,
) -> None:
    """Run one operation's cases; a failure is recorded in ``report`` (the first only:
    hypothesis shrinks it), and the run goes on with the next operation."""

    @settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        """Send one case and check the answer against the document."""
        report.cases[label] += 1
        response = case.call(base_url=base_url, headers=send, timeout=20)
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as exc:  # one failure, or a group of them
            found = exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
            report.failures.append(
                f"{label} {case.path_parameters} {case.query} {case.body!r:.300}: "
                + "; ".join(str(e) for e in found)
            )
            raise

    with contextlib.suppress(AssertionError, BaseExceptionGroup):  # recorded in the report
        run()
