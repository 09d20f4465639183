"""Fixtures for sync-operator's tests (the sandboxes come from the repository's conftest.py)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest

TENANT = "7654321"


@pytest.fixture
def jwt_factory() -> Any:
    """Return a maker of Fortnox-shaped HS256 JWTs (``exp``, ``tenantId``; never verified)."""

    def make_jwt(*, expires_in: float = 3600, tenant: str = TENANT) -> str:
        claims = {"exp": int(time.time() + expires_in), "tenantId": tenant, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, "test-signing-key-of-sufficient-length", algorithm="HS256")

    return make_jwt
