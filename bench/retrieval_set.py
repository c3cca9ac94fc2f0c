"""A small labelled retrieval set of long documents whose answer is not at their start.

Each document is a bulletin of 500-1,000 tokens: an opening of general organisational
news (drawn from a shared pool of sentences, shuffled per document, so openings are alike
and say nothing about the answer), then one passage with a specific finding, then more
general news. The passage starts after the first 256 tokens, where a model that reads
only its first window never sees it. Each query asks about one passage in other words
than the passage uses; the relevant document is the one holding that passage.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FINDINGS: tuple[tuple[str, str], ...] = (
    (
        "The agronomy group bred a rice variety that survives six weeks without rain. "
        "Field plots in the dry season yielded nearly as much grain as irrigated fields, "
        "and farmers in two provinces will receive seed next spring.",
        "rice that keeps growing through a long drought",
    ),
    (
        "Engineers rebuilt the harbour crane so that it runs on stored braking energy. "
        "Each time a container is lowered, the motor charges a bank of batteries, which "
        "then lifts the next load; diesel use at the port fell by a third.",
        "port crane recovering energy when it lowers containers",
    ),
    (
        "Our museum restorers found a second painting hidden beneath a seventeenth-century "
        "portrait. X-ray images show a landscape with a windmill, painted upside down, "
        "probably because the artist reused an unsold canvas.",
        "old picture discovered under another painting with x-rays",
    ),
    (
        "The hospital pharmacy now uses a robot arm to prepare chemotherapy doses. It weighs "
        "every syringe, checks the label against the prescription and has cut preparation "
        "errors to zero in its first eight months.",
        "automated machine that fills cancer drug syringes",
    ),
    (
        "A volunteer survey counted forty-one species of wild bees on the city's green "
        "roofs, including two that had not been recorded in the region for fifty years. "
        "Roofs planted with native thyme attracted the most visitors.",
        "pollinating insects found living on rooftop gardens",
    ),
    (
        "The bakery cooperative switched its ovens to heat from the neighbouring data "
        "centre. Waste heat from the servers warms water to ninety degrees, and the ovens "
        "top it up electrically, halving the gas bill.",
        "bread ovens heated with warmth from computer servers",
    ),
    (
        "Students in the robotics club built a submarine drone that maps the lake bottom "
        "with sonar. Its first dives located a sunken rowing boat and a layer of mud that "
        "explains why the north shore floods.",
        "underwater robot charting the floor of a lake",
    ),
    (
        "The library lent out four hundred telescopes this year. Each kit comes with a star "
        "chart and a red torch, and the waiting list is longest in winter, when darkness "
        "falls before children go to bed.",
        "borrowing stargazing equipment from the public library",
    ),
    (
        "Our linguists recorded the last fluent speakers of a mountain dialect that has "
        "words for nine kinds of snow. The recordings, with transcriptions, are now in an "
        "open archive so that schools can teach the dialect again.",
        "documenting a dying language spoken in the mountains",
    ),
    (
        "The railway replaced wooden sleepers on the coastal line with sleepers made from "
        "recycled plastic bottles. They do not rot in salty air and are expected to last "
        "fifty years instead of fifteen.",
        "train track ties produced from recycled plastic",
    ),
    (
        "A trial in three primary schools moved the start of lessons to nine o'clock. "
        "Attendance rose, and teachers reported that pupils were more attentive in the "
        "first period than before.",
        "starting the school day later in the morning",
    ),
    (
        "The water utility traced a leak in the main pipe using acoustic sensors that "
        "listen for hissing at night. The leak had been losing two million litres a day "
        "for at least a year.",
        "listening devices that detect escaping water in pipes",
    ),
    (
        "Our vineyard tested covering the vines with white netting during the heatwave. "
        "Grapes under the nets were two degrees cooler and kept more acidity, which the "
        "winemaker says gave a fresher vintage.",
        "shading grapevines against extreme summer heat",
    ),
    (
        "The fire brigade began flying thermal cameras on drones over forest fires at "
        "night. The images show where embers are still glowing under the ash, so crews "
        "are sent only where the fire could flare up again.",
        "infrared images from the air to find smouldering hotspots",
    ),
    (
        "The zoo's veterinary team fitted an elderly tortoise with a wheeled support "
        "after it lost the use of a front leg. It now walks the enclosure again and has "
        "gained weight.",
        "giving a disabled reptile wheels so it can move",
    ),
    (
        "The chess federation introduced a rule that players must finish their games "
        "within four hours. Tournaments now end on schedule, and the number of games "
        "decided on time dropped after the first season.",
        "time limit for board game matches at competitions",
    ),
    (
        "Marine biologists transplanted fragments of heat-tolerant coral onto a bleached "
        "reef. After two years, most fragments had grown and fish returned to the "
        "restored patches in greater numbers.",
        "replanting corals to bring a damaged reef back",
    ),
    (
        "The postal service tested electric cargo bikes for parcel delivery in the old "
        "town. Couriers delivered more parcels per hour than vans, which spend a long time "
        "looking for parking in narrow streets.",
        "delivering packages on battery-powered bicycles",
    ),
    (
        "The cheese makers aged a batch of cheese in a disused railway tunnel. The "
        "constant cool temperature and high humidity produced a rind the judges praised, "
        "and the tunnel will now be rented permanently.",
        "maturing dairy products inside an abandoned tunnel",
    ),
    (
        "A new rule requires landlords to fit carbon monoxide alarms in every rented home "
        "with a gas boiler. Inspectors will check the alarms when they visit for the "
        "annual safety certificate.",
        "law about gas poisoning detectors in rental housing",
    ),
    (
        "Astronomers at the observatory measured the rotation of a small asteroid that "
        "spins once every ninety seconds, faster than any body of its size seen before. "
        "It must be a single solid rock to hold together.",
        "extremely fast spinning space rock",
    ),
    (
        "The textile workshop dyes wool with colours extracted from onion skins, walnut "
        "husks and madder root. The natural dyes fade less than expected after a year in "
        "direct sunlight.",
        "colouring yarn with plant-based pigments",
    ),
    (
        "Our geologists warned that the cliff path has moved by eleven centimetres since "
        "the winter storms. Satellite radar confirmed the movement, and the path will stay "
        "closed until it is stabilised.",
        "coastal footpath closed because the land is sliding",
    ),
    (
        "The orchestra performed a concert for people with dementia and their carers. The "
        "programme used songs from the audience's youth, and many who rarely speak sang "
        "along from memory.",
        "music performance for elderly people with memory loss",
    ),
    (
        "Beekeepers in the valley reported that hives placed next to sunflower fields "
        "produced twice as much honey. The honey crystallises quickly, so it is sold "
        "creamed rather than liquid.",
        "honey harvest near fields of sunflowers",
    ),
    (
        "The airport installed a runway light system that adjusts its brightness to fog "
        "density. Pilots say landings in poor visibility are easier, and energy use fell "
        "because the lights dim on clear nights.",
        "landing strip lamps that change intensity with the weather",
    ),
    (
        "A citizen science project asked residents to photograph the first swallows of "
        "spring. Over ten years the birds have arrived nine days earlier on average, which "
        "the ornithologists link to warmer Marches.",
        "migratory birds returning earlier each year",
    ),
    (
        "The brewery began turning its spent grain into flour for crackers. The grain was "
        "previously sold as cattle feed; the crackers now bring in more money than the beer "
        "sold at the taproom.",
        "leftover barley from beer making used for snacks",
    ),
    (
        "Our sports scientists fitted rowers with sensors on the oar handles. The data "
        "showed that the strongest crews apply force earlier in the stroke, and training "
        "now focuses on the catch.",
        "measuring the power of each oar stroke with sensors",
    ),
    (
        "The city council painted a crossing in front of the school with a pattern that "
        "looks three-dimensional to drivers. Average speeds on the street fell by eight "
        "kilometres per hour in the first month.",
        "optical illusion road markings that slow down cars",
    ),
)

OPENING = (
    "The board met twice this quarter and approved the budget for the coming year.",
    "Staff are reminded that the annual survey closes at the end of the month.",
    "The new intranet pages went live, and feedback on the layout is welcome.",
    "Several teams have moved offices; the updated floor plans are on the notice board.",
    "The finance department thanks everyone who submitted expense claims on time.",
    "Our partnership agreements were reviewed and most will be renewed unchanged.",
    "Training sessions on the revised procurement rules run every Tuesday morning.",
    "The canteen will extend its opening hours during the busy season.",
    "We welcome the colleagues who joined in the last three months.",
    "The committee on internal communication published its recommendations.",
    "Please remember to book meeting rooms through the shared calendar.",
    "The car park will be resurfaced over two weekends next month.",
    "Volunteers are needed for the open day, when visitors tour the premises.",
    "The annual report will be printed on recycled paper again this year.",
    "A reminder: laptops must be updated before the end of the week.",
    "The social club organised a summer outing, and photographs are online.",
    "Our newsletter now also appears in a shorter version for mobile phones.",
    "The works council elections take place in the autumn; candidates may register now.",
    "The reception desk has new opening hours on Fridays.",
    "Health and safety inspections found no serious issues this quarter.",
    "The archive is being digitised, starting with records from the last decade.",
    "Suggestions for the next edition can be sent to the editorial team.",
    "Contracts with cleaning and security providers were extended for another year.",
    "The pension scheme information evening drew a large audience.",
    "The network will be down for maintenance on the first Sunday of the month.",
    "A new mentoring programme pairs experienced staff with recent hires.",
    "The director thanked all departments for their work during a demanding period.",
    "Travel requests should be submitted at least two weeks in advance.",
    "The lost property box will be emptied at the end of the month.",
    "Printing costs fell after the switch to double-sided printing by default.",
)


@dataclass(frozen=True)
class RetrievalSet:
    """Documents, queries, and for query ``i`` the index of its one relevant document."""

    documents: tuple[str, ...]
    queries: tuple[str, ...]
    relevant: tuple[int, ...]


def build(n: int = len(FINDINGS), seed: int = 7) -> RetrievalSet:
    """``n`` documents (one per finding, in a seeded order) and one query per document."""
    rng = random.Random(seed)
    findings = list(FINDINGS[:n])
    order = list(range(len(findings)))
    rng.shuffle(order)
    documents = []
    for number, which in enumerate(order):
        passage = findings[which][0]
        before = rng.sample(OPENING, rng.randint(23, 28))
        after = rng.sample(OPENING, rng.randint(12, 26))
        documents.append(
            f"Bulletin {number + 1}\n\n"
            + " ".join(before)
            + "\n\n"
            + passage
            + "\n\n"
            + " ".join(after)
        )
    queries = tuple(findings[i][1] for i in range(len(findings)))
    relevant = tuple(order.index(i) for i in range(len(findings)))
    return RetrievalSet(tuple(documents), queries, relevant)


def recall_at(k: int, scores: list[list[float]], relevant: tuple[int, ...]) -> float:
    """Share of queries whose relevant document ranks in the top ``k`` of its row."""
    hits = 0
    for row, want in zip(scores, relevant, strict=True):
        top = sorted(range(len(row)), key=lambda j: -row[j])[:k]
        hits += want in top
    return hits / len(relevant)
