"""Wire layer: the pooled HTTP client and incremental stream decoders."""
