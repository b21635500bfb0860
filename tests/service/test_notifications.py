"""POST /notify: the body names its targets."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Tenant


@pytest.mark.parametrize(
    "targets", [{}, {"user_ids": []}, {"topic_subscribers": False}], ids=["none", "no-users", "no-subscribers"]
)
async def test_notify_without_any_target_is_400_on_targets(
    client: httpx.AsyncClient, tenant: Tenant, targets: dict[str, object]
) -> None:
    response = await client.post("/notify", json={"topic": "t", "payload": {}, "targets": targets},
                                 headers=tenant.as_user("admin"))
    assert response.status_code == 400, response.text
    assert (response.json()["error"]["code"], response.json()["error"]["field"]) == ("VALIDATION_ERROR", "targets")


async def test_notify_to_one_user_is_201(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post("/notify", json={"topic": "t", "payload": {}, "targets": {"user_ids": ["bob"]}},
                                 headers=tenant.as_user("admin"))
    assert response.status_code == 201, response.text
