"""Catalog parsing: the contract shape, its extensions, canonical bytes, and every refusal."""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.catalog import (
    CatalogError,
    RouterConfig,
    catalog_from_dict,
    decimal_str,
    default_catalog,
    load_catalog,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "ainfera.example.toml"

CONTRACT_TOML = """
[providers.anthropic]
kind = "anthropic"
base_url = "https://api.anthropic.com"
api_key_env = "ANTHROPIC_API_KEY"

[[models]]
slug = "claude-sonnet-4-5"
provider = "anthropic"
upstream_model = "claude-sonnet-4-5-20250929"
quality = "0.80"
input_usd_per_mtok = "3.00"
output_usd_per_mtok = "15.00"
supports_tools = true
aa_index_source = "routing_backend_v1_lock"

[router]
canonical = "ainfera-inference"
aliases = ["ainfera-mithril", "ainfera-auto", "ainfera/auto"]
default_min_quality = "0.50"
"""


def contract() -> dict[str, Any]:
    return {
        "providers": {
            "anthropic": {
                "kind": "anthropic",
                "base_url": "https://api.anthropic.com",
                "api_key_env": "ANTHROPIC_API_KEY",
            }
        },
        "models": [
            {
                "slug": "claude-sonnet-4-5",
                "provider": "anthropic",
                "upstream_model": "claude-sonnet-4-5-20250929",
                "quality": "0.80",
                "input_usd_per_mtok": "3.00",
                "output_usd_per_mtok": "15.00",
                "supports_tools": True,
            }
        ],
    }


def test_the_contract_shape_loads_from_a_file_with_defaults_for_every_extension(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ainfera.toml"
    path.write_text(CONTRACT_TOML, encoding="utf-8")
    catalog = load_catalog(path)
    (provider,) = catalog.providers
    assert provider.as_dict() == {
        "kind": "anthropic",
        "base_url": "https://api.anthropic.com",
        "api_key_env": "ANTHROPIC_API_KEY",
    }
    model = catalog.model("claude-sonnet-4-5")
    assert model is not None
    assert model.quality == Decimal("0.80")
    assert model.input_usd_per_mtok == Decimal("3.00")
    assert model.output_usd_per_mtok == Decimal("15.00")
    assert model.cache_read_usd_per_mtok == model.cache_write_usd_per_mtok == Decimal("3.00")
    assert (model.max_output_tokens, model.context_window) == (None, None)
    assert model.supports_tools is True
    assert model.aa_index_source == "routing_backend_v1_lock"
    assert len(model.price_version) == 16
    assert int(model.price_version, 16) >= 0
    assert catalog.provider_of(model) == provider
    assert catalog.router == RouterConfig(
        "ainfera-inference", ("ainfera-mithril", "ainfera-auto", "ainfera/auto"), Decimal("0.5"))
    assert catalog.model("nope") is None


def test_router_table_and_optional_model_keys_have_defaults() -> None:
    catalog = catalog_from_dict(contract())
    assert catalog.router == RouterConfig()
    assert catalog.models[0].aa_index_source is None


def test_extensions_are_read() -> None:
    data = contract()
    data["models"][0] |= {
        "cache_read_usd_per_mtok": "0.30",
        "cache_write_usd_per_mtok": "3.75",
        "max_output_tokens": 64000,
        "context_window": 200000,
        "price_version": "anthropic-2025-09",
    }
    model = catalog_from_dict(data).models[0]
    assert model.cache_read_usd_per_mtok == Decimal("0.30")
    assert model.cache_write_usd_per_mtok == Decimal("3.75")
    assert (model.max_output_tokens, model.context_window) == (64000, 200000)
    assert model.price_version == "anthropic-2025-09"


def test_quality_may_be_a_float_or_integer_but_prices_may_be_integers_only() -> None:
    data = contract()
    data["models"][0] |= {"quality": 0.8, "input_usd_per_mtok": 3}
    model = catalog_from_dict(data).models[0]
    assert decimal_str(model.quality) == "0.8"
    assert model.input_usd_per_mtok == Decimal(3)
    data["models"][0]["quality"] = 1
    assert catalog_from_dict(data).models[0].quality == Decimal(1)


def test_the_example_config_is_the_built_in_default() -> None:
    assert load_catalog(EXAMPLE) == default_catalog()
    assert load_catalog(EXAMPLE).canonical_json() == default_catalog().canonical_json()
    assert {p.kind for p in default_catalog().providers} == {"anthropic", "openai", "gemini"}


def test_canonical_json_is_sorted_compact_and_independent_of_spelling_and_order() -> None:
    data = contract()
    data["models"].append(dict(data["models"][0], slug="b-model"))
    data["router"] = {"aliases": ["x", "y"]}
    first = catalog_from_dict(data)
    respelled = copy.deepcopy(data)
    respelled["models"].reverse()
    respelled["router"]["aliases"].reverse()
    respelled["models"][0]["input_usd_per_mtok"] = "3.0000"
    second = catalog_from_dict(respelled)
    assert first.canonical_json() == second.canonical_json()
    text = first.canonical_json().decode("utf-8")
    assert " " not in text.replace("https://", "")
    parsed = json.loads(text)
    assert [m["slug"] for m in parsed["models"]] == ["b-model", "claude-sonnet-4-5"]
    assert parsed["models"][1]["input_usd_per_mtok"] == "3"
    assert parsed["format"] == "ainfera-catalog/v1"
    assert json.dumps(parsed, sort_keys=True, separators=(",", ":")) == text


def test_the_default_price_version_follows_the_prices_and_nothing_else() -> None:
    base = catalog_from_dict(contract()).models[0].price_version
    data = contract()
    data["models"][0] |= {"quality": "0.9", "input_usd_per_mtok": "3", "slug": "other"}
    assert catalog_from_dict(data).models[0].price_version == base
    data["models"][0]["output_usd_per_mtok"] = "15.01"
    assert catalog_from_dict(data).models[0].price_version != base
    data = contract()
    data["models"][0]["cache_read_usd_per_mtok"] = "0.3"
    assert catalog_from_dict(data).models[0].price_version != base


def test_a_price_change_changes_the_canonical_bytes() -> None:
    data = contract()
    before = catalog_from_dict(data).canonical_json()
    data["models"][0]["output_usd_per_mtok"] = "16.00"
    assert catalog_from_dict(data).canonical_json() != before


def test_a_trailing_slash_on_base_url_is_dropped() -> None:
    data = contract()
    data["providers"]["anthropic"]["base_url"] = "http://127.0.0.1:9000/"
    assert catalog_from_dict(data).providers[0].base_url == "http://127.0.0.1:9000"


def test_decimal_str_has_one_spelling() -> None:
    spellings = [("3.00", "3"), ("0.80", "0.8"), ("1E+1", "10"), ("-0", "0"), ("0E-9", "0")]
    spellings.append(("7.5E-8", "0.000000075"))
    for given, expected in spellings:
        assert decimal_str(Decimal(given)) == expected


def model_with(**changes: Any) -> dict[str, Any]:
    data = contract()
    data["models"][0].update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del data["models"][0][key]
    return data


REFUSALS = [
    pytest.param(model_with(provider="openai"), r"entry 1 \('claude-sonnet-4-5'\): `provider` "
                 r"'openai' is not under \[providers\]", id="unknown-provider"),
    pytest.param(model_with(quality="1.01"), "`quality` must be a decimal from 0 to 1",
                 id="quality-above-1"),
    pytest.param(model_with(quality="-0.1"), "`quality` must be", id="quality-below-0"),
    pytest.param(model_with(quality="good"), "`quality` must be", id="quality-not-number"),
    pytest.param(model_with(quality=True), "`quality` must be", id="quality-bool"),
    pytest.param(model_with(input_usd_per_mtok="three"),
                 "`input_usd_per_mtok` must be a decimal string", id="price-not-decimal"),
    pytest.param(model_with(output_usd_per_mtok=15.0),
                 '`output_usd_per_mtok` is a TOML float; money must be exact, so quote it: "15.0"',
                 id="price-float"),
    pytest.param(model_with(cache_read_usd_per_mtok=0.3), "quote it", id="cache-price-float"),
    pytest.param(model_with(input_usd_per_mtok="-1"), "must be a decimal string >= 0",
                 id="price-negative"),
    pytest.param(model_with(input_usd_per_mtok="NaN"), "must be a decimal string",
                 id="price-nan"),
    pytest.param(model_with(input_usd_per_mtok=True), "must be a decimal string",
                 id="price-bool"),
    pytest.param(model_with(input_usd_per_mtok=None), "`input_usd_per_mtok` is required",
                 id="price-missing"),
    pytest.param(model_with(upstream_model=None), "`upstream_model` is required",
                 id="upstream-missing"),
    pytest.param(model_with(slug=None), r"entry 1: `slug` is required", id="slug-missing"),
    pytest.param(model_with(slug=""), "`slug` must be a non-empty string", id="slug-empty"),
    pytest.param(model_with(slug="ainfera-auto"), "`slug` 'ainfera-auto' is a router name",
                 id="slug-is-alias"),
    pytest.param(model_with(slug="ainfera-inference"), "is a router name", id="slug-canonical"),
    pytest.param(model_with(input_usd_per_mtk="3"), r"unknown key\(s\) \['input_usd_per_mtk'\]",
                 id="model-unknown-key"),
    pytest.param(model_with(supports_tools="yes"), "`supports_tools` must be true or false",
                 id="tools-not-bool"),
    pytest.param(model_with(max_output_tokens=0), "`max_output_tokens` must be a positive",
                 id="max-output-zero"),
    pytest.param(model_with(context_window=True), "`context_window` must be a positive",
                 id="context-bool"),
    pytest.param(model_with(context_window=1e6), "`context_window` must be a positive",
                 id="context-float"),
    pytest.param(model_with(price_version=""), "`price_version` must be a non-empty string",
                 id="price-version-empty"),
    pytest.param(model_with(aa_index_source=3), "`aa_index_source` must be a non-empty string",
                 id="aa-source-int"),
]


@pytest.mark.parametrize(("data", "message"), REFUSALS)
def test_model_refusals_name_the_source_entry_and_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogError, match=message) as caught:
        catalog_from_dict(data, "conf/a.toml")
    assert str(caught.value).startswith("conf/a.toml: [[models]] entry 1")


def with_top(**changes: Any) -> dict[str, Any]:
    data = contract()
    data.update(changes)
    return data


def with_provider(**changes: Any) -> dict[str, Any]:
    data = contract()
    data["providers"]["anthropic"].update(changes)
    return data


def twice() -> dict[str, Any]:
    data = contract()
    data["models"].append(dict(data["models"][0], quality="0.5"))
    return data


TOP_REFUSALS = [
    pytest.param(twice(), r"\[\[models\]\] entry 2 \('claude-sonnet-4-5'\): `slug` "
                 "'claude-sonnet-4-5' is already used", id="duplicate-slug"),
    pytest.param(with_top(providers={}), "`providers` must be a table with at least one",
                 id="no-providers"),
    pytest.param(with_top(providers=None), "`providers` must be a table", id="providers-null"),
    pytest.param(with_top(models=[]), "`models` must be a non-empty array", id="no-models"),
    pytest.param(with_top(models={"slug": "x"}), "`models` must be a non-empty array",
                 id="models-not-array"),
    pytest.param(with_top(models=["x"]), r"\[\[models\]\] entry 1: expected a table, not a string",
                 id="model-not-table"),
    pytest.param(with_provider(kind="bedrock"), r"\[providers.anthropic\]: `kind` must be one of",
                 id="unknown-kind"),
    pytest.param(with_provider(base_url="api.anthropic.com"), "`base_url` must be an http",
                 id="base-url-scheme"),
    pytest.param(with_provider(api_key_env=""), "`api_key_env` must be a non-empty string",
                 id="api-key-env-empty"),
    pytest.param(with_provider(api_key="sk-123"), r"unknown key\(s\) \['api_key'\]",
                 id="provider-unknown-key"),
    pytest.param(with_top(providers={"anthropic": "x"}), r"\[providers.anthropic\]: expected a "
                 "table", id="provider-not-table"),
    pytest.param(with_top(router={"aliases": "ainfera-auto"}), r"\[router\]: `aliases` must be "
                 "an array", id="aliases-not-array"),
    pytest.param(with_top(router={"aliases": ["a", "a"]}), "must not repeat",
                 id="aliases-repeat"),
    pytest.param(with_top(router={"aliases": ["ainfera-inference"]}), "must not repeat a name "
                 "or the canonical", id="alias-is-canonical"),
    pytest.param(with_top(router={"default_min_quality": "1.5"}), "`default_min_quality` must "
                 "be a decimal from 0 to 1", id="floor-out-of-range"),
    pytest.param(with_top(router={"floor": "0.5"}), r"\[router\]: unknown key", id="router-key"),
    pytest.param(with_top(router=[]), r"\[router\]: expected a table", id="router-not-table"),
]


@pytest.mark.parametrize(("data", "message"), TOP_REFUSALS)
def test_config_refusals_name_the_source_and_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogError, match=message) as caught:
        catalog_from_dict(data, "conf/a.toml")
    assert str(caught.value).startswith("conf/a.toml: ")


def test_other_top_level_tables_are_left_alone() -> None:
    assert catalog_from_dict(with_top(server={"port": 8000})) == catalog_from_dict(contract())


def test_a_missing_file_is_a_catalog_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(CatalogError, match=f"{re.escape(str(path))}: cannot read the config"):
        load_catalog(path)


def test_invalid_toml_is_a_catalog_error_naming_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[providers.anthropic]\nkind = "anthropic\n', encoding="utf-8")
    with pytest.raises(CatalogError, match=rf"{re.escape(str(path))}: not valid TOML: .*line 2"):
        load_catalog(path)


def test_a_float_price_in_a_file_is_refused_with_advice_to_quote_it(tmp_path: Path) -> None:
    path = tmp_path / "float.toml"
    path.write_text(CONTRACT_TOML.replace('"3.00"', "3.00"), encoding="utf-8")
    message = f'{re.escape(str(path))}: .*`input_usd_per_mtok` is a TOML float.*quote it: "3.0"'
    with pytest.raises(CatalogError, match=message):
        load_catalog(path)


def test_capability_flags_and_the_limit_field_default_off_and_load_when_set() -> None:
    plain = catalog_from_dict(contract()).models[0]
    assert (plain.supports_structured_output, plain.supports_thinking) == (False, False)
    assert plain.max_tokens_field == "max_tokens"
    data = contract()
    data["providers"]["openai"] = {"kind": "openai", "base_url": "https://api.openai.com/v1",
                                   "api_key_env": "OPENAI_API_KEY"}
    data["models"].append({**data["models"][0], "slug": "o", "provider": "openai",
                           "supports_structured_output": True, "supports_thinking": True,
                           "max_tokens_field": "max_completion_tokens"})
    reasoner = catalog_from_dict(data).model("o")
    assert reasoner is not None
    assert reasoner.supports("structured_output")
    assert reasoner.supports("thinking")
    assert reasoner.supports("tools")
    assert reasoner.max_tokens_field == "max_completion_tokens"


def test_a_catalog_not_using_the_new_keys_keeps_its_canonical_bytes() -> None:
    """Stored decisions carry a ruleset hash over the canonical catalog: keys added later
    enter it only when set, so an unchanged config still reproduces its old hash."""
    canonical = json.loads(catalog_from_dict(contract()).canonical_json())
    assert not {"supports_structured_output", "supports_thinking", "max_tokens_field"} & set(
        canonical["models"][0])
    flagged = contract()
    flagged["models"][0]["supports_thinking"] = True
    assert json.loads(catalog_from_dict(flagged).canonical_json())["models"][0][
        "supports_thinking"] is True


@pytest.mark.parametrize(("value", "problem"), [
    ("max_output", "must be one of max_tokens, max_completion_tokens"),
    ("max_completion_tokens", "applies to openai providers only"),
])  # fmt: skip
def test_a_bad_limit_field_is_refused_naming_it(value: str, problem: str) -> None:
    data = contract()
    data["models"][0]["max_tokens_field"] = value
    with pytest.raises(CatalogError, match=re.escape(problem)):
        catalog_from_dict(data)


def test_the_built_in_catalog_marks_the_reasoning_models() -> None:
    fields = {m.slug: m.max_tokens_field for m in default_catalog().models}
    assert fields["gpt-5"] == fields["gpt-5-mini"] == "max_completion_tokens"
    assert fields["claude-sonnet-4-5"] == fields["gemini-2.5-pro"] == "max_tokens"
    assert all(m.supports_structured_output and m.supports_thinking
               for m in default_catalog().models)


def test_a_model_may_take_no_tools_over_some_protocols() -> None:
    data = contract()
    data["models"][0]["tools_unsupported_on"] = ["messages"]
    catalog = catalog_from_dict(data)
    model = catalog.models[0]
    assert model.tools_unsupported_on == ("messages",)
    assert catalog.protocol_of(model) == "messages"
    assert not model.supports("tools", "messages")
    assert model.supports("tools", "chat.completions")
    assert model.why_not("tools", "messages") == "tools_unsupported_on includes 'messages'"
    # It is part of the ruleset (it changes what may serve a call), in one spelling.
    canonical = json.loads(catalog.canonical_json())["models"][0]
    assert canonical["tools_unsupported_on"] == ["messages"]
    listed = contract()
    listed["models"][0]["tools_unsupported_on"] = ["messages", "chat.completions"]
    reordered = contract()
    reordered["models"][0]["tools_unsupported_on"] = ["chat.completions", "messages"]
    assert catalog_from_dict(listed).canonical_json() == \
        catalog_from_dict(reordered).canonical_json()
    assert "tools_unsupported_on" not in json.loads(
        catalog_from_dict(contract()).canonical_json())["models"][0]


@pytest.mark.parametrize(("value", "supports_tools", "problem"), [
    (["responses"], True, "has 'responses'; each entry must be one of messages, "
                          "chat.completions, generate_content"),
    ("messages", True, "must be an array of names"),
    (["messages", "messages"], True, "must not repeat a name"),
    (["messages"], False, "is for a model with supports_tools = true"),
])  # fmt: skip
def test_a_bad_tools_unsupported_on_is_refused_naming_it(
        value: object, supports_tools: bool, problem: str) -> None:
    data = contract()
    data["models"][0] |= {"tools_unsupported_on": value, "supports_tools": supports_tools}
    with pytest.raises(CatalogError, match=r"`tools_unsupported_on` " + re.escape(problem)):
        catalog_from_dict(data)
