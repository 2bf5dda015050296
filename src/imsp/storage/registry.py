"""Imports every domain's ORM models so ``Base.metadata`` is complete (Alembic, schema tests).

Each domain adds one line here when it gains a ``models.py``.
"""

from __future__ import annotations

import imsp.acceptance.models
import imsp.auth.models
import imsp.exchange.models
import imsp.notify.models
import imsp.qualification.models
import imsp.supervision.models
import imsp.supervision.rollup_models
import imsp.video.models  # noqa: F401
