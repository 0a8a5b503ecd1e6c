"""The served OpenAPI document describes every answer, every failure comes in the
project's error shape (FastAPI's own validation, unknown routes and methods too), and
finding statuses round-trip through storage and the API as `FindingStatus`.

Against the real app under uvicorn on loopback, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from sqlalchemy import select, update

from server.api.schemas import ErrorBody
from server.storage.models import Finding, FindingStatus
from tests.server.conftest import LiveServer
from tests.server.helpers import body_of, make_facts, new_api_token, new_token, telnet

TIMEOUT = 30
ERROR_REF = "#/components/schemas/ErrorBody"


def openapi(live_server: LiveServer) -> dict[str, Any]:
    response = requests.get(f"{live_server.url}/api/v1/openapi.json", timeout=TIMEOUT)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def schema_of(response: dict[str, Any]) -> dict[str, Any]:
    content = response.get("content", {})
    assert len(content) == 1, response
    (media,) = content.values()
    schema: dict[str, Any] = media.get("schema", {})
    return schema


def error_of(response: requests.Response) -> dict[str, Any]:
    """The body, checked against the error model (which forbids other keys)."""
    body: dict[str, Any] = response.json()
    ErrorBody.model_validate(body)
    error: dict[str, Any] = body["error"]
    return error


def test_every_operation_declares_its_success_schema(live_server: LiveServer) -> None:
    document = openapi(live_server)
    found = operations(document)
    assert len(found) >= 14  # every route of the collector, the admin ones included
    for method, path, operation in found:
        answers = operation["responses"]
        assert "200" in answers, (method, path)
        assert schema_of(answers["200"]), (method, path)  # non-empty: a client can use it
    schemas = document["components"]["schemas"]
    for name in ("HostPage", "HostDetail", "FindingPage", "ReportAnswer", "EnrolAnswer"):
        assert schemas[name]["properties"], name


def test_every_declared_failure_is_the_error_body(live_server: LiveServer) -> None:
    document = openapi(live_server)
    for method, path, operation in operations(document):
        failures = {status for status in operation["responses"] if int(status) >= 400}
        assert "500" in failures, (method, path)
        for status in failures:
            if (path, status) in {("/healthz", "503"), ("/readyz", "503")}:
                continue  # a health answer, not a refusal: {"status": ..., "reasons"?}
            ref = schema_of(operation["responses"][status]).get("$ref")
            assert ref == ERROR_REF, (method, path, status)
    # FastAPI's own validation error shape is not offered anywhere.
    assert "HTTPValidationError" not in document["components"]["schemas"]
    error = document["components"]["schemas"]["ErrorDetail"]
    assert set(error["properties"]) == {"code", "message", "field"}
    assert set(error["required"]) == {"code", "message"}


def test_read_routes_declare_their_errors(live_server: LiveServer) -> None:
    paths = openapi(live_server)["paths"]
    assert {"401", "403", "422", "503"} <= set(paths["/api/v1/findings"]["get"]["responses"])
    assert "404" in paths["/api/v1/hosts/{agent_id}"]["get"]["responses"]
    assert "429" in paths["/api/v1/reports"]["post"]["responses"]
    assert "409" in paths["/api/v1/enroll"]["post"]["responses"]


def test_validation_errors_are_in_the_error_shape(live_server: LiveServer) -> None:
    viewer = new_api_token(live_server.database, "viewer")
    headers = {"Authorization": f"Bearer {viewer}"}
    for query, field in (
        ("limit=0", "limit"),
        ("offset=-1", "offset"),
        ("status=bogus", "status"),
        ("severity=urgent", "severity"),
        ("min_age_days=inf", "min_age_days"),
    ):
        response = requests.get(
            f"{live_server.url}/api/v1/findings?{query}", headers=headers, timeout=TIMEOUT
        )
        assert response.status_code == 422, query
        error = error_of(response)
        assert (error["code"], error["field"]) == ("invalid_request", field), query
        assert field in error["message"]


def test_unknown_routes_are_404_in_the_error_shape(live_server: LiveServer) -> None:
    for path in ("/nope", "/api/v1/nope", "/api/v2/hosts"):
        response = requests.get(f"{live_server.url}{path}", timeout=TIMEOUT)
        assert response.status_code == 404, path
        assert error_of(response)["code"] == "not_found"


def test_wrong_methods_are_405_in_the_error_shape(live_server: LiveServer) -> None:
    response = requests.delete(f"{live_server.url}/api/v1/reports", timeout=TIMEOUT)
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "POST"
    response = requests.post(f"{live_server.url}/healthz", timeout=TIMEOUT)
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_refusals_match_the_error_model(live_server: LiveServer) -> None:
    response = requests.get(f"{live_server.url}/api/v1/hosts", timeout=TIMEOUT)
    assert response.status_code == 401
    assert error_of(response)["code"] == "missing_token"
    viewer = new_api_token(live_server.database, "viewer")
    response = requests.get(
        f"{live_server.url}/api/v1/hosts/nobody",
        headers={"Authorization": f"Bearer {viewer}"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_finding_status_is_documented_from_the_one_enum(live_server: LiveServer) -> None:
    document = openapi(live_server)
    assert document["components"]["schemas"]["FindingStatus"]["enum"] == [
        status.value for status in FindingStatus
    ]
    parameters = document["paths"]["/api/v1/findings"]["get"]["parameters"]
    (status,) = [p for p in parameters if p["name"] == "status"]
    assert "FindingStatus" in str(status["schema"])


def test_finding_statuses_round_trip_through_storage_and_the_api(
    live_server: LiveServer,
) -> None:
    token = new_token(live_server.database)
    response = requests.post(
        live_server.reports_url,
        data=body_of(make_facts(listening=[telnet()])),
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    viewer = new_api_token(live_server.database, "viewer")
    with live_server.database.session() as session:
        stored = session.scalars(select(Finding.status)).one()
    assert stored is FindingStatus.OPEN  # read back as the enum, not a bare string
    for status in FindingStatus:
        with live_server.database.write() as session:
            session.execute(update(Finding).values(status=status))
        with live_server.database.session() as session:
            assert session.scalars(select(Finding.status)).one() is status
        for asked in FindingStatus:
            response = requests.get(
                f"{live_server.url}/api/v1/findings",
                params={"status": asked.value},
                headers={"Authorization": f"Bearer {viewer}"},
                timeout=TIMEOUT,
            )
            assert response.status_code == 200, response.text
            items = response.json()["items"]
            expected = [status.value] if asked is status else []
            assert [item["status"] for item in items] == expected, (status, asked)


@pytest.mark.parametrize("path", ["/api/v1/hosts", "/api/v1/findings", "/api/v1/remediation"])
def test_answers_validate_against_their_declared_models(live_server: LiveServer, path: str) -> None:
    """The answers are served through their models: an empty fleet answers too."""
    viewer = new_api_token(live_server.database, "viewer")
    response = requests.get(
        f"{live_server.url}{path}", headers={"Authorization": f"Bearer {viewer}"}, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []
