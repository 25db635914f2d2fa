"""The memory bench's texts: a labelled set of facts and the questions that should find them,
and a seeded generator of varied memories to fill a backend with (``bench/memory.py``).

Each ``LabelledFact`` pairs a fact as a user would state it with a question as a user would later
ask it, never a copy of the fact. ``kind`` says what makes the pair hard for a search:

- ``paraphrase``: the question reuses a word or two of the fact in other wording;
- ``wordform``: the shared words change form (run/running, city/cities, child/children);
- ``rare``: the fact and the question share a rare word (a name, a brand, a term);
- ``hard``: no content word in common; only meaning links them.

The generator's first names (``NAMES``) are disjoint from every name in the facts, so a
generated memory is never a second right answer to a labelled question.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

__all__ = ["FACTS", "NAMES", "UNRELATED", "FactKind", "LabelledFact", "generated_texts", "query_texts"]

FactKind = Literal["paraphrase", "wordform", "rare", "hard"]


@dataclass(frozen=True, slots=True)
class LabelledFact:
    fact: str
    query: str
    kind: FactKind


def _facts(kind: FactKind, pairs: tuple[tuple[str, str], ...]) -> tuple[LabelledFact, ...]:
    return tuple(LabelledFact(fact, query, kind) for fact, query in pairs)


_PARAPHRASE = (
    ("My sister Ana lives in Lisbon", "where does Ana live?"),
    ("My dentist is Dr. Okafor on Elm Street", "who's my dentist again?"),
    ("I take my coffee black, no sugar", "how do I like my coffee?"),
    ("The wifi password is written on the back of the fridge calendar", "where did we put the wifi password"),
    ("Tom's birthday is on the 14th of March", "when is Tom's birthday"),
    ("The car's MOT is due in September", "when does the car need the MOT"),
    ("My manager is called Priya Raman", "what's my manager's name"),
    ("Team standup is at 9:30 every weekday", "what time is standup?"),
    ("Laura is allergic to cats", "what is Laura allergic to"),
    ("I keep the spare house key under the blue flowerpot", "where's the spare key hidden?"),
    ("My favourite band is Radiohead", "which band do I like best"),
    ("The landlord's phone number is 0161 496 0000", "what number do I ring for the landlord"),
    ("Mum wants the garden fence painted green", "what colour does mum want for the fence"),
    ("The code for my bike lock is 4471", "bike lock combination?"),
    ("Jonas works as a nurse at St Mary's hospital", "which hospital does Jonas work at"),
    ("Our anniversary is on the 2nd of August", "when's our anniversary"),
    ("I'm trying to drink less alcohol this year", "what was my plan about alcohol?"),
    ("My gym membership renews on the first of every month", "when does the gym membership renew"),
    ("Dad's blood type is O negative", "what blood type does dad have"),
    ("The boiler engineer comes on Thursday morning", "when is the boiler engineer coming?"),
    ("My shoe size is 43 in European sizes", "what size shoes do I wear"),
    ("Grandma Rosa's lasagne recipe uses nutmeg in the béchamel", "what's the secret in Rosa's lasagne"),
    ("I parked the car on level 3 of the airport car park", "which level did I leave the car on"),
    ("Helen prefers to be contacted by email rather than phone", "how should I get in touch with Helen"),
    ("The library books are due back on Friday", "when do the library books go back"),
    ("My national insurance letter is in the grey folder", "where's the national insurance letter"),
    ("The kids' school finishes at 3:15 on Wednesdays", "what time does school end on Wednesday"),
    ("I owe Marco 40 euros for the concert tickets", "how much money do I owe Marco"),
    ("My flight to Oslo leaves at 6:40 from gate 12", "what gate is the Oslo flight"),
    ("The cleaner comes every other Monday", "how often does the cleaner come"),
    ("I want to repaint the bedroom a pale yellow", "what colour for the bedroom"),
    ("Our internet provider is Vodafone and the contract ends in May", "when does the internet contract end"),
    ("Sam hates mushrooms", "what food does Sam dislike"),
    ("My bank's fraud line is open 24 hours", "can I call the bank fraud line at night"),
    ("The bins go out on Tuesday night", "which night are the bins collected"),
    ("Esther's wedding is in Porto next June", "where is Esther getting married"),
    ("The plumber recommended replacing the kitchen tap", "what did the plumber say about the tap"),
    ("My doctor said to take vitamin D in winter", "which vitamin should I take in winter"),
    ("I have a meeting with the accountant on the 3rd", "when am I seeing the accountant"),
    ("Lena's dog is a border collie called Pepper", "what breed is Lena's dog"),
    ("The office moved to the fourth floor", "which floor is the office on now"),
    ("Parking at the station costs 6 pounds a day", "how much is station parking"),
    ("I'm saving for a trip to Japan next spring", "what am I saving money for"),
    ("The printer toner is an HP 305A", "which toner does the printer use"),
    ("Noah is lactose intolerant", "can Noah have milk?"),
    ("My tax return deadline is the 31st of January", "when is the tax return due"),
    ("The neighbour at number 12 waters our plants when we are away", "who waters the plants when we travel"),
    ("Ingrid's phone number changed last week to 07700 900123", "what's Ingrid's new number"),
    ("I left my umbrella at the Italian restaurant on Friday", "where did I leave my umbrella"),
    ("The password manager master hint is my first cat", "what's the hint for the password manager"),
    ("Our holiday cottage booking reference is HX-4471", "booking reference for the cottage?"),
    ("Felix starts his new job on the 10th", "when does Felix start the new job"),
    ("My blood pressure was 128 over 82 at the last check", "what was my last blood pressure reading"),
    ("The washing machine warranty runs until 2026", "is the washing machine still under warranty"),
    ("Kim recommended the podcast Hardcore History", "which podcast did Kim recommend"),
    ("I'm not a fan of horror films", "do I like horror movies?"),
    ("Uncle Viktor lives in a flat above the bakery", "where does uncle Viktor live"),
    ("The sofa delivery is between 8 and 12 on Saturday", "what time is the sofa being delivered"),
    ("The quarterly report goes to Gemma for review", "who reviews the quarterly report"),
    ("I renewed the car insurance with Admiral", "who is the car insurance with"),
)

_WORDFORM = (
    ("I go running along the canal most mornings", "where do I run?"),
    ("We visited three cities in Italy last summer", "which city did we see in Italy"),
    ("My children both play the violin", "what instrument does my child play"),
    ("Irene teaches swimming lessons at the leisure centre", "who teaches swim classes"),
    ("I cooked paella for the neighbours on Sunday", "what did I cook for the neighbours"),
    ("The berries in the garden ripen in July", "when is the berry season in the garden"),
    ("Bruno is studying architecture in Delft", "what does Bruno study"),
    ("I've been baking bread every weekend", "do I bake?"),
    ("My knees hurt after long hikes", "which knee hurts when I hike"),
    ("Oscar fixed the leaking roof in October", "who fixes leaks in the roof"),
    ("The twins are learning to ride bikes", "are the twins riding a bike yet"),
    ("Mia's parties always run late", "does Mia party late?"),
    ("I stopped eating red meat in 2021", "when did I stop eating meat"),
    ("Our tomatoes were eaten by slugs", "what ate the tomato plants"),
    ("Nadia travels to Nairobi for work twice a year", "how often is Nadia travelling to Nairobi"),
    ("I'm reading the Dune novels in order", "which novel am I reading"),
    ("The heating switches on at six in the morning", "when does the heating switch on"),
    ("Hugo gave up smoking last March", "when did Hugo give up cigarettes and smoke"),
    ("I paid the electricity bills up to April", "electricity bill paid?"),
    ("Our wolves at the sanctuary were fed by volunteers", "who feeds the wolf at the sanctuary"),
    ("The geese from the park walk through our garden", "is there a goose in the garden"),
    ("My brother's wives' families all live in Cork", "where do my brother's wife's family live"),
    ("Ruth is organising the charity quiz", "who organises the charity quiz"),
    ("I was promoted to senior engineer in January", "when was my promotion"),
    ("The dishes from grandma are stored in the loft", "where is grandma's dish set"),
    ("Pablo's knives need sharpening", "which knife needs to be sharpened"),
    ("We're planting apple trees along the fence", "what are we going to plant"),
    ("Yusuf loves photographing lighthouses", "who likes lighthouse photography"),
    ("The mice got into the shed again", "any mouse problems in the shed?"),
    ("I'm knitting a scarf for Ida", "who is the knitted scarf for"),
    ("The batteries for the smoke alarm are in the drawer", "where's the battery for the smoke alarm"),
    ("My boss approved the conference travel", "did the boss approve the travelling for the conference"),
    ("We moved house in 2019", "when did we move"),
    ("Clara walks her dogs at the beach every evening", "where does Clara walk the dog"),
    ("The leaves need clearing from the gutters", "what's clogging the gutter"),
    ("I started volunteering at the food bank", "where do I volunteer"),
    ("Theo is allergic to wasp stings", "what happens if a wasp stings Theo"),
    ("Emma's flights were cancelled because of the strike", "why was Emma's flight cancelled"),
    ("The hedges were trimmed by the gardener in May", "when did the gardener trim the hedge"),
    ("The kids are terrified of spiders", "which of the kids is scared of spiders"),
    ("I'm swimming 40 lengths on Saturdays", "how many lengths do I swim"),
    ("Our parcels are delivered to the post office counter", "where is a parcel delivered"),
    ("Milo spoke at two conferences this year", "how many conferences did Milo speak at"),
    ("The shelves in the study were built by Dad", "who built the study shelf"),
    ("Rita has been painting watercolours since she retired", "what does Rita paint"),
    ("I ordered new glasses from the optician", "did I order glasses"),
    ("The tyres were replaced at 40,000 miles", "when was the tyre changed"),
    ("Anton is writing a thesis on glaciers", "what is Anton's thesis about"),
    ("The sheep from the farm escaped twice", "did the farm's sheep escape"),
    ("My feet get cold in bed", "what gets cold at night"),
    ("I'm dancing salsa on Thursday nights", "what dance do I do"),
    ("Lucia's businesses are both in Valencia", "where is Lucia's business"),
    ("The keys to the garage hang by the back door", "where does the garage key hang"),
    ("Our journeys to Wales always take five hours", "how long is the journey to Wales"),
    ("Greta studied medicine in Vienna", "where did Greta study"),
)

_RARE = (
    ("My Kubernetes cluster runs on three Hetzner boxes", "where is the Kubernetes cluster hosted"),
    ("The sourdough starter is called Clint Yeastwood", "what's the sourdough starter's name"),
    ("I'm reading Piranesi by Susanna Clarke", "who wrote Piranesi"),
    ("We honeymooned in Zanzibar", "when did we go to Zanzibar"),
    ("My Raspberry Pi runs Pi-hole for the house", "what does the raspberry pi do"),
    ("The cat's medicine is Metacam, half a dose daily", "how much Metacam does the cat get"),
    ("Ottilie plays the theremin in a band", "who plays the theremin"),
    ("I use Obsidian for all my notes", "what do I use Obsidian for"),
    ("Our car is a 2017 Skoda Octavia estate", "what year is the Skoda"),
    ("The boiler model is a Worcester Greenstar 30i", "which Worcester boiler do we have"),
    ("I did the Camino de Santiago in 2018", "when did I walk the Camino"),
    ("My favourite whisky is Lagavulin 16", "which Lagavulin do I like"),
    ("Dmitri's company makes LiDAR sensors", "what does Dmitri's company build"),
    ("I have a Mahjong night every second Friday", "how often is Mahjong"),
    ("The house was built by the Peabody trust in 1932", "what did Peabody build"),
    ("I'm allergic to penicillin", "is penicillin safe for me?"),
    ("Our router is a Fritzbox 7590", "what Fritzbox model is the router"),
    ("Ximena speaks fluent Quechua", "who speaks Quechua"),
    ("The tortoise Archimedes is 42 years old", "how old is Archimedes"),
    ("My running app is Strava and my username is fellrunner77", "what's my Strava username"),
    ("The fern in the bathroom is a Boston fern", "what kind of fern is in the bathroom"),
    ("I'm learning Rust with the Rustlings exercises", "what am I using to learn Rust"),
    ("My Zotero library holds my thesis references", "where are my thesis references kept"),
    ("We watched Koyaanisqatsi at the film club", "where did we see Koyaanisqatsi"),
    ("Cosima's cello was made in Cremona", "where is Cosima's cello from"),
    ("The allotment plot number is 17B", "which allotment plot is ours"),
    ("I take levothyroxine every morning", "when do I take the levothyroxine"),
    ("My Lego Millennium Falcon is missing a piece", "what's wrong with the Millennium Falcon"),
    ("Our sofa came from Loaf and has a five year guarantee", "how long is the Loaf guarantee"),
    ("Ignatius collects vintage Leica cameras", "who collects Leica cameras"),
    ("The project codename is Bluebottle", "what is project Bluebottle"),
    ("The VPN uses WireGuard on port 51820", "which port does WireGuard use"),
    ("Horatio's boat is moored at Brixham", "where is Horatio's boat"),
    ("I play Wingspan with the neighbours", "who do I play Wingspan with"),
    ("The sandwich shop near work does a great bánh mì", "where can I get bánh mì"),
    ("My Duolingo streak is 400 days", "how long is my Duolingo streak"),
    ("Our gecko eats crickets twice a week", "how often does the gecko eat"),
    ("I bought the Aeropress from the roastery in Leeds", "where did the Aeropress come from"),
    ("Wilhelmina is the godmother of our son", "who is Wilhelmina to us"),
    ("The fuse box is behind the coats in the hallway", "where is the fuse box"),
    ("I'm on the waiting list for a Brompton bike", "which bike am I waiting for"),
    ("The kombucha SCOBY lives in the pantry", "where is the SCOBY"),
    ("My Kindle is registered to my old email address", "which email is the Kindle on"),
    ("The Ventolin inhaler is in the car's glovebox", "where's the Ventolin"),
    ("Ferdinand repairs harpsichords", "what does Ferdinand fix"),
    ("We drink Yorkshire Tea in this house", "which tea do we drink"),
    ("My Nintendo Switch account is linked to Leo's", "whose account is linked to my Switch"),
    ("The Airbnb in Tbilisi had a balcony", "what was the Tbilisi place like"),
    ("I keep cash in the Moleskine on the desk", "what did I tuck into the Moleskine"),
    ("The quokka photo from Rottnest is my phone wallpaper", "what's my phone wallpaper"),
)

_HARD = (
    ("I'm learning Japanese on Tuesday evenings", "which language am I studying?"),
    ("My daughter was born in 2015", "how old is my kid?"),
    ("I'm allergic to peanuts", "what should I avoid eating?"),
    ("Ben is a vegan", "can I serve Ben a steak?"),
    ("My car is electric", "do I need to stop for petrol?"),
    ("I get seasick easily", "should I book the ferry crossing or fly?"),
    ("We're expecting a baby in November", "any family news coming up this autumn?"),
    ("My partner is Portuguese", "what nationality is my other half?"),
    ("I can't stand the cold", "should I holiday somewhere warm or in the snow?"),
    ("Kasia is afraid of flying", "would Kasia take the plane?"),
    ("The dog needs walking twice a day", "how often does the pup go out?"),
    ("I work from home on Mondays and Fridays", "which days am I not in the office?"),
    ("My mother-in-law visits every Christmas", "who comes to stay over the holidays?"),
    ("I sold my old piano last spring", "do I still own a keyboard instrument?"),
    ("Amir is colour blind", "why does Amir mix up red and green?"),
    ("I'm a night owl", "am I a morning person?"),
    ("The baby sleeps from 7pm to 6am", "when does the little one go down?"),
    ("I do not eat pork", "any meat restrictions for me?"),
    ("My grandfather fought at Monte Cassino", "was grandpa in the war?"),
    ("We rent our flat", "do we own our home?"),
    ("I quit my job at the bank in 2022", "where did I use to work?"),
    ("Jakob is hard of hearing", "should I text Jakob instead of ringing him?"),
    ("My wedding ring is white gold", "what metal is my band made of?"),
    ("I'm training for a marathon in April", "what race am I preparing for?"),
    ("Petra just had twins", "has Petra had her babies?"),
    ("My laptop is a MacBook", "do I use Windows?"),
    ("The heating oil tank was filled in October", "when did we last top up the fuel for the boiler?"),
    ("I'm on a low salt diet", "is sodium a problem for me?"),
    ("My son is in year four", "what grade is the boy in?"),
    ("Carmen divorced last year", "is Carmen still married?"),
    ("I hate crowds", "should I go to the festival on Saturday?"),
    ("The fridge makes a buzzing noise at night", "why is the kitchen humming in the dark?"),
    ("I broke my wrist skiing in 2020", "have I ever had a fracture?"),
    ("My commute is 50 minutes by train", "how long does it take me to get to work?"),
    ("We keep chickens in the back garden", "where do our eggs come from?"),
    ("Mateo doesn't drink", "should I bring Mateo a bottle of wine?"),
    ("I was born in Glasgow", "where am I originally from?"),
    ("My sister is a paramedic", "does anyone in my family work in emergency care?"),
    ("Our house faces south", "which rooms get the sun in the afternoon?"),
    ("I wear contact lenses", "do I have perfect eyesight?"),
    ("I gave up coffee for green tea", "what's my morning caffeine?"),
    ("The plant by the window is a cactus", "how often should I water the succulent?"),
    ("Nils is left handed", "which hand does Nils write with?"),
    ("I'm scared of heights", "should we do the glass bridge walk?"),
    ("My flat is on the ground floor", "do I have to take the stairs to get home?"),
    ("We adopted a rescue greyhound", "where did our pet come from?"),
    ("The nearest hospital is 40 minutes away", "how far is the A&E?"),
    ("I've got a gluten intolerance", "can I have a slice of normal cake?"),
    ("Sofia moved back to Chile", "is Sofia still in the country?"),
    ("I only fly economy", "should I book business class?"),
    ("My pension is with Aviva", "who manages my retirement savings?"),
)

FACTS: tuple[LabelledFact, ...] = (
    _facts("paraphrase", _PARAPHRASE) + _facts("wordform", _WORDFORM) + _facts("rare", _RARE) + _facts("hard", _HARD)
)

UNRELATED: tuple[str, ...] = (
    "thanks, that's all for now",
    "hi!",
    "write a haiku about autumn leaves",
    "what is 17 times 23?",
    "translate 'good morning' into German",
    "can you explain how photosynthesis works?",
    "give me three ideas for a blog post title",
    "how do I reverse a list in Python?",
    "what's the capital of Australia?",
    "summarise the plot of Hamlet in two sentences",
    "is it better to use tabs or spaces?",
    "tell me a joke about computers",
    "convert 100 fahrenheit to celsius",
    "what does HTTP 418 mean?",
    "ok, sounds good",
    "how many planets are in the solar system?",
    "suggest a name for a grey cat",
    "explain recursion to a five year old",
    "what's a good stretching routine for the back?",
    "proofread this: their going to the store tomorow",
    "how long should I boil an egg?",
    "what is the difference between a virus and a bacterium?",
    "draft a polite email declining a meeting",
    "why is the sky blue?",
    "list five prime numbers",
    "good night",
    "what time zone is Tokyo in?",
    "recommend a podcast about history",
    "how do vaccines work?",
    "cool, thank you!",
)
"""Messages no stored memory is about (chit-chat, general questions): how often automatic recall
adds a note where it has nothing to say."""

# Disjoint from every name in FACTS (checked by tests/bench/test_memory_bench.py).
NAMES = (
    "Aiden", "Beatriz", "Caspar", "Dalia", "Edgar", "Fatima", "Gideon", "Harriet", "Imran", "Joanna",
    "Kwame", "Liesel", "Magnus", "Naomi", "Orla", "Percy", "Quentin", "Rosalind", "Stellan", "Tamsin",
    "Ulrich", "Vera", "Wendell", "Yara", "Zeno", "Agnes", "Bashir", "Cormac", "Delphine", "Evander",
)  # fmt: skip
_RELATIONS = ("sister", "brother", "cousin", "neighbour", "colleague", "friend", "aunt", "uncle", "landlady", "coach")
_CITIES = (
    "Berlin", "Madrid", "Dublin", "Krakow", "Seville", "Bergen", "Lyon", "Ghent", "Turin", "Bristol",
    "Tallinn", "Bilbao", "Leipzig", "Graz", "Aarhus", "Nantes", "Split", "Bologna", "York", "Galway",
)  # fmt: skip
_FOODS = ("risotto", "curry", "pancakes", "sushi", "goulash", "tacos", "ramen", "falafel", "moussaka", "dumplings")
_HOBBIES = ("climbing", "pottery", "chess", "rowing", "birdwatching", "sailing", "gardening", "fencing", "cycling")
_THINGS = ("passport", "charger", "receipt", "notebook", "ticket", "scarf", "toolbox", "headphones", "stapler")
_PLACES = ("drawer", "attic", "shed", "glovebox", "cupboard", "basement", "backpack", "bookshelf", "windowsill")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_JOBS = ("teacher", "pharmacist", "electrician", "translator", "architect", "baker", "pilot", "accountant")
_COLOURS = ("red", "navy", "olive", "teal", "mustard", "grey", "lilac", "white", "black")

_TEMPLATES = (
    "My {rel} {name} lives in {city}",
    "{name} works as a {job} in {city}",
    "{name} loves {food} and hates {food2}",
    "I left the {thing} in the {place}",
    "{name}'s birthday party is on {day}",
    "We go {hobby} with {name} every {day}",
    "The {colour} {thing} belongs to my {rel}",
    "{name} recommended a {food} place in {city}",
    "My {rel} is taking up {hobby} this year",
    "I promised {name} to call back on {day}",
    "The {thing} for {hobby} is kept in the {place}",
    "{name} is moving from {city} to {city2} in spring",
    "Dinner with {name} on {day}: {food}",
    "{name} the {job} fixed the {colour} {thing}",
    "Remember to buy a {colour} {thing} before {day}",
    "My {rel} {name} cannot eat {food}",
    "The {hobby} club meets in {city} on {day}s",
    "{name} lent me a {thing}, return it by {day}",
)
_QUERIES = (
    "where does {name} live",
    "what does {name} do for work",
    "what food does {name} like",
    "where is my {thing}",
    "when is {name}'s party",
    "who do I go {hobby} with",
    "whose is the {colour} {thing}",
    "any {food} recommendations in {city}",
)


def _slots(rng: random.Random) -> dict[str, str]:
    food, food2 = rng.sample(_FOODS, 2)
    city, city2 = rng.sample(_CITIES, 2)
    return {
        "name": rng.choice(NAMES),
        "rel": rng.choice(_RELATIONS),
        "city": city,
        "city2": city2,
        "food": food,
        "food2": food2,
        "hobby": rng.choice(_HOBBIES),
        "thing": rng.choice(_THINGS),
        "place": rng.choice(_PLACES),
        "day": rng.choice(_DAYS),
        "job": rng.choice(_JOBS),
        "colour": rng.choice(_COLOURS),
    }


def generated_texts(rng: random.Random) -> Iterator[str]:
    """Endless varied memories (templates × word lists), reproducible from ``rng``'s seed."""
    while True:
        yield rng.choice(_TEMPLATES).format(**_slots(rng))


def query_texts(rng: random.Random) -> Iterator[str]:
    """Endless questions a user might ask about memories like ``generated_texts``'."""
    while True:
        yield rng.choice(_QUERIES).format(**_slots(rng))
