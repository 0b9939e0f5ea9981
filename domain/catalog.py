"""The model catalog: providers, the models clients may pin or the router may pick, and the
router's names and default quality floor, read from the operator's TOML config.

It must never guess about money or quietly repair a config: prices are exact decimal strings (a
TOML float is refused, because 0.1 as a binary float is not 0.1), unknown keys inside a provider,
model or router table are refused (a misspelt price key would otherwise fall back to a default),
and every error names its file and key. Reading the file is the only I/O here; the rest is pure,
and `Catalog.canonical_json()` is the byte form the routing ruleset hash is taken over.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Context, Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Final

PROVIDER_KINDS: Final = frozenset({"anthropic", "openai", "gemini"})
# The upstream protocol each provider kind is spoken to in. A model may take tools on one
# protocol and not on another (an OpenAI model whose tools work only on the Responses API is
# reached here through Chat Completions): `tools_unsupported_on` names the ones it does not.
PROTOCOLS: Final = {"anthropic": "messages", "openai": "chat.completions",
                    "gemini": "generate_content"}
# The names a model's output limit goes by upstream: OpenAI's reasoning models refuse the
# legacy `max_tokens`; most OpenAI-compatible servers know only it.
MAX_TOKENS_FIELDS: Final = ("max_tokens", "max_completion_tokens")
CANONICAL_ROUTER: Final = "ainfera-inference"
LEGACY_ALIASES: Final = ("ainfera-mithril", "ainfera-auto", "ainfera/auto")
CATALOG_FORMAT: Final = "ainfera-catalog/v1"
_PRICES: Final = ("input", "output", "cache_read", "cache_write")
_KEYS: Final = {
    "provider": frozenset({"kind", "base_url", "api_key_env"}),
    "router": frozenset({"canonical", "aliases", "default_min_quality"}),
    "model": frozenset(
        {"slug", "provider", "upstream_model", "quality", "supports_tools", "aa_index_source"}
        | {"supports_structured_output", "supports_thinking", "max_tokens_field"}
        | {"tools_unsupported_on"}
        | {"max_output_tokens", "context_window", "price_version"}
        | {f"{price}_usd_per_mtok" for price in _PRICES}
    ),
}
_WIDE: Final = Context(prec=100)  # wide enough that normalising a config value never rounds it


def decimal_str(value: Decimal) -> str:
    """The one spelling of a decimal in canonical forms: no exponent and no trailing zeros, so
    "3", "3.0" and "3.00" in a config hash alike."""
    return "0" if value.is_zero() else format(value.normalize(_WIDE), "f")


# One kept encoder: `json.dumps` with these options builds a new one on every call, and this
# runs for every request's digest and three times per Routed in the decisions read model.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False).encode


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: equal values give equal bytes, so hashes over them
    reproduce. Decimals must already be strings (`decimal_str`); floats have no place here."""
    return _CANONICAL(value).encode("utf-8")


@dataclass(frozen=True)
class Provider:
    """An upstream. `base_url` follows the vendor SDK's convention, without a trailing slash:
    the API root for `anthropic` and `gemini` (adapters append `/v1/messages`,
    `/v1beta/models/...`), and the root *with* its version path for `openai`
    (`https://api.openai.com/v1`; adapters append `/chat/completions`), because
    OpenAI-compatible servers put it in different places (`.../openai/v1`, `:11434/v1`)."""

    name: str
    kind: str
    base_url: str
    api_key_env: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "base_url": self.base_url, "api_key_env": self.api_key_env}


@dataclass(frozen=True)
class Model:
    """A model clients may pin by `slug`; prices are US dollars per million tokens.

    The `supports_*` flags say what a request may need of it (a JSON-schema answer, thinking):
    the router never chooses a model lacking what a call needs, and a call pinned to one is
    refused. `max_tokens_field` is the name an OpenAI-compatible backend takes the output
    limit under. `tools_unsupported_on` lists the protocols (PROTOCOLS) over which a model
    with `supports_tools` takes no tools all the same."""

    slug: str
    provider: str
    upstream_model: str
    quality: Decimal
    input_usd_per_mtok: Decimal
    output_usd_per_mtok: Decimal
    cache_read_usd_per_mtok: Decimal
    cache_write_usd_per_mtok: Decimal
    supports_tools: bool
    price_version: str
    aa_index_source: str | None = None
    max_output_tokens: int | None = None
    context_window: int | None = None
    supports_structured_output: bool = False
    supports_thinking: bool = False
    max_tokens_field: str = "max_tokens"
    tools_unsupported_on: tuple[str, ...] = ()

    def supports(self, capability: str, protocol: str | None = None) -> bool:
        """Whether the model has a capability named as `domain.protocols.fates` names them
        (`tools`, `structured_output`, `thinking`), over `protocol` when one is given (the
        one its provider speaks: `Catalog.protocol_of`)."""
        if capability == "tools" and protocol in self.tools_unsupported_on:
            return False
        return bool(getattr(self, f"supports_{capability}"))

    def why_not(self, capability: str, protocol: str | None = None) -> str:
        """The catalog entry that says the model lacks `capability` (for error messages)."""
        if capability == "tools" and self.supports_tools and protocol in self.tools_unsupported_on:
            return f"tools_unsupported_on includes {protocol!r}"
        return f"supports_{capability} = false"

    def as_dict(self) -> dict[str, Any]:
        # Keys added after the catalog format was fixed enter it only when set, so a catalog
        # that does not use them keeps the ruleset hash its recorded decisions carry.
        return {
            key: decimal_str(value) if isinstance(value, Decimal) else value
            for key, value in vars(self).items()
            if key not in _LATER_DEFAULTS or value != _LATER_DEFAULTS[key]
        }


_LATER_DEFAULTS: Final = {
    "supports_structured_output": False,
    "supports_thinking": False,
    "max_tokens_field": "max_tokens",
    "tools_unsupported_on": (),
}


@dataclass(frozen=True)
class RouterConfig:
    canonical: str = CANONICAL_ROUTER
    aliases: tuple[str, ...] = LEGACY_ALIASES
    default_min_quality: Decimal = Decimal("0.50")

    def as_dict(self) -> dict[str, Any]:
        return {
            "canonical": self.canonical,
            "aliases": sorted(self.aliases),  # their order means nothing, so it must not hash
            "default_min_quality": decimal_str(self.default_min_quality),
        }


@dataclass(frozen=True)
class Catalog:
    """A validated catalog: build it with `catalog_from_dict` or `load_catalog`."""

    providers: tuple[Provider, ...]
    models: tuple[Model, ...]
    router: RouterConfig = RouterConfig()
    _by_slug: Mapping[str, Model] = field(init=False, repr=False, compare=False)
    _by_name: Mapping[str, Provider] = field(init=False, repr=False, compare=False)
    _canonical: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Computed once: routing looks models up and hashes the catalog on every request.
        object.__setattr__(self, "_by_slug", MappingProxyType({m.slug: m for m in self.models}))
        object.__setattr__(self, "_by_name", MappingProxyType({p.name: p for p in self.providers}))
        object.__setattr__(self, "_canonical", canonical_json(self.as_dict()))

    def model(self, slug: str) -> Model | None:
        return self._by_slug.get(slug)

    def provider_of(self, model: Model) -> Provider:
        return self._by_name[model.provider]

    def protocol_of(self, model: Model) -> str:
        """The upstream protocol the model is reached through (its provider kind's)."""
        return PROTOCOLS[self._by_name[model.provider].kind]

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": CATALOG_FORMAT,
            "providers": {p.name: p.as_dict() for p in self.providers},
            "models": [m.as_dict() for m in sorted(self.models, key=lambda m: m.slug)],
            "router": self.router.as_dict(),
        }

    def canonical_json(self) -> bytes:
        return self._canonical


def default_price_version(prices: Mapping[str, Decimal]) -> str:
    """16 hex digits of the SHA-256 of the canonical prices: it changes exactly when a price
    does, so a debit names the schedule it was charged under without anyone bumping a version."""
    canonical = {name: decimal_str(price) for name, price in prices.items()}
    return hashlib.sha256(canonical_json(canonical)).hexdigest()[:16]


def load_catalog(path: str | os.PathLike[str]) -> Catalog:
    source = os.fspath(path)
    try:
        with open(source, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise CatalogError(f"{source}: cannot read the config: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source}: not valid TOML: {exc}") from exc
    return catalog_from_dict(data, source)


def catalog_from_dict(data: Mapping[str, Any], source: str = "<config>") -> Catalog:
    """Validates a parsed config. Top-level keys other than providers, models and router belong
    to other parts of the config and are left alone."""
    top = _Table(data, source)
    if not isinstance(data.get("providers"), Mapping) or not data["providers"]:
        raise top.fail("providers", "must be a table with at least one [providers.NAME]")
    providers = {
        name: _read_provider(name, _Table(raw, f"{source}: [providers.{name}]"))
        for name, raw in data["providers"].items()
    }
    router = RouterConfig() if "router" not in data else _read_router(top.table("router"))
    raw_models = data.get("models")
    if not isinstance(raw_models, list) or not raw_models:
        raise top.fail("models", "must be a non-empty array of tables ([[models]])")
    models: dict[str, Model] = {}
    for number, raw in enumerate(raw_models, start=1):
        table = _Table(raw, f"{source}: [[models]] entry {number}")
        model = _read_model(table, router)
        if model.provider not in providers:
            known = ", ".join(sorted(providers))
            raise table.fail("provider", f"{model.provider!r} is not under [providers] ({known})")
        if model.slug in models:
            raise table.fail("slug", f"{model.slug!r} is already used by an earlier model")
        kind = providers[model.provider].kind
        if model.max_tokens_field != "max_tokens" and kind != "openai":
            raise table.fail("max_tokens_field", f"applies to openai providers only, and "
                             f"{model.provider!r} is {kind}")
        if model.tools_unsupported_on and not model.supports_tools:
            raise table.fail("tools_unsupported_on", "is for a model with supports_tools = "
                             "true; one without takes tools on no protocol already")
        models[model.slug] = model
    return Catalog(tuple(providers.values()), tuple(models.values()), router)


def _read_provider(name: str, table: _Table) -> Provider:
    table.check_keys("provider")
    kind = table.text("kind")
    if kind not in PROVIDER_KINDS:
        raise table.fail("kind", f"must be one of {sorted(PROVIDER_KINDS)}, not {kind!r}")
    base_url = table.text("base_url")
    if not base_url.startswith(("https://", "http://")):
        raise table.fail("base_url", f"must be an http(s) URL, not {base_url!r}")
    return Provider(name, kind, base_url.rstrip("/"), table.text("api_key_env"))


def _read_router(table: _Table) -> RouterConfig:
    table.check_keys("router")
    canonical = table.text("canonical", CANONICAL_ROUTER)
    aliases = table.data.get("aliases", list(LEGACY_ALIASES))
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
        raise table.fail("aliases", "must be an array of non-empty strings")
    if len(set(aliases)) != len(aliases) or canonical in aliases:
        raise table.fail("aliases", "must not repeat a name or the canonical router name")
    return RouterConfig(canonical, tuple(aliases), table.score("default_min_quality", "0.50"))


def _read_model(table: _Table, router: RouterConfig) -> Model:
    table.check_keys("model")
    slug = table.text("slug")
    table.where = f"{table.where} ({slug!r})"
    if slug == router.canonical or slug in router.aliases:
        raise table.fail("slug", f"{slug!r} is a router name, so it could never be pinned")
    prices = {"input": table.usd("input_usd_per_mtok"), "output": table.usd("output_usd_per_mtok")}
    # An unlisted cache price is charged as plain input: that overcharges cache reads rather
    # than guessing a discount. Vendors whose cache writes cost more (Anthropic) must list them.
    for price in ("cache_read", "cache_write"):
        prices[price] = table.usd(f"{price}_usd_per_mtok", prices["input"])
    return Model(
        slug=slug,
        provider=table.text("provider"),
        upstream_model=table.text("upstream_model"),
        quality=table.score("quality"),
        input_usd_per_mtok=prices["input"],
        output_usd_per_mtok=prices["output"],
        cache_read_usd_per_mtok=prices["cache_read"],
        cache_write_usd_per_mtok=prices["cache_write"],
        supports_tools=table.flag("supports_tools"),
        price_version=table.text("price_version", default_price_version(prices)),
        aa_index_source=table.optional_text("aa_index_source"),
        max_output_tokens=table.count("max_output_tokens"),
        context_window=table.count("context_window"),
        supports_structured_output=table.flag("supports_structured_output"),
        supports_thinking=table.flag("supports_thinking"),
        max_tokens_field=table.choice("max_tokens_field", MAX_TOKENS_FIELDS),
        tools_unsupported_on=table.names("tools_unsupported_on", tuple(PROTOCOLS.values())),
    )


class _Table:
    """A TOML table being read: hands out typed values, and every error names its place."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, Mapping):
            raise CatalogError(f"{where}: expected a table, not {_kind(data)}")
        self.data: Mapping[str, object] = data
        self.where = where

    def fail(self, key: str, problem: str) -> CatalogError:
        return CatalogError(f"{self.where}: `{key}` {problem}")

    def check_keys(self, kind: str) -> None:
        unknown = sorted(set(self.data) - _KEYS[kind])
        if unknown:
            allowed = ", ".join(sorted(_KEYS[kind]))
            raise CatalogError(f"{self.where}: unknown key(s) {unknown}; allowed: {allowed}")

    def table(self, key: str) -> _Table:
        return _Table(self.data[key], f"{self.where}: [{key}]")

    def given(self, key: str, default: object) -> object:
        value = self.data.get(key, default)
        if value is None:
            raise self.fail(key, "is required")
        return value

    def text(self, key: str, default: str | None = None) -> str:
        value = self.given(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, not {_kind(value)}")
        return value

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        """One of `allowed`; the first is the default."""
        value = self.text(key, allowed[0])
        if value not in allowed:
            raise self.fail(key, f"must be one of {', '.join(allowed)}, not {value!r}")
        return value

    def names(self, key: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
        """An array of distinct names from `allowed` (default empty), in canonical (sorted)
        order, so the same set hashes alike however it was written."""
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"must be an array of names ({', '.join(allowed)})")
        unknown = [v for v in value if v not in allowed]
        if unknown:
            raise self.fail(key, f"has {unknown[0]!r}; each entry must be one of "
                            f"{', '.join(allowed)}")
        if len(set(value)) != len(value):
            raise self.fail(key, "must not repeat a name")
        return tuple(sorted(value))

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if key in self.data else None

    def flag(self, key: str) -> bool:
        value = self.given(key, False)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, not {_kind(value)}")
        return value

    def count(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None or (type(value) is int and value > 0):
            return value
        raise self.fail(key, f"must be a positive integer, not {value!r}")

    def usd(self, key: str, default: Decimal | None = None) -> Decimal:
        value = self.given(key, default)
        if isinstance(value, float):
            raise self.fail(key, f'is a TOML float; money must be exact, so quote it: "{value!r}"')
        amount = _decimal(value)
        if amount is None or amount < 0:
            raise self.fail(key, f'must be a decimal string >= 0 like "3.00", not {value!r}')
        return amount

    def score(self, key: str, default: str | None = None) -> Decimal:
        value = self.given(key, default)
        # A score is not money, so a TOML float is taken at its shortest spelling (0.8 -> "0.8").
        score = _decimal(repr(value) if isinstance(value, float) else value)
        if score is None or not 0 <= score <= 1:
            raise self.fail(key, f'must be a decimal from 0 to 1, e.g. "0.80", not {value!r}')
        return score


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    try:
        return _decimal(Decimal(value))
    except InvalidOperation:
        return None


def _kind(value: object) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}
    return kinds.get(type(value), "an array" if isinstance(value, list) else "a table")


def default_catalog() -> Catalog:
    """The catalog used when no config is given, so a fresh machine serves with vendor keys
    alone. `config/ainfera.example.toml` holds the same data with every key explained; quality
    scores without an `aa_index_source` are this default's own estimates: calibrate them."""
    vendors = {
        "anthropic": ("https://api.anthropic.com", "ANTHROPIC_API_KEY"),
        "openai": ("https://api.openai.com/v1", "OPENAI_API_KEY"),
        "gemini": ("https://generativelanguage.googleapis.com", "GEMINI_API_KEY"),
    }
    # slug, upstream model, quality, prices (input, output, cache read, cache write), context
    # window, max output tokens. The provider is the slug's vendor. Every model here takes
    # tools, JSON-schema answers and thinking; OpenAI's GPT-5 family are reasoning models, which
    # take their output limit as `max_completion_tokens`.
    rows = [
        ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "0.80", "3.00 15.00 0.30 3.75",
         200_000, 64_000),
        ("claude-haiku-4-5", "claude-haiku-4-5-20251001", "0.62", "1.00 5.00 0.10 1.25",
         200_000, 64_000),
        ("gpt-5", "gpt-5-2025-08-07", "0.82", "1.25 10.00 0.125 1.25", 400_000, 128_000),
        ("gpt-5-mini", "gpt-5-mini-2025-08-07", "0.70", "0.25 2.00 0.025 0.25", 400_000, 128_000),
        # 200k keeps Gemini 2.5 Pro inside the lower of its two price tiers, the one listed here.
        ("gemini-2.5-pro", "gemini-2.5-pro", "0.78", "1.25 10.00 0.125 1.25", 200_000, 65_536),
        ("gemini-2.5-flash", "gemini-2.5-flash", "0.65", "0.30 2.50 0.03 0.30",
         1_048_576, 65_536),
    ]
    vendor_of = {"claude": "anthropic", "gpt": "openai", "gemini": "gemini"}
    models = []
    for slug, upstream, quality, prices, context, max_out in rows:
        model = {
            "slug": slug,
            "provider": vendor_of[slug.split("-")[0]],
            "upstream_model": upstream,
            "quality": quality,
            "supports_tools": True,
            "supports_structured_output": True,
            "supports_thinking": True,
            "context_window": context,
            "max_output_tokens": max_out,
        }
        if slug.startswith("gpt-5"):
            model["max_tokens_field"] = "max_completion_tokens"
        model |= {f"{k}_usd_per_mtok": p for k, p in zip(_PRICES, prices.split(), strict=True)}
        if slug == "claude-sonnet-4-5":
            model["aa_index_source"] = "routing_backend_v1_lock"
        models.append(model)
    providers = {
        name: {"kind": name, "base_url": url, "api_key_env": env}
        for name, (url, env) in vendors.items()
    }
    return catalog_from_dict({"providers": providers, "models": models}, "<built-in catalog>")


class CatalogError(ValueError):
    """A config that cannot be turned into a catalog; the message names the file and key."""
