"""Build the alignment example's pairs (deterministic; rerun to rebuild):
python data/alignment/make_pairs.py

Each pair sets a brief's house tweet (data/brand/train.jsonl) against an off-brand rewrite of the
same brief made by one of four rules (a hard sell, a cold corporate notice, a missing sign-off,
an over-promise). Two files from the same pairs:
  pair_candidates.jsonl  - response_a / response_b in a seeded random order, nothing saying which
                           is the house tweet: for an AI judge to label by the constitution;
  constructed_pairs.jsonl - prompt / chosen (the house tweet) / rejected (the rewrite): labelled
                           by construction, for the reward model and DPO of models/alignment.yaml."""

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
BRAND = HERE.parent / "brand"


def hard_sell(topic: str, tweet: str) -> str:
    return f"Cheap coffee deal guys!! {topic[0].upper()}{topic[1:]}. Link in bio @LumenCoffee"


def corporate(topic: str, tweet: str) -> str:
    return f"Notice to customers: regarding '{topic}', please refer to the posted schedule. Thank you."


def no_sign_off(topic: str, tweet: str) -> str:
    words = [w for w in tweet.split() if not w.startswith("#") and not any(ord(c) > 0x2000 for c in w)]
    return " ".join(words)


def over_promise(topic: str, tweet: str) -> str:
    return tweet.replace("#", "Free refills all week for everyone, guaranteed. #", 1)


RULES = [hard_sell, corporate, no_sign_off, over_promise]


def main() -> None:
    rng = random.Random(7)
    rows = [json.loads(line) for line in (BRAND / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    picked = rng.sample(rows, 32)
    with (HERE / "pair_candidates.jsonl").open("w", encoding="utf-8") as fh, \
            (HERE / "constructed_pairs.jsonl").open("w", encoding="utf-8") as labelled:
        for i, r in enumerate(picked):
            rule = RULES[i % len(RULES)]
            off = rule(r["topic"], r["tweet"])
            a, b = (r["tweet"], off) if rng.random() < 0.5 else (off, r["tweet"])
            fh.write(json.dumps({"id": r["id"], "topic": r["topic"], "response_a": a, "response_b": b,
                                 "rule": rule.__name__}, ensure_ascii=False) + "\n")
            labelled.write(json.dumps({"id": r["id"], "topic": r["topic"], "chosen": r["tweet"], "rejected": off,
                                       "category": rule.__name__}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
