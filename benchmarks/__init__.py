"""arun benchmarks: arun vs a bare-client floor vs the openai SDK vs LiteLLM.

Run ``python -m benchmarks.run --help``.  Nothing in this package is imported by
``arun`` itself; the peer clients live in a separate, git-ignored virtualenv
(``benchmarks/.peers``) and are never arun dependencies.
"""
