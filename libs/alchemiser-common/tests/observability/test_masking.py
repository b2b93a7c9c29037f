from __future__ import annotations

from pydantic import SecretBytes, SecretStr

from alchemiser_common.observability import MASK, mask_secrets


def test_mask_when_nested_secret_keys_and_types_then_masked_without_mutating_input() -> None:
    value = {
        "kafka": {"sasl_pass": "p1", "bootstrap": "b:9092"},
        "tokens": ["a", "b"],
        "items": ({"client_secret": "s"}, SecretBytes(b"raw")),
        "user": "alice",
    }

    masked = mask_secrets(value)

    assert masked == {
        "kafka": {"sasl_pass": MASK, "bootstrap": "b:9092"},
        "tokens": MASK,
        "items": ({"client_secret": MASK}, MASK),
        "user": "alice",
    }
    assert value["kafka"] == {"sasl_pass": "p1", "bootstrap": "b:9092"}


def test_mask_when_key_only_contains_pass_inside_word_then_kept() -> None:
    value = {"passive": 1, "bypass": 2, "compass_heading": 3, "db-pass": "x", "API-Key": "k"}

    assert mask_secrets(value) == {
        "passive": 1,
        "bypass": 2,
        "compass_heading": 3,
        "db-pass": MASK,
        "API-Key": MASK,
    }


def test_mask_when_secret_key_holds_none_then_none_kept() -> None:
    assert mask_secrets({"password": None, "s": SecretStr("x")}) == {"password": None, "s": MASK}
