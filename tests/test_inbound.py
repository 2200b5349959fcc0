import json
import logging

import pytest

from webhooks_app.models import Alert, InboundToken, MonitoredModel, Notification

pytestmark = pytest.mark.django_db

URL = "/webhooks/nannyml/"


def nothing_recorded():
    return (
        Notification.objects.count() == 0
        and Alert.objects.count() == 0
        and MonitoredModel.objects.count() == 0
    )


def test_a_valid_notification_is_recorded_and_answered_200(
    post_notification, seed_payload
):
    response = post_notification(seed_payload)

    assert response.status_code == 200
    notification = Notification.objects.get()
    assert response.json() == {"id": notification.pk, "duplicate": False}
    assert notification.source == Notification.Source.INBOUND
    assert json.loads(notification.body) == seed_payload
    assert notification.alerts.count() == 2


def test_the_same_notification_again_is_a_duplicate(post_notification, seed_payload):
    first = post_notification(seed_payload).json()
    second = post_notification(seed_payload)

    assert second.status_code == 200
    assert second.json() == {"id": first["id"], "duplicate": True}
    assert Notification.objects.count() == 1


def test_the_body_is_kept_exactly_as_received(post_notification, seed_payload):
    body = json.dumps(seed_payload, indent=4, ensure_ascii=False)

    post_notification(body)

    assert Notification.objects.get().body == body


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", "Token test-inbound-token", "Bearer", "Basic abc"],
)
def test_a_missing_or_wrong_credential_is_refused_with_401(
    client, seed_payload, authorization
):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    response = client.post(
        URL, json.dumps(seed_payload), content_type="application/json", **headers
    )

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["code"] in {"not_authenticated", "authentication_failed"}
    assert nothing_recorded()


def test_an_admin_made_token_is_accepted_and_its_use_recorded(
    post_notification, seed_payload
):
    row = InboundToken(name="prod")
    token = row.set_new_token()
    row.save()

    response = post_notification(seed_payload, token=token)

    assert response.status_code == 200
    row.refresh_from_db()
    assert row.last_used_at is not None
    assert row.token_hash != token and token not in row.token_hash


def test_a_revoked_token_is_refused(post_notification, seed_payload):
    row = InboundToken(name="old")
    token = row.set_new_token()
    row.save()
    row.revoke()

    response = post_notification(seed_payload, token=token)

    assert response.status_code == 401
    assert nothing_recorded()


def test_an_unset_settings_token_accepts_nothing(
    post_notification, seed_payload, settings
):
    settings.WEBHOOKS_INBOUND_TOKEN = ""

    assert post_notification(seed_payload, token="").status_code == 401
    assert post_notification(seed_payload, token=" ").status_code == 401
    assert nothing_recorded()


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_methods_other_than_post_get_405(client, method, inbound_token):
    response = getattr(client, method)(
        URL, HTTP_AUTHORIZATION=f"Bearer {inbound_token}"
    )

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml"],
)
def test_a_body_that_is_not_json_gets_415(
    post_notification, seed_payload, content_type
):
    response = post_notification(json.dumps(seed_payload), content_type=content_type)

    assert response.status_code == 415
    assert nothing_recorded()


def test_a_missing_content_type_gets_415(post_notification, seed_payload):
    response = post_notification(json.dumps(seed_payload), content_type="")

    assert response.status_code == 415
    assert nothing_recorded()


def test_a_body_over_the_limit_gets_413(post_notification, seed_payload, settings):
    seed_payload["padding"] = "x" * (1024 * 1024)

    response = post_notification(seed_payload)

    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert nothing_recorded()


def test_the_body_limit_is_a_setting(post_notification, seed_payload, settings):
    settings.WEBHOOKS_MAX_BODY_BYTES = 100

    response = post_notification(seed_payload)

    assert response.status_code == 413
    assert "100 bytes" in response.json()["detail"]
    assert nothing_recorded()


@pytest.mark.parametrize(
    "body", ["{not json", "\xff\xfe", '{"header": ', "[1, 2"], ids=repr
)
def test_malformed_json_gets_400(post_notification, body):
    response = post_notification(body.encode("latin-1"))

    assert response.status_code == 400
    assert response.json()["code"] in {"parse_error"}
    assert nothing_recorded()


def test_an_empty_body_gets_400(post_notification):
    response = post_notification(b"", CONTENT_TYPE="application/json")

    assert response.status_code == 400
    assert "empty" in response.json()["detail"]
    assert nothing_recorded()


@pytest.mark.parametrize("body", ["[]", '"text"', "42", "null", "true"])
def test_a_body_that_is_not_an_object_gets_400(post_notification, body):
    response = post_notification(body)

    assert response.status_code in {400}
    assert nothing_recorded()


def _without(payload, *path):
    target = payload
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return payload


def _with(payload, value, *path):
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return payload


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda p: _without(p, "header"), ("header",)),
        (lambda p: _without(p, "payload"), ("payload",)),
        (lambda p: _without(p, "header", "model_id"), ("header", "model_id")),
        (lambda p: _without(p, "header", "model_name"), ("header", "model_name")),
        (
            lambda p: _without(p, "header", "notification_type"),
            ("header", "notification_type"),
        ),
        (lambda p: _without(p, "payload", "run"), ("payload", "run")),
        (lambda p: _without(p, "payload", "run", "started_at"), ("payload", "run")),
        (lambda p: _with(p, "28740", "header", "model_id"), ("header", "model_id")),
        (lambda p: _with(p, 1.5, "header", "model_id"), ("header", "model_id")),
        (lambda p: _with(p, True, "header", "model_id"), ("header", "model_id")),
        (lambda p: _with(p, 2**70, "header", "model_id"), ("header", "model_id")),
        (lambda p: _with(p, 7, "header", "model_name"), ("header", "model_name")),
        (
            lambda p: _with(p, "m" * 256, "header", "model_name"),
            ("header", "model_name"),
        ),
        (
            lambda p: _with(p, "T" * 65, "header", "notification_type"),
            ("header", "notification_type"),
        ),
        (
            lambda p: _with(p, "", "header", "notification_type"),
            ("header", "notification_type"),
        ),
        (
            lambda p: _with(p, "yesterday", "payload", "run", "started_at"),
            ("payload", "run"),
        ),
        (
            lambda p: _with(p, "2024-13-45T99:00:00", "payload", "run", "started_at"),
            ("payload", "run"),
        ),
        (
            lambda p: _with(p, 1706191450, "payload", "run", "started_at"),
            ("payload", "run"),
        ),
        (
            lambda p: _with(p, "javascript:alert(1)", "payload", "report_link"),
            ("payload", "report_link"),
        ),
        (
            lambda p: _with(p, "/model/1", "payload", "report_link"),
            ("payload", "report_link"),
        ),
        (
            lambda p: _with(p, "ftp://example.com/x", "payload", "report_link"),
            ("payload", "report_link"),
        ),
        (
            lambda p: _with(p, "https://e.com/" + "a" * 2048, "payload", "report_link"),
            ("payload", "report_link"),
        ),
        (
            lambda p: _with(
                p, [{"metric_name": 5}], "payload", "other_alerts", "univariate_drift"
            ),
            ("payload", "other_alerts"),
        ),
        (
            lambda p: _with(p, [{}], "payload", "performance_alerts", "cbpe"),
            ("payload", "performance_alerts"),
        ),
        (
            lambda p: _with(
                p, {"metric_name": "x"}, "payload", "performance_alerts", "cbpe"
            ),
            ("payload", "performance_alerts"),
        ),
        (
            lambda p: _with(
                p, [{"metric_name": "m" * 256}], "payload", "performance_alerts", "cbpe"
            ),
            ("payload", "performance_alerts"),
        ),
        (
            lambda p: _with(
                p, [{"metric_name": "x"}], "payload", "performance_alerts", "k" * 101
            ),
            ("payload", "performance_alerts"),
        ),
        (
            lambda p: _with(p, ["x"], "payload", "performance_alerts"),
            ("payload", "performance_alerts"),
        ),
        (
            lambda p: _with(p, "a\x00b", "header", "model_name"),
            ("header", "model_name"),
        ),
        (
            lambda p: _with(p, "a\ud800", "header", "model_name"),
            ("header", "model_name"),
        ),
        (
            lambda p: _with(
                p, [{"metric_name": "\udfff"}], "payload", "performance_alerts", "cbpe"
            ),
            ("payload", "performance_alerts"),
        ),
        (
            lambda p: _with(p, "https://example.com/\ud800", "payload", "report_link"),
            ("payload", "report_link"),
        ),
        (lambda p: _with(p, "all good", "payload", "success"), ("payload", "success")),
        (lambda p: _with(p, [1, 2], "payload", "success"), ("payload", "success")),
        (lambda p: _with(p, "not an object", "header"), ("header",)),
    ],
)
def test_each_wrong_field_gets_400_naming_it(
    post_notification, seed_payload, change, where
):
    response = post_notification(change(seed_payload))

    assert response.status_code == 400
    data = response.json()
    assert data["code"] == "invalid_payload"
    errors = data["errors"]
    for key in where:
        assert key in errors, errors
        errors = errors[key]
    assert nothing_recorded()


def test_more_alerts_than_the_limit_get_400(post_notification, seed_payload, settings):
    settings.WEBHOOKS_MAX_ALERTS = 10
    seed_payload["payload"]["other_alerts"] = {
        "univariate_drift": [{"metric_name": f"c{i}"} for i in range(11)]
    }

    response = post_notification(seed_payload)

    assert response.status_code == 400
    assert "at most 10" in json.dumps(response.json())
    assert nothing_recorded()


def test_an_error_message_says_what_is_accepted(post_notification, seed_payload):
    seed_payload["payload"]["run"]["started_at"] = "soon"

    response = post_notification(seed_payload)

    message = response.json()["errors"]["payload"]["run"]["started_at"][0]
    assert "ISO 8601" in message


def test_each_request_is_logged_without_the_token(
    post_notification, seed_payload, caplog
):
    caplog.set_level(logging.INFO, logger="webhooks_app")

    post_notification(seed_payload)
    post_notification(seed_payload, token="wrong-secret-value")
    post_notification({"header": 1})

    messages = [r.getMessage() for r in caplog.records]
    assert any("Recorded RUN_COMPLETED for model 28740" in m for m in messages)
    warnings = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("webhooks_app")
    ]
    assert len(warnings) == 2
    assert "401" in warnings[0].getMessage()
    assert "400" in warnings[1].getMessage()
    everything = "\n".join(messages)
    assert "wrong-secret-value" not in everything
    assert "test-inbound-token" not in everything


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "nonsense"])
def test_any_accept_header_gets_the_notification_recorded_and_a_json_answer(
    post_notification, seed_payload, accept
):
    response = post_notification(seed_payload, HTTP_ACCEPT=accept)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"id": Notification.objects.get().pk, "duplicate": False}
