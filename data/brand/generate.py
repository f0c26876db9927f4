"""Generate the synthetic Lumen Coffee tweet corpus (deterministic; rerun to rebuild the JSONL).

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


def roast(rng):
    name, notes = rng.choice(ROASTS)
    return (f"announce the new roast {name}, with notes of {notes}",
            f"{rng.choice(GREET)} Our new roast {name} is here, with notes of {notes}. Come taste it at the bar this week.")


def drink(rng):
    d = rng.choice(DRINKS)
    return (f"introduce the seasonal drink: {d}",
            f"{rng.choice(GREET)} The {d} is back on the menu. Warm, gentle and made for slow mornings.")


def hours(rng):
    day, hour = rng.choice(DAYS), rng.choice([7, 8, 9])
    return (f"tell customers the cafe opens at {hour}am on {day}",
            f"{rng.choice(GREET)} On {day} we open at {hour}am. The kettle will be warm and your table ready.")


def closure(rng):
    day = rng.choice(DAYS)
    return (f"apologise that the cafe is closed on {day} for staff training",
            f"Sorry, neighbours, we are closed this {day} while the team trains on our new roaster. We will be back soon with better cups.")


def barista(rng):
    who, years = rng.choice(PEOPLE), rng.choice([2, 3, 4, 5, 6])
    return (f"spotlight barista {who}, who has worked at Lumen for {years} years",
            f"Meet {who}, who has poured your morning cups for {years} years. Say hello at the bar and ask about the latte art.")


def workshop(rng):
    day = rng.choice(DAYS)
    return (f"invite people to a latte art workshop on {day}",
            f"{rng.choice(GREET)} Join our latte art workshop on {day} evening. Bring a friend and leave with a steady pour.")


def sustainability(rng):
    what = rng.choice(["compostable cups", "a refill discount for your own mug", "beans from a women-led cooperative",
                       "solar panels on the roastery roof"])
    return (f"share the sustainability news: {what}",
            f"{rng.choice(GREET)} Small steps matter: we now have {what}. Thank you for caring about this with us.")


def weather(rng):
    kind = rng.choice(["rainy", "snowy", "foggy", "sunny", "windy"])
    return (f"write a cosy post for a {kind} morning",
            f"A {kind} morning calls for a warm cup and a quiet corner. Our doors are open and the coffee is fresh.")


def market(rng):
    day = rng.choice(["Saturday", "Sunday"])
    return (f"tell people Lumen has a stall at the farmers market on {day}",
            f"{rng.choice(GREET)} Find our stall at the farmers market this {day}. Fresh beans, hot cups and friendly faces.")


def thanks(rng):
    n = rng.choice([5, 10, 12, 15])
    return (f"thank the community for {n} years of Lumen Coffee",
            f"{n} years ago we lit the first roaster. Thank you, neighbours, for every cup and every conversation since.")


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
    rng = random.Random(20261127)
    seen, rows = set(), []
    while len(rows) < 240:
        category, topic, text = tweet(rng)
        if text in seen or not 60 <= len(text) <= 220:
            continue
        seen.add(text)
        rows.append({"id": f"lumen-{len(rows):03d}", "category": category, "topic": topic, "tweet": text})
    here = Path(__file__).parent
    splits = {"train": rows[:180], "validation": rows[180:210], "test": rows[210:]}
    for name, part in splits.items():
        with (here / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            for r in part:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(name, len(part))


if __name__ == "__main__":
    main()
