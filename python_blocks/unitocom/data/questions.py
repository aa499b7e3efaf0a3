"""CLEVR-style visual questions over a scene graph, with balanced answers.

Templates (``TEMPLATES``), each with a closed answer set:

* ``exist``        are there any <filter>s?                          yes/no
* ``count``        how many <filter>s are there?                     0–6
* ``query_<a>``    what <a> is the <unique description>?             values of a
* ``compare_<a>``  does the <desc> have the same <a> as the <desc>?  yes/no
* ``relate``       is the <desc> <relation> the <desc>?              yes/no
* ``count_relate`` how many things are <relation> the <desc>?        0–5

A <filter> is a random subset of (size, color, material) plus a shape or
"things"; a <unique description> is such a filter that matches exactly one
object. Answers are computed from the scene graph (``answer``).

Balance: a template and a *target answer* are drawn uniformly and random
instantiations are tried until one has that answer; if the scene cannot
give it, another (template, target) pair is drawn (a bounded number of
rounds, else the last valid question is kept). So per template the answers
are close to uniform and a question-only guess is weak, while each question
stays a pure function of its scene and seed.
"""
import numpy as np

from .scenes import relation_holds
from .vocab import ATTRIBUTES, PLURAL, RELATIONS

_QUERY = ("color", "shape", "size", "material")
TEMPLATES = (("exist", "count", "relate", "count_relate")
             + tuple(f"query_{a}" for a in _QUERY) + tuple(f"compare_{a}" for a in _QUERY))
ANSWER_SETS = {"exist": ("yes", "no"), "count": tuple(str(k) for k in range(7)),
               "relate": ("yes", "no"), "count_relate": tuple(str(k) for k in range(6))}
ANSWER_SETS.update({f"query_{a}": ATTRIBUTES[a] for a in _QUERY})
ANSWER_SETS.update({f"compare_{a}": ("yes", "no") for a in _QUERY})
TRIES = 40


def matches(obj, filt):
    return all(getattr(obj, k) == v for k, v in filt.items())


def describe(filt, plural=False):
    """Words for a filter: size color material shape|thing (plural optional)."""
    words = [filt[k] for k in ("size", "color", "material") if k in filt]
    noun = filt.get("shape", "thing")
    return " ".join(words + [PLURAL[noun] if plural else noun])


def _random_filter(rng, obj=None, exclude=()):
    """A random attribute subset (of ``obj``'s attributes, if given)."""
    keys = [k for k in ("size", "color", "material", "shape") if k not in exclude]
    chosen = [k for k in keys if rng.random() < 0.5] or [str(rng.choice(keys))]
    if obj is not None:
        return {k: obj.attrs()[k] for k in chosen}
    return {k: str(rng.choice(ATTRIBUTES[k])) for k in chosen}


def _unique_filter(rng, objs, i, exclude=()):
    """A filter that matches objs[i] only, or None."""
    for _ in range(8):
        filt = _random_filter(rng, objs[i], exclude)
        if sum(matches(o, filt) for o in objs) == 1:
            return filt
    full = {k: v for k, v in objs[i].attrs().items() if k not in exclude}
    return full if sum(matches(o, full) for o in objs) == 1 else None


def _instantiate(rng, template, objs, want=None):
    """One random question of ``template`` as (text, program) or None.
    ``want`` (the target answer) only steers which objects are tried."""
    n = len(objs)
    if template in ("exist", "count"):
        # half the time describe a present object, so counts > 0 are reachable
        filt = _random_filter(rng, objs[int(rng.integers(n))] if rng.random() < 0.5 else None)
        plural = describe(filt, plural=True)
        text = f"are there any {plural}?" if template == "exist" else f"how many {plural} are there?"
        return text, {"template": template, "filter": filt}
    if template.startswith("query_"):
        attr = template[len("query_"):]
        having = [k for k in range(n) if getattr(objs[k], attr) == want]
        i = having[int(rng.integers(len(having)))] if having else int(rng.integers(n))
        filt = _unique_filter(rng, objs, i, exclude=(attr,))
        if filt is None:
            return None
        return f"what {attr} is the {describe(filt)}?", {"template": template, "filter": filt, "attr": attr}
    if template.startswith("compare_"):
        attr = template[len("compare_"):]
        i, j = rng.choice(n, 2, replace=False)
        same = [k for k in range(n) if k != i and getattr(objs[k], attr) == getattr(objs[i], attr)]
        if same and want == "yes":          # "yes" needs a matching pair, rare for colors
            j = same[int(rng.integers(len(same)))]
        fa, fb = _unique_filter(rng, objs, i, (attr,)), _unique_filter(rng, objs, j, (attr,))
        if fa is None or fb is None:
            return None
        text = f"does the {describe(fa)} have the same {attr} as the {describe(fb)}?"
        return text, {"template": template, "filter": fa, "filter2": fb, "attr": attr}
    rel = str(rng.choice(RELATIONS))
    if template == "relate":
        i, j = rng.choice(n, 2, replace=False)
        fa, fb = _unique_filter(rng, objs, i), _unique_filter(rng, objs, j)
        if fa is None or fb is None:
            return None
        return (f"is the {describe(fa)} {rel} the {describe(fb)}?",
                {"template": template, "filter": fa, "filter2": fb, "relation": rel})
    i = int(rng.integers(n))
    fa = _unique_filter(rng, objs, i)
    if fa is None:
        return None
    return (f"how many things are {rel} the {describe(fa)}?",
            {"template": template, "filter": fa, "relation": rel})


def _the(objs, filt):
    found = [o for o in objs if matches(o, filt)]
    if len(found) != 1:
        raise ValueError(f"description {filt} matches {len(found)} objects, not one")
    return found[0]


def answer(program, objs):
    """The answer (a word of ``ANSWER_SETS``) of a question program."""
    t = program["template"]
    if t in ("exist", "count"):
        k = sum(matches(o, program["filter"]) for o in objs)
        return ("yes" if k else "no") if t == "exist" else str(k)
    a = _the(objs, program["filter"])
    if t.startswith("query_"):
        return a.attrs()[program["attr"]]
    if t.startswith("compare_"):
        b = _the(objs, program["filter2"])
        return "yes" if a.attrs()[program["attr"]] == b.attrs()[program["attr"]] else "no"
    if t == "relate":
        return "yes" if relation_holds(a, _the(objs, program["filter2"]), program["relation"]) else "no"
    return str(sum(relation_holds(o, a, program["relation"]) for o in objs if o is not a))


def trace(program, objs):
    """The objects a question program refers to, as words: each object's size color material shape.

    ``exist``/``count``: every matching object; ``query_*``: the described object; ``compare_*`` and
    ``relate``: both described objects; ``count_relate``: the described object, then every object standing
    in the relation to it. Sets are listed left to right on screen (the order of ``captions.describe``).
    The MLLM's VQA can be trained to say this before the answer (a scratchpad that grounds the question in
    the image); the answer stays ``answer(program, objs)``."""
    t = program["template"]
    order = lambda found: sorted(found, key=lambda o: o.screen_x)            # noqa: E731
    if t in ("exist", "count"):
        picked = order([o for o in objs if matches(o, program["filter"])])
    elif t.startswith("query_"):
        picked = [_the(objs, program["filter"])]
    elif t.startswith("compare_") or t == "relate":
        picked = [_the(objs, program["filter"]), _the(objs, program["filter2"])]
    elif t == "count_relate":
        a = _the(objs, program["filter"])
        picked = [a] + order([o for o in objs if o is not a and relation_holds(o, a, program["relation"])])
    else:
        raise ValueError(f"unknown template {t!r}")
    return " ".join(" ".join(o.attrs()[k] for k in ("size", "color", "material", "shape")) for o in picked)


def generate(rng, objs, rounds=6):
    """One balanced question: dict(text, answer, template, program, balanced).

    Up to ``rounds`` (template, target answer) draws, each with ``TRIES``
    instantiations; the first question that hits its target is returned.
    Only if none does, the last valid one is (``balanced`` False)."""
    last = None
    for _ in range(rounds):
        template = str(rng.choice(TEMPLATES))
        target = str(rng.choice(ANSWER_SETS[template]))
        for _ in range(TRIES):
            q = _instantiate(rng, template, objs, target)
            if q is None:
                continue
            text, program = q
            ans = answer(program, objs)
            last = {"text": text, "answer": ans, "template": template, "program": program}
            if ans == target:
                return dict(last, balanced=True)
    if last is None:                 # no valid instantiation at all: fall back to counting
        return generate_fallback(rng, objs)
    return dict(last, balanced=False)


def generate_fallback(rng, objs):
    filt = _random_filter(rng)
    program = {"template": "count", "filter": filt}
    return {"text": f"how many {describe(filt, plural=True)} are there?", "answer": answer(program, objs),
            "template": "count", "program": program, "balanced": False}


def majority_answers(train):
    """{template: its most common answer among the ``train`` question rows} (ties: the larger word): the
    question-only guess."""
    counts = {}
    for q in train:
        counts.setdefault(q["template"], {}).setdefault(q["answer"], 0)
        counts[q["template"]][q["answer"]] += 1
    return {t: max(c, key=lambda a: (c[a], a)) for t, c in counts.items()}


def question_only_accuracy(train, test):
    """Accuracy of answering each test question with its template's most
    common train answer: the floor a visual model has to beat."""
    majority = majority_answers(train)
    hits = [majority.get(q["template"]) == q["answer"] for q in test]
    return float(np.mean(hits)) if hits else float("nan")
