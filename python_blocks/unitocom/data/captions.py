"""Captions for text-to-image: from a scene, and a scene from a caption.

Grammar (every object fully described: size color material shape):

    one:    "a <obj>"
    two:    "a <obj1> <relation> a <obj2>"
    three:  "a <obj1> <relation> a <obj2> and a <obj3> <relation> it"

("it" is obj2). ``parse`` inverts it; ``scene_from_caption`` samples a scene
that contains exactly the caption's objects, placed so that the relations
hold, which the renderer then draws.
"""
from .scenes import Obj, place, random_object, relation_holds
from .vocab import ATTRIBUTES, RELATIONS

_ORDER = ("size", "color", "material", "shape")


def phrase(obj):
    return "a " + " ".join(obj.attrs()[k] for k in _ORDER)


def describe(objs):
    """The whole scene in words: the object count, then each object's size color material shape, left to
    right on screen (e.g. "3 small gray metal cylinder large purple rubber sphere …"). Every word is in the
    vocabulary; the MLLM's ``dsc`` task learns to say it from image tokens."""
    ordered = sorted(objs, key=lambda o: o.screen_x)
    return " ".join([str(len(ordered))] + [" ".join(o.attrs()[k] for k in _ORDER) for o in ordered])


def caption_from_scene(rng, objs):
    """A true caption of 1–3 of the scene's objects; dict(text, objects, relations)."""
    # only objects that their full description names uniquely in the scene
    unique = [i for i, o in enumerate(objs) if sum(p.attrs() == o.attrs() for p in objs) == 1]
    k = int(rng.integers(1, min(3, len(unique)) + 1))
    for _ in range(50):
        idx = [unique[int(i)] for i in rng.choice(len(unique), k, replace=False)]
        picked = [objs[i] for i in idx]
        rels = []
        for a, b in ([(0, 1)] if k >= 2 else []) + ([(2, 1)] if k == 3 else []):
            true = [r for r in RELATIONS if relation_holds(picked[a], picked[b], r)]
            if not true:
                break
            rels.append((a, str(rng.choice(true)), b))
        if len(rels) == k - 1:
            return {"text": render_caption(picked, rels), "objects": idx, "relations": rels}
    return {"text": phrase(objs[unique[0]]), "objects": [unique[0]], "relations": []}


def render_caption(picked, rels):
    text = phrase(picked[0])
    if len(picked) >= 2:
        text += f" {rels[0][1]} {phrase(picked[1])}"
    if len(picked) == 3:
        text += f" and {phrase(picked[2])} {rels[1][1]} it"
    return text


def _parse_object(words):
    if len(words) != 5 or words[0] != "a":
        raise ValueError(f"not an object phrase: {' '.join(words)!r}")
    attrs = dict(zip(_ORDER, words[1:]))
    for k, v in attrs.items():
        if v not in ATTRIBUTES[k]:
            raise ValueError(f"{v!r} is not a {k}")
    return attrs


def _split_relation(words):
    for rel in sorted(RELATIONS, key=len, reverse=True):
        r = rel.split()
        for i in range(len(words) - len(r) + 1):
            if words[i:i + len(r)] == r:
                return words[:i], rel, words[i + len(r):]
    raise ValueError(f"no relation in {' '.join(words)!r}")


def parse(text):
    """Caption → (list of attribute dicts, list of (i, relation, j))."""
    first, _, second = text.partition(" and ")
    words = first.split()
    if len(words) == 5:
        objs, rels = [_parse_object(words)], []
    else:
        left, rel, right = _split_relation(words)
        objs, rels = [_parse_object(left), _parse_object(right)], [(0, rel, 1)]
    if second:
        words = second.split()
        if words[-1] != "it" or len(objs) != 2:
            raise ValueError(f"bad third object in {text!r}")
        left, rel, _ = _split_relation(words[:-1])
        objs.append(_parse_object(left))
        rels.append((2, rel, 1))
    return objs, rels


def scene_from_caption(rng, text, tries=100):
    """Objects that make ``text`` true (exactly the caption's objects)."""
    specs, rels = parse(text)
    for _ in range(tries):
        placed = []
        for i, spec in enumerate(specs):
            need = [(a, r, b) for a, r, b in rels if max(a, b) == i]

            def ok(cand, need=need, placed=placed, i=i):
                get = (lambda k: cand if k == i else placed[k])
                return all(relation_holds(get(a), get(b), r) for a, r, b in need)
            obj = place(rng, placed, random_object(rng, **spec), accept=ok)
            if obj is None:
                break
            placed.append(obj)
        if len(placed) == len(specs):
            return placed
    raise RuntimeError(f"could not place a scene for {text!r}")


__all__ = ["caption_from_scene", "parse", "scene_from_caption", "Obj"]
