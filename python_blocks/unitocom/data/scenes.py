"""Scene graphs: CLEVR objects on a ground plane, seen by a fixed camera.

Ground coordinates: x to the right, z away from the camera (depth, in
[-3, 3]). A pinhole camera at height ``CAMERA_HEIGHT`` looks along +z
(``render`` has the projection). An object's *screen* x (``x / (z +
DEPTH0)``) decides left/right, its depth z decides front/behind, as a viewer
of the image would judge them. Objects are placed inside the view. Scenes
keep every pair of objects apart by ``MARGIN`` in both, so every relation
is unambiguous.
"""
import dataclasses

import numpy as np

from .vocab import COLORS, MATERIALS, SHAPES, SIZES

SPLITS = ("train", "val", "test")
RADIUS = {"small": 0.5, "large": 0.9}
DEPTH0 = 10.0                # camera distance to z = 0
CAMERA_HEIGHT = 7.0
FOCAL = 1.0                  # image widths per unit of x/depth
Z_RANGE = (-3.0, 3.0)
U_RANGE = (0.14, 0.86)       # horizontal placement, fraction of the image width
MARGIN = 0.03                # screen-x units (≈ 1 pixel at 64×64) and …
DEPTH_MARGIN = 0.25          # … ground units in depth
MIN_OBJECTS, MAX_OBJECTS = 3, 6


@dataclasses.dataclass
class Obj:
    shape: str
    color: str
    size: str
    material: str
    x: float
    z: float
    angle: float = 0.0       # rotation about the vertical axis, radians

    @property
    def radius(self):
        return RADIUS[self.size]

    @property
    def screen_x(self):
        return self.x / (self.z + DEPTH0)

    def attrs(self):
        return {"size": self.size, "color": self.color, "material": self.material, "shape": self.shape}

    def to_dict(self):
        d = dataclasses.asdict(self)
        for k in ("x", "z", "angle"):
            d[k] = round(float(d[k]), 4)
        return d


def scene_seed(split, index, seed):
    """The 64-bit seed of one scene: a pure function of (split, index, seed)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
    state = np.random.SeedSequence([int(seed), SPLITS.index(split), int(index)]).generate_state(2, np.uint32)
    return int(state[0]) << 32 | int(state[1])


def relation_holds(a, b, relation):
    """True when object ``a`` is ``relation`` object ``b`` (strictly, with margin)."""
    if relation == "left of":
        return a.screen_x < b.screen_x - MARGIN
    if relation == "right of":
        return a.screen_x > b.screen_x + MARGIN
    if relation == "in front of":
        return a.z < b.z - DEPTH_MARGIN
    if relation == "behind":
        return a.z > b.z + DEPTH_MARGIN
    raise ValueError(f"unknown relation {relation!r}")


def well_separated(objs, new):
    """No 3-D overlap, and unambiguous relations with every other object."""
    for o in objs:
        if np.hypot(o.x - new.x, o.z - new.z) < 1.15 * (o.radius + new.radius):
            return False
        if abs(o.screen_x - new.screen_x) < 2 * MARGIN or abs(o.z - new.z) < 2 * DEPTH_MARGIN:
            return False
    return True


def random_position(rng):
    """(x, z) uniform in depth and in horizontal image position."""
    z = float(rng.uniform(*Z_RANGE))
    u = float(rng.uniform(*U_RANGE))
    return (u - 0.5) * (z + DEPTH0) / FOCAL, z


def random_object(rng, **fixed):
    """An object with random attributes (those in ``fixed`` kept) and place."""
    attrs = {"shape": SHAPES, "color": COLORS, "size": SIZES, "material": MATERIALS}
    values = {k: fixed.get(k) or str(rng.choice(v)) for k, v in attrs.items()}
    x, z = random_position(rng)
    return Obj(**values, x=x, z=z, angle=float(rng.uniform(0, np.pi / 2)))


def place(rng, objs, template, tries=200, accept=None):
    """Re-draw ``template``'s position until it fits among ``objs`` (and
    ``accept(candidate)`` holds, if given); None if no try fits."""
    for _ in range(tries):
        x, z = random_position(rng)
        cand = dataclasses.replace(template, x=x, z=z)
        if well_separated(objs, cand) and (accept is None or accept(cand)):
            return cand
    return None


def sample_scene(rng, n_objects=None):
    """A list of 3–6 well-separated objects with random attributes."""
    while True:
        n = int(n_objects or rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1))
        objs = []
        for _ in range(n):
            o = place(rng, objs, random_object(rng))
            if o is None:
                break
            objs.append(o)
        if len(objs) == n:
            return objs
