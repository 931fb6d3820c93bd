"""The error vocabulary has one home: ERRORS feeds the docs' error table and AsyncAPI hookError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relay.ingress.responses import ERRORS, Rejected, docs_error_table, hook_error_summary

WEBHOOKS = Path(__file__).parents[3] / "docs" / "webhooks.md"


def test_the_docs_error_table_is_the_errors_table() -> None:
    assert docs_error_table() in WEBHOOKS.read_text()


def test_codes_are_unique() -> None:
    codes = [error.code for error in ERRORS]
    assert len(codes) == len(set(codes))


def test_hook_error_summary_names_every_hook_code_by_status() -> None:
    summary = hook_error_summary()
    for error in ERRORS:
        assert (f"{error.code}" in summary) is error.hook, error.code
    assert summary.startswith("400 malformed_json|bad_request, 401 unauthorized, ")
    assert "503 overloaded|unavailable" in summary


def test_a_rejection_answers_with_its_code_detail_and_headers() -> None:
    rejected = Rejected(429, "too_many_requests", "rate_limited", "slow down", {"Retry-After": "3"})
    response = rejected.response()
    assert response.status == 429
    assert response.headers["Retry-After"] == "3"
    assert response.body is not None
    assert json.loads(bytes(response.body)) == {"error": "too_many_requests", "detail": "slow down"}
    assert rejected.logged == "slow down"


def test_a_code_outside_errors_is_refused() -> None:
    with pytest.raises(AssertionError):
        Rejected(418, "teapot", "teapot", "no")
