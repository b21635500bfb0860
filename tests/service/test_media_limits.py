"""Per-tenant media limits (service/commands/media_limits.py): set by the platform admin as events, used by uploads."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest
from starlette.applications import Starlette

from schemas.config import Settings
from service.app import create_app
from service.domain.media import MediaLimits, effective_limits
from service.identity.auth import Authenticator
from service.media.store import ObjectStore
from service.runtime import Runtime
from tests.conftest import Tenant, error_of

PLATFORM_KEY = "rlk_platform_limits_" + uuid.uuid4().hex


def test_a_tenants_own_limits_replace_only_the_defaults_they_name() -> None:
    defaults = MediaLimits(max_bytes=100, allowed_types=frozenset({"image/png"}), quota_bytes=1000)
    assert effective_limits(defaults, max_bytes=None, allowed_types=None, quota_bytes=None) == defaults
    assert effective_limits(defaults, max_bytes=5, allowed_types=["text/csv"], quota_bytes=0) == MediaLimits(
        max_bytes=5, allowed_types=frozenset({"text/csv"}), quota_bytes=0)


@pytest.fixture(scope="module")
def platform_app(settings: Settings, runtime: Runtime) -> Starlette:
    with_key = msgspec.structs.replace(settings, platform_admin_key=PLATFORM_KEY)
    auth = Authenticator(runtime.pool, runtime.auth.signer, platform_admin_key=PLATFORM_KEY)
    return create_app(with_key, runtime=dataclasses.replace(runtime, settings=with_key, auth=auth))


@pytest.fixture
async def api(platform_app: Starlette, media_store: ObjectStore) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=platform_app), base_url="http://roomlog.test") as c:
        yield c


def platform(tenant: Tenant) -> dict[str, str]:
    return {"X-API-Key": PLATFORM_KEY, "X-Tenant-Id": tenant.tenant_id}


def upload(content_type: str, size: int) -> dict[str, object]:
    return {"filename": "f", "content_type": content_type, "size": size}


async def test_limits_start_as_the_defaults_and_overrides_are_events(
    api: httpx.AsyncClient, tenant: Tenant, settings: Settings, runtime: Runtime
) -> None:
    path = f"/admin/tenants/{tenant.tenant_id}/media-limits"
    before = (await api.get(path, headers=platform(tenant))).json()
    assert (before["max_bytes"], before["quota_bytes"], before["overridden"]) == (
        settings.media_max_bytes, settings.media_quota_bytes, [])
    body = {"max_bytes": 1000, "allowed_types": ["text/csv"], "quota_bytes": 1500}
    after = await api.put(path, json=body, headers=platform(tenant))
    assert after.status_code == 200, after.text
    assert after.json()["overridden"] == ["max_bytes", "allowed_types", "quota_bytes"]
    again = await api.put(path, json={"max_bytes": 2000}, headers=platform(tenant))
    assert (again.json()["max_bytes"], again.json()["allowed_types"]) == (2000, sorted(settings.media_allowed_types))
    types = await runtime.pool.fetch("SELECT type FROM events WHERE stream_id = $1 ORDER BY seq",
                                     f"media-limits:{tenant.tenant_id}")
    assert [r["type"] for r in types] == ["media.limits_set", "media.limits_set"]


async def test_upload_url_follows_the_tenants_own_limits(
    api: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    limits = {"max_bytes": 1000, "allowed_types": ["text/csv"], "quota_bytes": 1500}
    put = await api.put(f"/admin/tenants/{tenant.tenant_id}/media-limits", json=limits, headers=platform(tenant))
    assert put.status_code == 200, put.text
    alice = tenant.as_user("alice")
    assert error_of(await api.post("/media/upload-url", json=upload("image/png", 10), headers=alice), 400)[
        "code"] == "MEDIA_TYPE_NOT_ALLOWED"
    assert error_of(await api.post("/media/upload-url", json=upload("text/csv", 1001), headers=alice), 400)[
        "code"] == "MEDIA_TOO_LARGE"
    first = await api.post("/media/upload-url", json=upload("text/csv", 1000), headers=alice)
    assert first.status_code == 201, first.text
    assert error_of(await api.post("/media/upload-url", json=upload("text/csv", 600), headers=alice), 413)[
        "code"] == "MEDIA_QUOTA_EXCEEDED"
    # Another tenant keeps the defaults.
    other = await api.post("/media/upload-url", json=upload("image/png", 5000), headers=other_tenant.as_user("bob"))
    assert other.status_code == 201, other.text


async def test_only_the_platform_admin_sets_limits_and_bad_ones_are_400(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    path = f"/admin/tenants/{tenant.tenant_id}/media-limits"
    refused = await api.put(path, json={"max_bytes": 1}, headers=tenant.as_user("admin"))
    assert error_of(refused, 403)["code"] == "NOT_PLATFORM_ADMIN"
    for body, field in [({"max_bytes": 0}, "max_bytes"), ({"allowed_types": []}, "allowed_types"),
                        ({"allowed_types": ["not a type"]}, "allowed_types"), ({"quota_bytes": -1}, "quota_bytes")]:
        assert error_of(await api.put(path, json=body, headers=platform(tenant)), 400)["field"].startswith(field)
    missing = await api.get("/admin/tenants/tn_nope/media-limits", headers=platform(tenant))
    assert error_of(missing, 404)["code"] == "TENANT_NOT_FOUND"
