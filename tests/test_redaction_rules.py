"""The redaction rules themselves (`actorlog.actors.redaction`): what counts as a secret, and what does not."""

from __future__ import annotations

import random

from actorlog.actors.redaction import excerpt, looks_like_credential, redact, redact_text
from secrets_helpers import FRAME_SAFE, FRAMES, SHAPES, leaks, random_secret

RNG = random.Random(1515)
KEY = SHAPES["openai"](RNG)


def test_names_of_variables_are_not_mistaken_for_credentials() -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "MY_TOKEN_2", "github_token", "HF_TOKEN", "AWS_SECRET_ACCESS_KEY"):
        assert not looks_like_credential(name), name


def test_an_error_is_redacted_before_it_is_cut() -> None:
    secret = SHAPES["github"](RNG)
    text = "x" * 290 + " " + secret + " and more text after it"
    cut = excerpt(text, 300)
    assert len(cut) <= 300 and cut.startswith("x" * 290 + " ***") and not leaks(secret, {"cut": cut.encode()}, fragment=4)
    read_short = text[:310]  # a read of 310 bytes holds the secret's first 19 characters only
    assert not leaks(secret, {"cut": excerpt(read_short, 300, complete=False).encode()}, fragment=4)


def test_redaction_is_idempotent_and_keeps_ordinary_text() -> None:
    for text in ("ValueError: max_tokens must be at least 1, got 0", 'File "/srv/app/plugin.py", line 12, in run',
                 "KeyError: 'password'", "user@example.com wrote", "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                 "request 3fa2c1d4e5f60718293a4b5c6d7e8f90 failed"):
        assert redact_text(text) == text
    config = {"headers": {"Authorization": "Bearer x"}, "url": f"https://u:{KEY}@h/x"}
    assert redact(redact(config)) == redact(config)


def test_every_shape_and_frame_is_masked_whole() -> None:
    for name, shape in SHAPES.items():
        secret = shape(RNG)
        assert redact_text(f"failed: {secret} (retry)") == "failed: *** (retry)", name
    for name, frame in FRAMES.items():
        secret = random_secret(RNG, FRAME_SAFE)
        assert secret not in redact_text(frame(secret)), name


def test_long_texts_are_redacted_in_linear_time() -> None:
    """Adversarial texts (a megabyte of one character class) are scanned without backtracking blow-ups."""
    import time  # noqa: PLC0415

    for text in ("a_" * 500_000, "x=" * 500_000, "A" * 1_000_000, "https://" * 100_000, "key=" * 200_000,
                 "keykey" * 150_000, "://" + "a" * 1_000_000, "Authorization: " * 60_000, "Bearer " * 100_000):
        started = time.monotonic()
        redact_text(text)
        assert time.monotonic() - started < 10, text[:10]  # a safety net: quadratic would take hours



def test_text_whose_lower_case_is_longer_keeps_its_positions() -> None:
    assert redact_text("İstanbul: password=hunter22 ok") == "İstanbul: password=*** ok"
    assert redact_text("straße token: abc123xyz done") == "straße token: *** done"
