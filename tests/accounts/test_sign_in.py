"""Sign-in: failures are throttled per account and per address (the API and the admin), tokens
expire, and a password change needs the current password and ends every token."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from tests.conftest import in_role

TOKEN_URL = "/api/auth/token/"
ADMIN_LOGIN_URL = "/admin/login/"


def sign_in(username, password, address="203.0.113.7"):
    return APIClient(REMOTE_ADDR=address).post(TOKEN_URL, {"username": username, "password": password}, format="json")


def token_of(response):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    return client


def test_an_account_is_throttled_after_ten_failures_even_with_the_right_password(staff_user):
    failures = [sign_in("staff", f"guess-{n}", address=f"198.51.100.{n}").status_code for n in range(10)]

    refused = sign_in("staff", "staff-pass-123")

    assert failures == [400] * 10
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "detail" in refused.json()


def test_an_address_is_throttled_after_thirty_failures_across_accounts(staff_user, db):
    failures = [sign_in(f"user{n}@example.com", "guess").status_code for n in range(30)]

    refused = sign_in("staff", "staff-pass-123")
    elsewhere = sign_in("staff", "staff-pass-123", address="192.0.2.1")

    assert failures == [400] * 30
    assert refused.status_code == 429
    assert elsewhere.status_code == 200


def test_a_rotating_x_forwarded_for_does_not_escape_the_address_throttle(staff_user, db):
    """With no proxy trusted (TRUSTED_PROXY_COUNT=0), the client's own header is never believed:
    the socket's address is the one counted."""
    answers = [
        APIClient(REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"10.0.{n // 250}.{n % 250}")
        .post(TOKEN_URL, {"username": f"user{n}@example.com", "password": "guess"}, format="json")
        .status_code
        for n in range(60)
    ]

    assert answers[:30] == [400] * 30
    assert set(answers[30:]) == {429}


def test_a_rotating_x_forwarded_for_does_not_escape_the_admin_logins_address_throttle(client, staff_user):
    for n in range(30):
        failed = client.post(
            ADMIN_LOGIN_URL, {"username": f"user{n}", "password": "guess"}, HTTP_X_FORWARDED_FOR=f"10.1.0.{n}"
        )
        assert failed.status_code == 200  # the form again, with its error

    refused = client.post(
        ADMIN_LOGIN_URL, {"username": "staff", "password": "staff-pass-123"}, HTTP_X_FORWARDED_FOR="10.1.1.1"
    )

    assert refused.status_code == 429


def test_behind_one_trusted_proxy_the_address_it_appended_is_counted(staff_user, db, settings):
    """The proxy appends the address it saw to whatever the client sent: the last entry is the
    client's, the first ones are the client's own words."""
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {"NUM_PROXIES": 1}

    def through_proxy(n, claimed, seen):
        return APIClient(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"{claimed}, {seen}").post(
            TOKEN_URL, {"username": f"user{n}@example.com", "password": "guess"}, format="json"
        )

    failures = [through_proxy(n, f"192.0.2.{n}", "203.0.113.7").status_code for n in range(30)]
    refused = through_proxy(30, "192.0.2.200", "203.0.113.7")
    another_client = through_proxy(31, "203.0.113.7", "198.51.100.9")

    assert failures == [400] * 30
    assert refused.status_code == 429
    assert another_client.status_code == 400


def test_successful_sign_ins_are_not_counted(staff_user):
    answers = {sign_in("staff", "staff-pass-123").status_code for _ in range(12)}

    assert answers == {200}


def test_admin_login_is_throttled_after_ten_failures(client, staff_user):
    for n in range(10):
        failed = client.post(ADMIN_LOGIN_URL, {"username": "staff", "password": f"guess-{n}"})
        assert failed.status_code == 200  # the form again, with its error

    refused = client.post(ADMIN_LOGIN_URL, {"username": "staff", "password": "staff-pass-123"})

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0


def test_a_token_says_when_it_expires(staff_user):
    response = sign_in("staff", "staff-pass-123")

    assert response.status_code == 200
    expiry = response.json()["expiry"]
    assert timezone.datetime.fromisoformat(expiry) > timezone.now()


def test_an_expired_token_is_refused(staff_user):
    from knox.models import AuthToken

    in_role(staff_user, "Auditor")
    client = token_of(sign_in("staff", "staff-pass-123"))
    assert client.get("/api/notifications/").status_code == 200

    AuthToken.objects.filter(user=staff_user).update(expiry=timezone.now() - timezone.timedelta(seconds=1))

    assert client.get("/api/notifications/").status_code == 401


@pytest.fixture
def patient(make_patient):
    return make_patient(email="mary@example.com", password="frankenstein-1818")


def test_changing_ones_password_needs_the_current_one(patient):
    client = token_of(sign_in("mary@example.com", "frankenstein-1818"))

    response = client.patch(f"/api/patients/{patient.pk}/", {"password": "the-modern-prometheus"}, format="json")
    wrong = client.patch(
        f"/api/patients/{patient.pk}/",
        {"password": "the-modern-prometheus", "current_password": "not-it"},
        format="json",
    )

    assert (response.status_code, list(response.json())) == (400, ["current_password"])
    assert (wrong.status_code, list(wrong.json())) == (400, ["current_password"])
    assert sign_in("mary@example.com", "frankenstein-1818").status_code == 200


def test_a_password_change_ends_every_token_of_the_account(patient):
    first = token_of(sign_in("mary@example.com", "frankenstein-1818"))
    second = token_of(sign_in("mary@example.com", "frankenstein-1818"))

    changed = first.patch(
        f"/api/patients/{patient.pk}/",
        {"password": "the-modern-prometheus", "current_password": "frankenstein-1818"},
        format="json",
    )

    assert changed.status_code == 200
    assert first.get(f"/api/patients/{patient.pk}/").status_code == 401
    assert second.get(f"/api/patients/{patient.pk}/").status_code == 401
    assert sign_in("mary@example.com", "the-modern-prometheus").status_code == 200


def test_staff_set_a_patients_password_without_knowing_the_old_one(staff_client, patient):
    response = staff_client.patch(f"/api/patients/{patient.pk}/", {"password": "the-modern-prometheus"}, format="json")

    assert response.status_code == 200
    assert sign_in("mary@example.com", "the-modern-prometheus").status_code == 200


def test_authenticating_a_token_reads_that_token_alone_however_many_the_user_holds(staff_user, rf):
    from knox.models import AuthToken
    from rest_framework.request import Request
    from rest_framework.settings import api_settings

    for _ in range(20):
        AuthToken.objects.create(staff_user)
    token = AuthToken.objects.create(staff_user)[1]
    request = Request(rf.get("/api/notifications/", HTTP_AUTHORIZATION=f"Token {token}"))
    (authentication,) = (
        cls() for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES if cls.__name__ == "TokenAuthentication"
    )

    with CaptureQueriesContext(connection) as queries:
        user, _ = authentication.authenticate(request)

    assert user == staff_user
    assert len(queries) == 1  # the token with its user; knox's own also read all 21 tokens


def test_expired_tokens_of_every_user_are_purged_and_live_ones_kept(staff_user, django_user_model):
    from knox.models import AuthToken

    from accounts.tokens import purge_expired_tokens

    other = django_user_model.objects.create_user("other", "other@clinic.example", "other-pass-123")
    for user in (staff_user, other):
        AuthToken.objects.create(user)
        AuthToken.objects.create(user, expiry=timezone.timedelta(seconds=-1))

    assert purge_expired_tokens() == 2

    assert AuthToken.objects.count() == 2
    assert not AuthToken.objects.filter(expiry__lt=timezone.now()).exists()


def test_the_token_purge_is_in_the_beat_schedule_and_registered():
    from django.conf import settings

    from config.celery import app as celery_app

    celery_app.loader.import_default_modules()

    assert [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "accounts.purge_expired_tokens"]
    assert "accounts.purge_expired_tokens" in celery_app.tasks
