#!/usr/bin/env python3
"""Generate peftops' synthetic demo datasets from the YAML templates in scripts/demo_data/.

* ``finance``, ``healthcare``: text classification, ``{train,validation,test}.csv`` with the
  columns ``text,label`` (support messages to a bank; patient-portal messages to a clinic).
* ``finance-assistant``, ``healthcare-assistant``: instruction tuning,
  ``{train,validation,test}.jsonl`` with rows ``{"prompt": ..., "response": ...}`` where the
  response is a compact JSON object with a fixed key order.

Every text is composed from hand-written templates (written for peftops), slot fills, optional
openers/closers/context sentences and register tweaks (lowercase, abbreviations, typos). The
YAML files say what a message is made of and how to add an intent. Generation is deterministic:
the same ``--seed`` always gives byte-identical files.

Usage::

    python scripts/make_demo_data.py [--out data] [--seed 13]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
from pathlib import Path
from string import Template

import yaml

TEMPLATES = Path(__file__).resolve().parent / "demo_data"
CLASSIFICATION = ("finance", "healthcare")
ASSISTANTS = ("finance-assistant", "healthcare-assistant")
SPLITS = {"train": 0.70, "validation": 0.15, "test": 0.15}  # an assistant's YAML may override

MIN_CHARS, MAX_CHARS = 10, 600
MIN_WORDS, MAX_WORDS = 3, 60

# Probabilities of the register tweaks / optional parts.
P_OPENER = 0.55
P_CLOSER = 0.5
P_LOWER_AFTER_OPENER = 0.65
P_CONTEXT_FIRST = 0.5
P_LOWERCASE = 0.08
P_TEXTSPEAK = 0.35
P_NO_FINAL_PUNCT = 0.12
P_ABBREVIATE = 0.3  # casual abbreviations and dropped apostrophes ("pls", "acct", "dont")
P_ABBREVIATION_EACH = 0.7  # each matching abbreviation, once a message is abbreviated
P_TYPO = 0.3  # one or two typos (swapped, dropped or doubled letters)
P_SECOND_ASIDE = 0.3  # a second statement about another intent, once there is one
# Number of extra context / follow-up sentences: (count, cumulative probability).
EXTRA_COUNTS = ((1, 0.25), (2, 0.37), (3, 0.43))


def money_amount(rng: random.Random) -> str:
    """A realistic money amount such as '£42.10', '$250' or '120 EUR'."""
    value = rng.choice((rng.randint(3, 99), rng.randint(100, 999), rng.randint(1000, 2500)))
    with_pence = rng.random() < 0.45
    number = f"{value:,}.{rng.randint(0, 99):02d}" if with_pence else f"{value:,}"
    style = rng.randrange(4)
    if style < 3:
        return "£$€"[style] + number
    return f"{number} {rng.choice(('EUR', 'GBP', 'USD'))}"


def card_last4(rng: random.Random) -> str:
    return f"{rng.randint(0, 9999):04d}"


def bill_amount(rng: random.Random) -> str:
    """A small billing amount such as '$45' or '$320.50' (no long digit runs)."""
    value = rng.choice((rng.randint(15, 99), rng.randint(100, 950)))
    if rng.random() < 0.3:
        return f"${value}.{rng.choice((0, 25, 50, 75)):02d}"
    return f"${value}"


SLOT_FUNCTIONS = {f.__name__: f for f in (money_amount, card_last4, bill_amount)}

SLOT_RE = re.compile(r"\{(\w+)\}")
FIRST_PERSON_I = re.compile(r"^I\b")


def load_spec(name: str) -> dict:
    """One preset's YAML, with its slot functions resolved."""
    spec = yaml.safe_load((TEMPLATES / f"{name}.yaml").read_text(encoding="utf-8"))
    spec["slot_funcs"] = {s: SLOT_FUNCTIONS[f] for s, f in spec.get("slot_functions", {}).items()}
    return spec


def normalise(text: str) -> str:
    """Key used for de-duplication: lowercase, alphanumerics only, single spaces."""
    return " ".join(re.sub(r"[^a-z0-9£$€]+", " ", text.lower()).split())


def violations(text: str, spec: dict) -> list[str]:
    """Return the list of constraint violations for one text (empty if it is fine)."""
    problems = []
    if text != text.strip() or "\n" in text or "\r" in text:
        problems.append("whitespace/newline")
    if not MIN_CHARS <= len(text) <= MAX_CHARS:
        problems.append(f"length {len(text)}")
    if not MIN_WORDS <= len(text.split()) <= MAX_WORDS:
        problems.append(f"words {len(text.split())}")
    if "{" in text or "}" in text:
        problems.append("unfilled slot")
    rejected = [p for p in spec["reject_patterns"] if re.search(p, text, re.IGNORECASE)]
    return problems + [f"pattern {p}" for p in rejected]


def fill(template: str, rng: random.Random, spec: dict) -> str:
    """Replace every ``{slot}`` with an independent random fill."""

    def one(match: re.Match) -> str:
        name = match.group(1)
        if name in spec["slot_funcs"]:
            return spec["slot_funcs"][name](rng)
        return rng.choice(spec["slots"][name])

    return SLOT_RE.sub(one, template)


def capitalise(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def make_sentence(template: str, rng: random.Random, spec: dict) -> tuple[str, bool]:
    """Fill a template; also say whether it may start lowercase after an opener like 'Hi,'."""
    text = fill(template, rng, spec)
    first = text.split()[0]
    lowerable = (
        not template.startswith("{")  # slot fills may be names (Tesco, Medicare)
        and not FIRST_PERSON_I.match(text)
        and first[1:] == first[1:].lower()  # keep acronyms such as MRI
    )
    return text, lowerable


def n_extras(rng: random.Random) -> int:
    r = rng.random()
    return next((count for count, p_cumulative in EXTRA_COUNTS if r < p_cumulative), 0)


def typo(word: str, rng: random.Random) -> str:
    """One keyboard slip inside a word: two letters swapped, one dropped or one doubled."""
    i = rng.randrange(1, len(word) - 2)
    kind = rng.randrange(3)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def roughen(text: str, rng: random.Random, abbreviations: list[list[str]]) -> str:
    """Casual typing: abbreviations, dropped apostrophes and typos in longer lowercase words."""
    if rng.random() < P_ABBREVIATE:
        for pattern, short in abbreviations:
            if rng.random() < P_ABBREVIATION_EACH:
                text = re.sub(pattern, short, text, flags=re.IGNORECASE)
        text = re.sub(r"\b(\w+)'(t|s|m|re|ve|ll|d)\b", r"\1\2", text)
    if rng.random() < P_TYPO:
        words = text.split(" ")
        candidates = [i for i, w in enumerate(words) if re.fullmatch(r"[a-z]{5,}", w)]
        for i in rng.sample(candidates, min(len(candidates), rng.choice((1, 1, 2)))):
            words[i] = typo(words[i], rng)
        text = " ".join(words)
    return text


def compose(
    cls: dict,
    others: list[list[str]],
    rng: random.Random,
    spec: dict,
    record: dict | None = None,
) -> str:
    """Build one message: [opener] [context] core [context] [follow-up] [closer] + tweaks.

    ``cls`` is an intent (or an assistant's case); the core is one of its ``hard`` phrasings
    with probability ``p_hard``, and with probability ``p_aside`` a statement from ``others``
    (other intents' asides) is mixed into the context. ``record`` (if given) receives how
    indirect the message is (``hard``, ``asides``), which group columns may depend on; it
    takes no random draws, so the texts do not change.
    """
    hard = rng.random() < spec.get("p_hard", 0)
    templates = cls["hard"] if hard else cls["templates"]
    core, core_lowerable = make_sentence(rng.choice(templates), rng, spec)
    terse = core[:1].islower()  # lowercase templates are the terse/casual register

    before: list[tuple[str, bool]] = []
    after: list[str] = []
    followups: list[str] = []
    pool = [(t, True) for t in cls.get("context", []) + spec["generic_context"]]
    pool += [(t, False) for t in cls.get("followups", []) + spec["generic_followups"]]
    for template, is_context in rng.sample(pool, n_extras(rng)):
        text, lowerable = make_sentence(template, rng, spec)
        text = capitalise(text)
        if is_context and rng.random() < P_CONTEXT_FIRST:
            before.append((text, lowerable))
        elif is_context:
            after.append(text)
        else:
            followups.append(text)
    n_asides = 0
    if rng.random() < spec.get("p_aside", 0):
        n_asides = 2 if rng.random() < P_SECOND_ASIDE else 1
    if record is not None:
        record.update(hard=hard, asides=n_asides)
    for asides in rng.sample(others, n_asides):
        text, lowerable = make_sentence(rng.choice(asides), rng, spec)
        if rng.random() < P_CONTEXT_FIRST:
            before.insert(0, (capitalise(text), lowerable))
        else:
            after.append(capitalise(text))

    body = [*before, (core if terse else capitalise(core), core_lowerable)]
    tail = [*after, *followups]
    if rng.random() < P_CLOSER:
        tail.append(rng.choice(spec["closers"]))
    if tail and body[-1][0][-1] not in ".?!":
        # an unpunctuated terse core followed by more text still needs a sentence break
        body[-1] = (body[-1][0] + ".", body[-1][1])
    if rng.random() < P_OPENER:
        opener = rng.choice(spec["openers"])
        first, lowerable = body[0]
        if opener.endswith(",") and lowerable and rng.random() < P_LOWER_AFTER_OPENER:
            body[0] = (first[:1].lower() + first[1:], lowerable)
        body.insert(0, (opener, False))
    text = " ".join([sentence for sentence, _ in body] + tail)

    if terse or rng.random() < P_LOWERCASE:
        text = text.lower()
        if rng.random() < P_TEXTSPEAK:
            text = re.sub(r"\bplease\b", "pls", text)
            text = re.sub(r"\byou\b", "u", text)
    text = roughen(text, rng, spec["abbreviations"])
    if rng.random() < P_NO_FINAL_PUNCT:
        text = text.rstrip(".!")
    return " ".join(text.split())


# Group columns of the classification data (fairness slices): who wrote a message, never
# model input. Each maps a value to its weight by how indirect the message is (0: a plain
# phrasing, no aside; 1: a hard phrasing or an aside; 2: both). Healthcare's 65+ band writes
# more indirectly (hard phrasings, other concerns mentioned in passing): a designed difficulty,
# not a promised gap (README's sliced summary shows where the demo model's gaps really are).
# Drawn from their own random stream: the texts and labels are those of the data without
# groups.
GROUP_COLUMNS: dict[str, dict[str, dict[str, tuple[float, float, float]]]] = {
    "finance": {
        "customer_segment": {
            "retail": (0.6, 0.6, 0.6),
            "business": (0.25, 0.25, 0.25),
            "premier": (0.15, 0.15, 0.15),
        },
        "region": {
            "north": (0.3, 0.3, 0.3),
            "south": (0.3, 0.3, 0.3),
            "east": (0.2, 0.2, 0.2),
            "west": (0.2, 0.2, 0.2),
        },
    },
    "healthcare": {
        "age_band": {
            "18-39": (0.5, 0.4, 0.2),
            "40-64": (0.45, 0.4, 0.3),
            "65+": (0.05, 0.2, 0.5),
        },
        "sex": {"female": (0.52, 0.52, 0.52), "male": (0.45, 0.45, 0.45), "other": (0.03,) * 3},
    },
}


def draw_groups(name: str, record: dict, rng: random.Random) -> dict[str, str]:
    """The group values of one message of preset ``name`` (none for presets without groups)."""
    level = int(record.get("hard", False)) + int(record.get("asides", 0) > 0)
    out = {}
    for column, weights in GROUP_COLUMNS.get(name, {}).items():
        values = list(weights)
        out[column] = rng.choices(values, weights=[weights[v][level] for v in values])[0]
    return out


def groups_of(spec: dict) -> list[tuple[str, dict, list[list[str]]]]:
    """(label or response, intent or case, other intents' asides) for every group of a preset."""
    if "cases" in spec:  # an assistant: the response is the case's fields as compact JSON
        for case in spec["cases"]:
            bad = [k for k, values in spec["fields"].items() if case[k] not in values]
            assert not bad, f"{case}: {bad} outside the closed sets under `fields`"
        keys = list(spec["fields"])
        return [
            (json.dumps({k: c[k] for k in keys}, separators=(", ", ": ")), c, [])
            for c in spec["cases"]
        ]
    intents = spec["intents"]
    return [
        (label, cls, [other["asides"] for name, other in intents.items() if name != label])
        for label, cls in intents.items()
    ]


def generate(spec: dict, seed: int, name: str = "") -> list[tuple[str, list]]:
    """The unique texts of every group of one preset, in YAML order; with group columns
    (``GROUP_COLUMNS[name]``), each text is ``(text, {column: value})``."""
    rng = random.Random(seed)
    group_rng = random.Random(seed + 7919)  # its own stream: the texts stay as they were
    seen: set[str] = set()
    out = []
    for label, cls, others in groups_of(spec):
        texts: list[str] = []
        attempts = 0
        while len(texts) < cls["size"]:
            attempts += 1
            if attempts > cls["size"] * 500:
                raise RuntimeError(f"{label}: could not make {cls['size']} unique texts")
            record: dict = {}
            text = compose(cls, others, rng, spec, record)
            key = normalise(text)
            if key in seen or violations(text, spec):
                continue
            seen.add(key)
            if name in GROUP_COLUMNS:
                texts.append((text, draw_groups(name, record, group_rng)))
            else:
                texts.append(text)
        out.append((label, texts))
    return out


def split(
    groups: list[tuple[str, list[str]]], fractions: dict[str, float], rng: random.Random
) -> dict[str, list[tuple[str, str]]]:
    """Split every group by ``fractions`` (train, validation, test), rows shuffled per split."""
    rows: dict[str, list[tuple[str, str]]] = {name: [] for name in fractions}
    for label, items in groups:
        items = list(items)
        rng.shuffle(items)
        n_train = round(len(items) * fractions["train"])
        n_val = round(len(items) * fractions["validation"])
        rows["train"] += [(text, label) for text in items[:n_train]]
        rows["validation"] += [(text, label) for text in items[n_train : n_train + n_val]]
        rows["test"] += [(text, label) for text in items[n_train + n_val :]]
    for name in rows:
        rng.shuffle(rows[name])
    return rows


def write_split(path: Path, rows: list[tuple[str, str]]) -> None:
    """CSV ``text,label`` for a classifier, JSON lines ``prompt, response`` for an assistant."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        if path.suffix == ".jsonl":
            f.writelines(
                json.dumps({"prompt": p, "response": r}, ensure_ascii=False) + "\n" for p, r in rows
            )
            return
        writer = csv.writer(f, lineterminator="\n")
        grouped = bool(rows) and isinstance(rows[0][0], tuple)
        columns = list(rows[0][0][1]) if grouped else []
        writer.writerow(("text", "label", *columns))
        for text, label in rows:
            if grouped:
                text, groups = text
                writer.writerow((text, label, *groups.values()))
            else:
                writer.writerow((text, label))


def count_table(rows: dict[str, list[tuple[str, str]]], labels: list[str]) -> list[str]:
    """Markdown table of examples per class and split."""
    names = list(rows)
    lines = ["| label | " + " | ".join(names) + " | total |", "|---|" + "---:|" * (len(names) + 1)]
    for label in [*labels, None]:
        counts = [sum(1 for _, lab in rows[n] if label is None or lab == label) for n in names]
        name = f"`{label}`" if label else "**total**"
        lines.append(f"| {name} | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |")
    return lines


def classification_section(name: str, spec: dict, rows: dict) -> list[str]:
    labels = list(spec["intents"])
    return [
        f"## {name}",
        "",
        f"{capitalise(spec['description'])}. Labels, in id order:",
        "",
        *[f"{i}. `{label}`" for i, label in enumerate(labels)],
        "",
        *count_table(rows, labels),
        "",
        *group_section(name, rows),
    ]


def group_section(name: str, rows: dict) -> list[str]:
    """Group columns (fairness slices; never model input) and their counts per split."""
    columns = GROUP_COLUMNS.get(name, {})
    if not columns:
        return []
    lines = [
        "Group columns (who wrote the message; never model input, used by evaluation to "
        "slice): " + ", ".join(f"`{c}`" for c in columns) + ".",
        "",
        "| group | " + " | ".join(rows) + " |",
        "|---|" + "---:|" * len(rows),
    ]
    for column, weights in columns.items():
        for value in weights:
            counts = [sum(1 for (_, g), _ in rows[s] if g[column] == value) for s in rows]
            lines.append(f"| `{column}={value}` | " + " | ".join(map(str, counts)) + " |")
    return [*lines, ""]


def assistant_section(name: str, spec: dict, rows: dict) -> list[str]:
    """The closed set of every response field with its rule, and the rows per split."""
    lines = [f"## {name}", "", f"{capitalise(spec['description'])}. Response fields, in order:", ""]
    for field, values in spec["fields"].items():
        lines.append(f"- `{field}`:")
        lines += [f"  - `{json.dumps(v)}`: {rule}" for v, rule in values.items()]
    counts = ", ".join(f"{k} {len(v)}" for k, v in rows.items())
    return [*lines, "", f"Rows: {counts} ({len(spec['cases'])} cases).", ""]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data"), help="output directory")
    parser.add_argument("--seed", type=int, default=13, help="random seed")
    args = parser.parse_args(argv)

    sections: dict[str, list[str]] = {"classification": []}
    for offset, name in enumerate(CLASSIFICATION):
        spec = load_spec(name)
        groups = generate(spec, args.seed * 100 + offset, name)
        rows = split(groups, SPLITS, random.Random(args.seed * 100 + 50 + offset))
        for split_name, split_rows in rows.items():
            write_split(args.out / name / f"{split_name}.csv", split_rows)
        sections["classification"] += classification_section(name, spec, rows)
        print(f"{name}: " + ", ".join(f"{k}={len(v)}" for k, v in rows.items()))
    sections["assistants"] = []
    for offset, name in enumerate(ASSISTANTS, start=len(CLASSIFICATION)):
        spec = load_spec(name)
        groups = generate(spec, args.seed * 100 + offset)
        rows = split(groups, spec["splits"], random.Random(args.seed * 100 + 50 + offset))
        for split_name, split_rows in rows.items():
            write_split(args.out / name / f"{split_name}.jsonl", split_rows)
        sections["assistants"] += assistant_section(name, spec, rows)
        print(f"{name}: " + ", ".join(f"{k}={len(v)}" for k, v in rows.items()))
    readme = Template((TEMPLATES / "README.md.tmpl").read_text(encoding="utf-8"))
    text = readme.substitute(seed=args.seed, **{k: "\n".join(v) for k, v in sections.items()})
    (args.out / "README.md").write_text(text, encoding="utf-8")
    print(f"wrote {args.out}/")


if __name__ == "__main__":
    main()
