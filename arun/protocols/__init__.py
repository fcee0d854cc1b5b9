"""Protocol families: pure request builders, response/stream parsers and error classifiers.

Nothing here does I/O: each family turns entities into request bytes and
response bytes into entities, so every provider of the family shares one
tested implementation and the runtime keeps sockets, retries and limits.
"""
