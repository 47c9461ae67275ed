"""X-Forwarded-For is believed only from configured proxies (issue #15): otherwise any client could claim a new
address per request and dodge the per-IP limit on log-in."""

from __future__ import annotations

import httpx
import pytest

ATTEMPTS = 30  # over the per-IP burst (20)


def failed_logins(url, new_ip):
    codes = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(ATTEMPTS):
            response = client.post(
                "/v1/auth/login",
                json={"email": "nobody@example.com", "password": "guess guess guess"},
                headers={"X-Forwarded-For": new_ip()},
            )
            codes.append(response.status_code)
    return codes


@pytest.mark.parametrize("trusted", ["", "10.9.8.7"])
def test_x_forwarded_for_from_an_untrusted_client_is_ignored(custom_server, new_ip, trusted):
    # Refill slowly, so that the count below does not depend on how fast the machine is.
    backend = custom_server(HASHED_BACKEND_FORWARDED_ALLOW_IPS=trusted, HASHED_BACKEND_AUTH_RATE_PER_IP="0.01")
    codes = failed_logins(backend.url, new_ip)
    assert codes.count(401) == 20 and codes.count(429) == ATTEMPTS - 20  # all counted against 127.0.0.1


def test_x_forwarded_for_from_a_configured_proxy_names_the_client(server, new_ip):
    assert set(failed_logins(server.url, new_ip)) == {401}  # the test servers trust loopback as their proxy


def test_no_proxy_is_trusted_by_default():
    from hashed_backend.settings import BackendSettings

    assert BackendSettings(database_url="sqlite:////tmp/x.db").forwarded_allow_ips == ""
