"""CLEVR's attribute vocabulary and the corpus's word-level vocabulary.

One vocabulary covers questions, answers, captions and spoken sentences.
Sentences are lower-case words separated by single spaces, with a final
``?`` as its own token; ``encode``/``decode`` round-trip them exactly.
"""
SHAPES = ("cube", "sphere", "cylinder")
COLORS = ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow")
SIZES = ("small", "large")
MATERIALS = ("rubber", "metal")
ATTRIBUTES = {"size": SIZES, "color": COLORS, "material": MATERIALS, "shape": SHAPES}
RELATIONS = ("left of", "right of", "in front of", "behind")
PLURAL = {"cube": "cubes", "sphere": "spheres", "cylinder": "cylinders", "thing": "things"}
NUMBERS = tuple(str(k) for k in range(11))

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>", "<sep>")
PAD, BOS, EOS, UNK, SEP = range(len(SPECIALS))

_TEMPLATE_WORDS = """
are there any how many is what the a does have same as it and of in front behind left right
color shape size material thing things yes no ?
""".split()


def _words():
    words = list(_TEMPLATE_WORDS) + list(NUMBERS)
    for values in ATTRIBUTES.values():
        words += values
    words += list(PLURAL.values())
    for rel in RELATIONS:
        words += rel.split()
    seen, ordered = set(), []
    for w in words:
        if w not in seen:
            seen.add(w)
            ordered.append(w)
    return tuple(ordered)


WORDS = _words()
TOKENS = SPECIALS + WORDS
TOKEN_ID = {t: i for i, t in enumerate(TOKENS)}
ANSWERS = ("yes", "no") + NUMBERS[:7] + COLORS + SHAPES + SIZES + MATERIALS


def words_of(sentence):
    """Sentence → list of word tokens (``?`` split off)."""
    s = sentence.strip()
    tail = []
    if s.endswith("?"):
        s, tail = s[:-1].rstrip(), ["?"]
    return s.split(" ") + tail if s else tail


def encode(sentence, add_special=True):
    """Sentence → list of token ids (``<bos> … <eos>`` when ``add_special``).

    Raises ValueError on a word outside the vocabulary: generated sentences
    never have one, and silent ``<unk>`` would hide a generator bug."""
    ids = []
    for w in words_of(sentence):
        if w not in TOKEN_ID:
            raise ValueError(f"word {w!r} is not in the vocabulary")
        ids.append(TOKEN_ID[w])
    return [BOS] + ids + [EOS] if add_special else ids


def decode(ids):
    """Token ids → sentence (specials dropped); inverse of ``encode``."""
    words = [TOKENS[i] for i in ids if i >= len(SPECIALS)]
    text = " ".join(w for w in words if w != "?")
    return text + ("?" if words and words[-1] == "?" else "")
