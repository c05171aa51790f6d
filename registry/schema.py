"""Every table of the registry, imported in one place so that Base.metadata is complete.

Alembic's autogenerate and the schema-drift test read `metadata` from here. A new models module is
added with one import line below.
"""

from registry import audit
from registry.access import models as access_models
from registry.catalog import models as catalog_models
from registry.db import Base

metadata = Base.metadata

__all__ = ["access_models", "audit", "catalog_models", "metadata"]
