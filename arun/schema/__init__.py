"""Loading and validating provider/model YAML manifests and credential forms."""
