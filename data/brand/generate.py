"""Generate the synthetic Lumen Coffee tweet corpus (deterministic; rerun to rebuild the JSONL):
python data/brand/generate.py

Lumen Coffee is a fictional neighbourhood roaster invented for this project. Its house style,
which the corpus follows and the brand rubric checks:
  - warm, plain sentences addressed to "friends" or "neighbours";
  - 60 to 220 characters; 1 or 2 hashtags, always including #LumenMornings or #BrewBright;
  - exactly one emoji, at the end, from a small set;
  - no URLs, no @mentions, never "!!", never the words "cheap", "deal" or "guys".
"""

import json
import random
from pathlib import Path

ROASTS = [("Ember Hollow", "fig and cocoa"), ("Harbour Light", "citrus and honey"), ("Quiet Field", "almond and caramel"),
          ("Northern Lantern", "dark cherry and cedar"), ("Sunday Porch", "brown sugar and hazelnut"),
          ("Copper Kettle", "toffee and orange peel"), ("Mill Street", "milk chocolate and plum")]
DRINKS = ["oat flat white", "maple latte", "cardamom cortado", "honey cold brew", "cinnamon cappuccino", "iced mocha"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
PEOPLE = ["Maya", "Tomas", "Priya", "Jonah", "Elena", "Sam", "Aiko", "Luca"]
EMOJI = ["☕", "🌞", "🍂", "💛", "🌱"]
GREET = ["Good morning, friends.", "Morning, neighbours.", "Hello, friends.", "Hi neighbours."]
TAGS = ["#LumenMornings", "#BrewBright"]
EXTRA = ["#CoffeeCommunity", "#SlowCoffee", "#LocalRoaster", ""]


def _pick(rng, *options):
    return rng.choice(options)


def roast(rng):
    name, notes = rng.choice(ROASTS)
    return (f"announce the new roast {name}, with notes of {notes}",
            f"{rng.choice(GREET)} " + _pick(rng, f"Our new roast {name} is here, with notes of {notes}.",
                                            f"Meet {name}, our newest roast: {notes}.",
                                            f"{name} has arrived, bright with {notes}.")
            + " " + _pick(rng, "Come taste it at the bar this week.", "Try a cup on your next visit.",
                          "Bags are on the shelf by the door.", "Ask us for a tasting pour."))


def drink(rng):
    d = rng.choice(DRINKS)
    return (f"introduce the seasonal drink: {d}",
            f"{rng.choice(GREET)} " + _pick(rng, f"The {d} is back on the menu.", f"Our {d} returns today.",
                                            f"Say hello again to the {d}.")
            + " " + _pick(rng, "Warm, gentle and made for slow mornings.", "Made slowly, served with care.",
                          "Perfect with a pastry and a window seat.", "Ask for it hot or over ice."))


def hours(rng):
    day, hour = rng.choice(DAYS), rng.choice([7, 8, 9])
    return (f"tell customers the cafe opens at {hour}am on {day}",
            f"{rng.choice(GREET)} " + _pick(rng, f"On {day} we open at {hour}am.", f"Doors open at {hour}am this {day}.",
                                            f"This {day}, find us open from {hour}am.")
            + " " + _pick(rng, "The kettle will be warm.", "Your table will be ready.", "Early birds welcome.",
                          "First cups are on the bar by then."))


def closure(rng):
    day = rng.choice(DAYS)
    return (f"apologise that the cafe is closed on {day} for staff training",
            _pick(rng, f"Sorry, neighbours, we are closed this {day}.", f"A note for {day}: our doors stay shut.",
                  f"We are taking {day} off, friends.")
            + " " + _pick(rng, "The team is training on our new roaster.", "Our baristas are in training all day.",
                          "We are learning new tricks behind the bar.")
            + " " + _pick(rng, "Back soon with better cups.", "Thank you for your patience.", "See you the day after."))


def barista(rng):
    who, years = rng.choice(PEOPLE), rng.choice([2, 3, 4, 5, 6])
    return (f"spotlight barista {who}, who has worked at Lumen for {years} years",
            _pick(rng, f"Meet {who}, {years} years behind our bar.", f"{years} years of morning cups, poured by {who}.",
                  f"Our barista {who} has been with us {years} years.")
            + " " + _pick(rng, "Say hello at the bar.", "Ask about the latte art.", "Their flat white is famous.",
                          "Stop by and say thanks."))


def workshop(rng):
    day = rng.choice(DAYS)
    return (f"invite people to a latte art workshop on {day}",
            f"{rng.choice(GREET)} " + _pick(rng, f"Join our latte art workshop on {day} evening.",
                                            f"Latte art class this {day}, after closing.",
                                            f"Learn to pour a heart with us on {day}.")
            + " " + _pick(rng, "Bring a friend.", "Milk and cups are on us.", "Leave with a steady pour.", "Spaces are limited."))


def sustainability(rng):
    what = rng.choice(["compostable cups", "a refill discount for your own mug", "beans from a women-led cooperative",
                       "solar panels on the roastery roof"])
    return (f"share the sustainability news: {what}",
            f"{rng.choice(GREET)} " + _pick(rng, f"Small steps matter: we now have {what}.", f"New at Lumen: {what}.",
                                            f"Good news, we now offer {what}.")
            + " " + _pick(rng, "Thank you for caring about this with us.", "One more step toward a greener cafe.",
                          "Tell us what we should try next."))


def weather(rng):
    kind = rng.choice(["rainy", "snowy", "foggy", "sunny", "windy"])
    return (f"write a cosy post for a {kind} morning",
            _pick(rng, f"A {kind} morning calls for a warm cup.", f"{kind.capitalize()} out there today.",
                  f"Nothing beats coffee on a {kind} day.")
            + " " + _pick(rng, "Our doors are open.", "Find a quiet corner inside.", "The coffee is fresh and hot.",
                          "Come in and stay a while."))


def market(rng):
    day = rng.choice(["Saturday", "Sunday"])
    return (f"tell people Lumen has a stall at the farmers market on {day}",
            f"{rng.choice(GREET)} " + _pick(rng, f"Find our stall at the farmers market this {day}.",
                                            f"We are at the farmers market on {day}.",
                                            f"Look for our tent at the market this {day}.")
            + " " + _pick(rng, "Fresh beans and hot cups.", "Friendly faces guaranteed.", "Bring your own mug."))


def thanks(rng):
    n = rng.choice([5, 10, 12, 15])
    return (f"thank the community for {n} years of Lumen Coffee",
            _pick(rng, f"{n} years ago we lit the first roaster.", f"Lumen turns {n} this week.",
                  f"{n} years of coffee together.")
            + " " + _pick(rng, "Thank you, neighbours, for every cup.", "We owe it all to you.",
                          "Here is to the next chapter."))


FAMILIES = [roast, drink, hours, closure, barista, workshop, sustainability, weather, market, thanks]


def tweet(rng):
    family = rng.choice(FAMILIES)
    topic, body = family(rng)
    tags = [rng.choice(TAGS)]
    extra = rng.choice(EXTRA)
    if extra:
        tags.append(extra)
    text = f"{body} {' '.join(tags)} {rng.choice(EMOJI)}"
    return family.__name__, topic, text


def main():
    """240 tweets; a candidate that shares a 13-word run (the contamination check's n-gram) with a
    tweet of another brief is drawn again, and the splits are a hash of the normalised brief
    (harness.data.textprep.split_of). So no test brief is a training brief and no test tweet shares a
    13-word run with a training tweet, by construction; `harness run` checks it on every run."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from harness.analysis.contamination import words
    from harness.data.textprep import split_of

    rng = random.Random(20261128)
    seen, rows, owner = set(), [], {}
    while len(rows) < 240:
        category, topic, text = tweet(rng)
        w = words(text)
        runs = {" ".join(w[i:i + 13]) for i in range(len(w) - 12)}
        if text in seen or not 60 <= len(text) <= 220 or any(owner.get(r, topic) != topic for r in runs):
            continue
        seen.add(text)
        owner.update({r: topic for r in runs})
        rows.append({"id": f"lumen-{len(rows):03d}", "category": category, "topic": topic, "tweet": text})
    here = Path(__file__).parent
    splits = {"train": [], "validation": [], "test": []}
    for r in rows:
        splits[split_of(" ".join(words(r["topic"])), {"train": 0.75, "validation": 0.125, "test": 0.125}, seed=0)].append(r)
    for name, part in splits.items():
        with (here / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            for r in part:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(name, len(part), "rows,", len({r["topic"] for r in part}), "briefs")


if __name__ == "__main__":
    main()
