"""Every table of the registry, imported in one place so that Base.metadata is complete.

Alembic's autogenerate and the schema-drift test read `metadata` from here. A new models module is
added with one import line below.
"""

from registry import audit
from registry.access import models as access_models
from registry.catalog import models as catalog_models
from registry.clearance import models as clearance_models
from registry.db import Base
from registry.fingerprint import models as fingerprint_models
from registry.policy import models as policy_models
from registry.provenance import models as provenance_models

metadata = Base.metadata

__all__ = [
    "access_models",
    "audit",
    "catalog_models",
    "clearance_models",
    "fingerprint_models",
    "metadata",
    "policy_models",
    "provenance_models",
]
