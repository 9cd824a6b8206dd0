"""Who may write what: the roles of API keys, checked op by op inside the write path."""

from __future__ import annotations

from typing import Any

from ..errors import Forbidden, Unauthorized
from ..state import Principal
from .edit import editable
from .ops import Op


def authorize(principal: Principal | None, op: Op, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
    """Roles: admin may do anything in its territory; editor anything but the territory record;
    organization:<id> may write projects it implements, its own organization record, and the
    status of proposals it handles."""
    if principal is None:  # internal writes (CLI, demo loader)
        return
    role, kind = principal.role, op.kind.name
    if role == "admin":
        return
    if role == "editor":
        if kind == "territory":
            raise Forbidden("only an admin key can change the territory record")
        return
    org = principal.organization
    if org is None:
        raise Forbidden(f"role {role!r} cannot write")
    if kind == "project":
        for state in (old, new):
            if state is not None and state.get("implemented_by") != org:
                raise Forbidden(f"organization {org!r} may only write projects it implements (implemented_by)")
        return
    if kind == "organization" and op.local_id == org and op.action != "delete":
        return
    if kind == "proposal" and op.action == "patch" and old is not None and new is not None:
        if old.get("handled_by") != org:
            raise Forbidden(f"proposal {op.local_id!r} is not handled by organization {org!r}")
        changed = {k for k in set(old) | set(new) if editable(old).get(k) != editable(new).get(k)}
        if changed - {"status"}:
            raise Forbidden(f"organization {org!r} may only change the status of the proposals it handles")
        return
    raise Forbidden(f"organization {org!r} cannot {op.action} {kind} {op.local_id!r}")


def require_writer(principal: Principal | None, territory: str) -> Principal:
    """The key may write in ``territory`` at all (401 without a key, 403 for another territory)."""
    if principal is None:
        raise Unauthorized("writing needs an API key: send `Authorization: Bearer <key>`")
    if principal.territory != territory:
        raise Forbidden(f"this API key is for territory {principal.territory!r}, not {territory!r}")
    return principal
