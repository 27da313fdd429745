"""PostgreSQL-only behaviour (every database suite runs on PostgreSQL as well through ``database_url``)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.postgres
