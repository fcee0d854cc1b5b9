"""``ModelManager``: tenants, provider credentials, default models, quotas and balancing.

::

    async with ModelManager.open() as manager:                 # ~/.arun/arun.db + memory://
        tenant = await manager.create_tenant("acme")
        await manager.save_provider_credentials(tenant.id, "openai", {"openai_api_key": "sk-..."})
        llm = await manager.get_model_instance(tenant.id, None, "llm", None)   # the default LLM
        result = await llm.invoke_llm([UserPromptMessage(content="hi")], stream=False)

    ModelManager.open("postgresql://u@db/arun", "redis://cache:6379/0")    # shared setup

The facade combines one mixin per responsibility, each in its own module:

==========================  ===================================================================
``core``                    lifecycle (store, state, runtime, limiter), the tenant cache, helpers
``tenants``                 create / get / list / delete tenants
``credentials_admin``       provider and model credentials (validated, encrypted, obfuscated)
``quota_admin``             hosted (SYSTEM) provider rows and their quotas
``catalog``                 listings, default models, per-model settings
``lb_admin``                load-balancing credential configs and their cooldown state
``resolution``              a tenant's model → :class:`~arun.manager.instance.ModelInstance`
``routing``                 routers, routes and fallback chains of the policy layer
==========================  ===================================================================

Caching: one :class:`TenantConfig` per tenant holds the tenant's rows, its private key
and the credentials it decrypted — in process memory only — plus the model
instances built from them.  It is loaded with a few store queries on first use and
dropped on every change made through this manager (and after ``config_ttl``
seconds, so changes made by other processes are picked up).
"""

from __future__ import annotations

from arun.manager.core import INHERIT, default_store_url
from arun.manager.credentials_admin import CredentialsMixin
from arun.manager.lb_admin import LBAdminMixin
from arun.manager.quota_admin import QuotaMixin
from arun.manager.resolution import ResolutionMixin
from arun.manager.tenant_config import TenantConfig
from arun.manager.tenants import TenantsMixin
from arun.manager.views import LBConfigView, ModelStatus, ProviderStatus, QuotaInfo

__all__ = [
    "ModelManager",
    "ProviderStatus",
    "ModelStatus",
    "QuotaInfo",
    "LBConfigView",
    "TenantConfig",
    "INHERIT",
    "default_store_url",
]


class ModelManager(TenantsMixin, CredentialsMixin, QuotaMixin, LBAdminMixin, ResolutionMixin):
    """Tenant-scoped model access and provider management over a store, a state and a runtime.

    ``store`` / ``state`` are objects or URLs (opened on :meth:`start`); what the
    manager opens or creates (including the runtime when ``runtime`` is None) it
    closes in :meth:`aclose`.
    """
