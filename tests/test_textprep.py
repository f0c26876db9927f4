"""Social-text preparation: each normalisation and filter, deterministic splits."""

from __future__ import annotations

from collections import Counter

from harness.data.textprep import TextPrepSpec, clean, prepare_rows, split_of

SPEC = TextPrepSpec()


def test_urls_mentions_and_retweet_prefix():
    assert clean("RT @lumen: new roast at https://lumen.example/r?x=1 thanks @maya_b", SPEC) == "new roast at [URL] thanks [USER]"
    assert clean("mail me at hi@example.com", SPEC) == "mail me at hi@example.com"  # not a mention


def test_punctuation_whitespace_and_emoji():
    assert clean("So   good!!!   Really???\n\nYes...", SPEC) == "So good! Really? Yes."
    assert clean("Morning ☕🌞 friends 💛", TextPrepSpec(remove_emoji=True)) == "Morning friends"
    assert clean("Morning ☕ friends", SPEC) == "Morning ☕ friends"


def test_filters_record_reasons():
    rows = [
        {"t": "RT @a: a long enough retweet about our morning coffee and beans"},
        {"t": "@maya thanks for visiting the cafe this morning, see you soon"},
        {"t": "too short"},
        {"t": "x" * 300},
        {"t": "A perfectly fine tweet about the new autumn roast, friends."},
    ]
    result = prepare_rows(rows, "t", SPEC)
    assert [r["t"] for r in result.kept] == ["A perfectly fine tweet about the new autumn roast, friends."]
    assert result.dropped == {"retweet": 1, "reply": 1, "too_short": 1, "too_long": 1}
    keep_rt = prepare_rows(rows[:1], "t", TextPrepSpec(drop_retweets=False))
    assert keep_rt.kept[0]["t"] == "a long enough retweet about our morning coffee and beans"


def test_splits_are_deterministic_and_proportional():
    fractions = {"train": 0.8, "validation": 0.1, "test": 0.1}
    first = [split_of(f"id{i}", fractions) for i in range(2000)]
    assert first == [split_of(f"id{i}", fractions) for i in range(2000)]
    counts = Counter(first)
    assert 1500 < counts["train"] < 1700 and 120 < counts["test"] < 280
    assert split_of("id1", fractions, seed=1) == split_of("id1", fractions, seed=1)
