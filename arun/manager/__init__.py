"""The manager layer: tenant-scoped provider configuration, credential storage, quota and balancing.

Public API (everything is async unless noted)::

    from arun.manager import ModelManager

    async with ModelManager.open(store_url=None, state_url=None) as manager:
        # embedded default: sqlite ~/.arun/arun.db (+ a 0600 master key file next to it) and memory://
        # shared setup:     ModelManager.open("postgresql://u@host/db", "redis://host:6379/0")
        #                   (ARUN_MASTER_KEY must then be set, or pass master_key=)
        ...
    manager = ModelManager(store=<CredentialStore | URL>, state=<StateStore | URL>, runtime=None,
                           master_key=None, load_balancing_enabled=True, lb_wait_deadline=None,
                           config_ttl=60.0, quota_units=None)

Tenants: ``create_tenant(name, tenant_id=None)`` (RSA-2048 pair, private half sealed
under the master key), ``get_tenant``, ``list_tenants``, ``delete_tenant``.

Credentials (validated through the runtime first; only ``secret-input`` fields are
encrypted; ``"[__HIDDEN__]"`` keeps the stored secret; getters obfuscate by default):
``save_provider_credentials / get_provider_credentials / delete_provider_credentials``,
``save_model_credentials / get_model_credentials / delete_model_credentials``.

Listings: ``list_providers(tenant)`` → :class:`ProviderStatus` (``active`` |
``no-configure`` | ``quota-exceeded``), ``list_models(tenant, provider=, model_type=)`` →
:class:`ModelStatus` (also ``no-permission`` | ``disabled``).

Default models: ``set_default_model(tenant, type, provider, model)`` (stored in Dify's origin
spelling), ``get_default_model(tenant, type)`` (first active model when unset, persisted).
Models: ``enable_model / disable_model``, ``enable_load_balancing / disable_load_balancing``.

Load balancing: ``add_lb_config(tenant, provider, type, model, name, credentials)``
(``name="__inherit__"`` = the model's own credentials), ``list_lb_configs`` / ``lb_states``
(→ :class:`LBConfigView`: obfuscated credentials, in_cooldown, ttl, until, reason),
``update_lb_config``, ``enable_lb_config``, ``disable_lb_config``, ``delete_lb_config``.
Balancing is active with Dify's rules: custom provider type, ``load_balancing_enabled`` on
the manager and the model setting, more than one enabled config.

Quotas: ``set_system_quota(tenant, provider, quota_limit=, quota_type="trial", quota_unit=,
credentials=, restrict_models=)``, ``get_quotas``.  Calls on a SYSTEM provider with a limit
are charged atomically in the store (tokens: ``usage.total_tokens``; times / credits: 1);
an exhausted quota raises :class:`QuotaExceededError` before any upstream call.

Calling models: ``instance = await manager.get_model_instance(tenant, provider, type, model)``
(``provider=None`` → the default model), then ``invoke_llm`` (``stream=True`` →
:class:`~arun.LLMStream`), ``get_llm_num_tokens``, ``invoke_text_embedding``,
``get_text_embedding_num_tokens``, ``invoke_rerank``, ``invoke_speech2text``, ``invoke_tts``,
``invoke_moderation``, ``get_tts_voices``.

Caching: each tenant's configuration (rows, private key, decrypted credentials — in
process memory only) is cached and dropped on every change made through the manager and
after ``config_ttl`` seconds.  CLI commands: :mod:`arun.manager.cli` (``register(subparsers)``).

Errors: :mod:`arun.manager.errors`, :class:`CredentialDecryptError` (corrupt or foreign
ciphertext), plus ``arun.errors`` (ProviderNotFoundError, ModelNotFoundError,
CredentialsValidateFailedError, Invoke*Error).
"""

from arun.manager.crypto import (
    HIDDEN_VALUE,
    CredentialDecryptError,
    Credentials,
    MasterKeyError,
)
from arun.manager.errors import (
    LBConfigNotFoundError,
    ManagerError,
    ModelDisabledError,
    ModelTypeMismatchError,
    NoPermissionError,
    ProviderTokenNotInitError,
    QuotaExceededError,
    TenantNotFoundError,
)
from arun.manager.instance import ModelInstance, PolicyBinding
from arun.manager.manager import (
    INHERIT,
    LBConfigView,
    ModelManager,
    ModelStatus,
    ProviderStatus,
    QuotaInfo,
    TenantConfig,
    default_store_url,
)
from arun.manager.policy import FallbackSpec, PolicyConfig
from arun.manager.quota import QuotaPlan

__all__ = [
    "HIDDEN_VALUE",
    "INHERIT",
    "CredentialDecryptError",
    "Credentials",
    "FallbackSpec",
    "LBConfigNotFoundError",
    "LBConfigView",
    "ManagerError",
    "MasterKeyError",
    "ModelDisabledError",
    "ModelInstance",
    "ModelManager",
    "ModelStatus",
    "ModelTypeMismatchError",
    "NoPermissionError",
    "PolicyBinding",
    "PolicyConfig",
    "ProviderStatus",
    "ProviderTokenNotInitError",
    "QuotaExceededError",
    "QuotaInfo",
    "QuotaPlan",
    "TenantConfig",
    "TenantNotFoundError",
    "default_store_url",
]
