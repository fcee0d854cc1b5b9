"""Where a provider's requests go and how they are authorised, from its ``arun:`` block.

:class:`Endpoint` turns (spec, credentials) into a URL and headers for one call.  It is the
one place that knows base URLs (the default, a credential override, a region choice, a
runtime override for tests and proxies), URL joining (a base URL's own query such as
Azure's ``?api-version=`` is kept, the path goes before it), auth styles, static headers and
the caller's per-call extra headers (which never replace the auth header).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from arun.errors import (
    CredentialsValidateFailedError,
    InvokeBadRequestError,
    ParameterValidationError,
)
from arun.redact import register_secret
from arun.schema.spec import ModelTypeSpec, ProviderSpec

__all__ = ["Endpoint", "join_url", "replace_origin"]

_JOINED: dict[tuple[str, str, tuple[tuple[str, str], ...]], str] = {}
_PROTECTED = frozenset({"content-type", "content-length", "host"})


def join_url(base: str, path: str, query: tuple[tuple[str, str], ...] = ()) -> str:
    """``base`` + ``path``, keeping ``base``'s query (``path`` and ``query`` may add to it)."""
    key = (base, path, query)
    url = _JOINED.get(key)
    if url is not None:
        return url
    parts = urlsplit(base)
    path_part, _, path_query = path.partition("?")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if path_query:
        pairs += parse_qsl(path_query, keep_blank_values=True)
    names = {k for k, _ in query}
    pairs = [(k, v) for k, v in pairs if k not in names] + list(query)
    url = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path_part, urlencode(pairs), ""))
    if len(_JOINED) > 4096:
        _JOINED.clear()
    _JOINED[key] = url
    return url


def replace_origin(url: str, origin: str) -> str:
    """``url`` with its scheme and host replaced by ``origin`` (whose own path, if any, is prefixed)."""
    parts = urlsplit(url)
    target = urlsplit(origin.rstrip("/"))
    return urlunsplit((target.scheme, target.netloc, target.path + parts.path, parts.query, ""))


class Endpoint:
    """URL and headers of one provider and model type (built once per model object)."""

    __slots__ = ("provider", "spec", "type_spec", "default_path", "override", "_auth_names", "_params", "_reads", "_resolved")

    def __init__(
        self,
        provider: str,
        spec: ProviderSpec,
        type_spec: ModelTypeSpec,
        default_path: str,
        override: str | None = None,
    ) -> None:
        self.provider = provider
        self.spec = spec
        self.type_spec = type_spec
        self.default_path = default_path
        #: a runtime-level origin override (tests, proxies): replaces scheme and host of every URL
        self.override = override
        auth = spec.auth
        names = {"authorization"}
        if auth.style == "header" and auth.header:
            names.add(auth.header.lower())
        self._auth_names = frozenset(names)
        self._params: dict[str, Any] = {}
        #: the credential fields a URL, the headers or the upstream model id depend on
        reads = [spec.base_url_credential, auth.credential, spec.model_name_credential]
        if spec.base_url_choices:
            reads.append(spec.base_url_choices.get("credential"))
        reads += spec.header_credentials.values()
        reads += [v.get("credential") for v in spec.query.values() if isinstance(v, dict)]
        self._reads = tuple(dict.fromkeys(name for name in reads if name))
        #: (model, path, content type, those fields' values) -> (url, headers, upstream model id, key)
        self._resolved: dict[tuple[Any, ...], tuple[str, dict[str, str], str, str | None]] = {}

    # -- one call ---------------------------------------------------------------------------------

    def resolve(
        self,
        credentials: Mapping[str, Any],
        model: str,
        path: str | None = None,
        *,
        content_type: str | None = "application/json",
        extra: Mapping[str, str] | None = None,
    ) -> tuple[str, dict[str, str], str]:
        """URL, headers and the upstream's model id for one call (``extra``: the caller's headers).

        What the credentials make of them is kept per value of the fields that matter, so a call
        with credentials seen before costs one tuple and one dict probe; a bad credential raises
        every time (nothing is kept for it)."""
        try:
            sig = (model, path, content_type, *map(credentials.get, self._reads))
            hit = self._resolved.get(sig)
        except TypeError:  # an unhashable credential value: nothing is kept
            sig, hit = None, None
        if hit is None:
            wire = self.wire_model(model, credentials)
            url = self.url(credentials, wire, path)
            headers = self.headers(credentials, content_type)
            hit = (url, headers, wire, self._key(credentials))
            if sig is not None:
                if len(self._resolved) > 1024:
                    self._resolved.clear()
                self._resolved[sig] = hit
        elif hit[3] is not None:
            register_secret(hit[3])  # keeps the key young in the redaction registry
        out = dict(hit[1])
        if extra:
            self._add_extra_headers(out, extra)
        return hit[0], out, hit[2]

    # -- URL ----------------------------------------------------------------------------------

    def base_url(self, credentials: Mapping[str, Any]) -> str:
        """The credential override when set, else the type's, the region choice's or the provider's default."""
        spec = self.spec
        base: str | None = None
        if spec.base_url_credential:
            value = credentials.get(spec.base_url_credential)
            if isinstance(value, str) and value.strip():
                base = value.strip()
                if not base.startswith(("http://", "https://")):
                    raise InvokeBadRequestError(
                        f"[{self.provider}] Bad Request Error, {spec.base_url_credential} must start with http:// or https://"
                    )
        if base is None:
            base = self.type_spec.base_url
            if base is None and spec.base_url_choices:
                choices = spec.base_url_choices
                options: dict[str, str] = choices["options"]
                choice = credentials.get(choices["credential"])
                base = options.get(choice) if isinstance(choice, str) else None
                if base is None:
                    base = options.get(str(choices.get("default"))) or next(iter(options.values()))
            if base is None:
                base = spec.base_url
            if base is None:
                raise InvokeBadRequestError(
                    f"[{self.provider}] Bad Request Error, credential {spec.base_url_credential} is required"
                )
            if self.override:
                base = replace_origin(base, self.override)
        base = base.rstrip("/")
        for suffix in spec.base_url_strip:
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        if spec.base_url_suffix and not base.endswith(spec.base_url_suffix):
            base += spec.base_url_suffix
        return base

    def url(self, credentials: Mapping[str, Any], model: str | None = None, path: str | None = None) -> str:
        """The request URL; ``{model}`` in the path is the upstream's model id."""
        route = path if path is not None else (self.type_spec.path or self.default_path)
        if "{model}" in route and model is not None:
            route = route.replace("{model}", model)
        return join_url(self.base_url(credentials), route, self._query(credentials))

    def _query(self, credentials: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
        spec = self.spec
        pairs: list[tuple[str, str]] = []
        for name, value in spec.query.items():
            if isinstance(value, dict):
                found = credentials.get(value.get("credential", ""))
                value = found if isinstance(found, str) and found else value.get("default")
                if value is None:
                    continue
            pairs.append((name, str(value)))
        auth = spec.auth
        if auth.style == "query" and auth.query:
            key = self._key(credentials)
            if key:
                pairs.append((auth.query, key))
        return tuple(pairs)

    # -- model name ------------------------------------------------------------------------------

    def wire_model(self, model: str, credentials: Mapping[str, Any]) -> str:
        spec = self.spec
        if spec.model_name_credential:
            name = credentials.get(spec.model_name_credential)
            if isinstance(name, str) and name.strip():
                return name.strip()
        return spec.model_names.get(model, model)

    # -- headers ---------------------------------------------------------------------------------

    def _key(self, credentials: Mapping[str, Any]) -> str | None:
        name = self.spec.auth.credential
        key = credentials.get(name) if name else None
        if key is None or key == "":
            return None
        if not isinstance(key, str):
            raise CredentialsValidateFailedError(f"Variable {name} should be a string")
        register_secret(key)
        return key

    def headers(self, credentials: Mapping[str, Any], content_type: str | None = "application/json") -> dict[str, str]:
        """The provider's headers and auth for ``credentials`` (the caller's extra headers are added by :meth:`resolve`)."""
        out: dict[str, str] = {"Content-Type": content_type} if content_type else {}
        spec = self.spec
        if spec.headers:
            out.update(spec.headers)
        for header, name in spec.header_credentials.items():
            value = credentials.get(name)
            if isinstance(value, str) and value:
                out[header] = value
        auth = spec.auth
        if auth.style in ("bearer", "header"):
            key = self._key(credentials)
            if key is None:
                if not auth.optional:
                    raise InvokeBadRequestError(
                        f"[{self.provider}] Bad Request Error, credential {auth.credential} is required"
                    )
            elif auth.style == "bearer":
                out["Authorization"] = "Bearer " + key
            else:
                out[auth.header or "Authorization"] = auth.prefix + key
        return out

    def _add_extra_headers(self, out: dict[str, str], extra: Mapping[str, str]) -> None:
        for name, value in extra.items():
            lowered = name.lower() if isinstance(name, str) else ""
            if not isinstance(name, str) or not isinstance(value, str):
                raise ParameterValidationError("extra_headers should map header names to strings", parameter="extra_headers")
            if lowered in self._auth_names or lowered in _PROTECTED:
                raise ParameterValidationError(
                    f"extra_headers must not set {name!r}: it carries the credentials or the body framing",
                    parameter="extra_headers",
                    rule="auth",
                )
            out[name] = value

    # -- parameters ------------------------------------------------------------------------------

    def wire_parameters(self, model: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """Validated parameters spelled as the provider wants them for ``model`` (a new dict)."""
        rules = self._params.get(model)
        if rules is None:
            rules = self.type_spec.parameters_for(model)
            if len(self._params) > 1024:
                self._params.clear()
            self._params[model] = rules
        if not (rules.rename or rules.drop or rules.set or rules.values):
            return parameters
        out = {}
        drop = rules.drop
        rename = rules.rename
        values = rules.values
        for name, value in parameters.items():
            if name in drop:
                continue
            mapping = values.get(name)
            if mapping is not None:
                key = str(value).lower() if isinstance(value, bool) else str(value)
                if key in mapping:
                    value = mapping[key]
            out[rename.get(name, name)] = value
        if rules.set:
            out.update(rules.set)
        return out
