"""The manager layer: tenant-scoped provider configuration, credential storage and quota."""
