"""``hub.auth``: keys, the login link (once, expiring), the session cookie, the loopback Host
rule and the Origin rule, on requests made with aiohttp's test helper."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import make_mocked_request

from hub.auth import COOKIE, LOCAL_OPERATOR, LOGIN_LINK_SECONDS, Auth, allowed_origin, fingerprint
from hub.config import ServerSection


def req(headers: dict[str, str] | None = None, host: str = "127.0.0.1:8080"):  # type: ignore[no-untyped-def]
    return make_mocked_request("GET", "/v1/models", headers={"Host": host, **(headers or {})})


def auth(tmp_path: Path, **server: object) -> Auth:
    return Auth(ServerSection(**server), tmp_path / "secret")  # type: ignore[arg-type]


def test_keys_users_admins_and_wrong(tmp_path: Path) -> None:
    a = auth(tmp_path, api_keys=["user-key"], admin_keys=["admin-key"])
    user = a.principal(req({"Authorization": "Bearer user-key"}))
    admin = a.principal(req({"Authorization": "Bearer admin-key"}))
    assert user is not None and not user.admin and user.id == fingerprint("user-key") and "user-key" not in user.id
    assert admin is not None and admin.admin
    assert a.principal(req({"Authorization": "Bearer nope"})) is None
    assert a.principal(req()) is None


def test_login_link_works_once_and_expires(tmp_path: Path) -> None:
    a = auth(tmp_path, api_keys=["k"])
    token = a.login_link_token()
    cookie = a.redeem(token)
    assert cookie is not None and a.redeem(token) is None
    who = a.principal(req({"Cookie": f"{COOKIE}={cookie}"}))
    assert who is not None and who.admin
    late = a.login_link_token(now=1000.0)
    assert a.redeem(late, now=1000.0 + LOGIN_LINK_SECONDS + 1) is None
    assert a.principal(req({"Cookie": f"{COOKIE}={cookie[:-2]}xx"})) is None


def test_open_server_needs_a_loopback_host(tmp_path: Path) -> None:
    a = auth(tmp_path)
    assert a.open and a.principal(req()) == LOCAL_OPERATOR
    assert a.principal(req(host="localhost:8080")) == LOCAL_OPERATOR
    assert a.principal(req(host="evil.example:8080")) is None


def test_origin_rule(tmp_path: Path) -> None:
    server = ServerSection(allowed_origins=["https://ok.example"])
    assert allowed_origin(req(), server)
    assert allowed_origin(req({"Origin": "http://127.0.0.1:8080"}), server)
    assert allowed_origin(req({"Origin": "https://ok.example"}), server)
    assert not allowed_origin(req({"Origin": "null"}), server)
    assert not allowed_origin(req({"Origin": "https://evil.example"}), server)
