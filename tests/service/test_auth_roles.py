"""The role a backend's key acts with for a user: the user's tenant role (unregistered users are members), read from
one map of the tenant's non-member users, or user by user in a tenant with too many of them."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from service.identity.auth import Authenticator
from service.runtime import Runtime
from tests.conftest import Tenant

ROLES = {"u_admin": "admin", "u_agent": "agent", "u_customer": "customer", "u_member": "member"}


async def _roles(auth: Authenticator, tenant: Tenant, users: list[str]) -> dict[str, str]:
    return {u: (await auth.authenticate(Headers(tenant.as_user(u)))).role for u in users}


@pytest.mark.parametrize("role_map_max", [1_000, 1], ids=["one map", "user by user"])
async def test_a_key_acts_with_each_users_role_and_a_changed_role_applies_after_forget_role(
    runtime: Runtime, tenant: Tenant, role_map_max: int
) -> None:
    await runtime.pool.executemany(
        "INSERT INTO users (tenant_id, user_id, display_name, role) VALUES ($1, $2, $2, $3)",
        [(tenant.tenant_id, user, role) for user, role in ROLES.items()],
    )
    auth = Authenticator(runtime.pool, runtime.auth.signer, role_map_max=role_map_max)
    users = [*ROLES, "u_unregistered"]
    # The tenant key's own role is admin, so each user's role is what applies.
    assert await _roles(auth, tenant, users) == {**ROLES, "u_unregistered": "member"}
    await runtime.pool.execute("UPDATE users SET role = 'member' WHERE tenant_id = $1 AND user_id = 'u_agent'",
                               tenant.tenant_id)
    await runtime.pool.execute("INSERT INTO users (tenant_id, user_id, display_name, role)"
                               " VALUES ($1, 'u_unregistered', 'x', 'agent')", tenant.tenant_id)
    assert (await _roles(auth, tenant, ["u_agent"]))["u_agent"] == "agent"  # cached for the ttl
    auth.forget_role(tenant.tenant_id, "u_agent")
    auth.forget_role(tenant.tenant_id, "u_unregistered")
    assert await _roles(auth, tenant, ["u_agent", "u_unregistered", "u_admin"]) == {
        "u_agent": "member", "u_unregistered": "agent", "u_admin": "admin"}
