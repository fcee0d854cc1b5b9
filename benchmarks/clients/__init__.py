"""One module per client under test; each exposes ``Client(url, spec)`` with
``start/close`` and ``stream/chat/embed (or embed_all)/rerank`` coroutines."""
