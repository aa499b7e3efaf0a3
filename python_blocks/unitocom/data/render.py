"""A small numpy rasterizer for CLEVR-style scenes.

Pinhole camera at height ``CAMERA_HEIGHT`` looking along +z; a world point
(X, Y, Z) (Y up) lands at image coordinates (fractions of the image size)

    u = 0.5 + FOCAL·X/d,   v = HORIZON + FOCAL·(CAMERA_HEIGHT − Y)/d,   d = Z + DEPTH0.

Objects are drawn far to near (occlusion by painter's order) over a shaded
ground plane with soft contact shadows. Cubes are true projected boxes
(visible faces only), spheres shaded discs, cylinders a shaded body with a
top ellipse. Lambert shading from one light; metal gets a darker diffuse
term, a sharp specular highlight and an environment sheen, rubber stays
matte. Rendering is 2× supersampled and box-filtered.
"""
import math

import numpy as np

from .scenes import CAMERA_HEIGHT, DEPTH0, FOCAL

HORIZON = -0.1              # above the image: the camera looks down on the ground
SUPERSAMPLE = 2
COLOR_RGB = {
    "gray": (87, 87, 87), "red": (173, 35, 35), "blue": (42, 75, 215), "green": (29, 105, 20),
    "brown": (129, 74, 25), "purple": (129, 38, 192), "cyan": (41, 208, 208), "yellow": (255, 238, 51),
}
_LIGHT = np.array([-0.55, 0.75, -0.45])
_LIGHT /= np.linalg.norm(_LIGHT)


def project(X, Y, Z):
    d = Z + DEPTH0
    return 0.5 + FOCAL * X / d, HORIZON + FOCAL * (CAMERA_HEIGHT - Y) / d


class _Canvas:
    def __init__(self, size):
        self.n = size * SUPERSAMPLE
        c = (np.arange(self.n) + 0.5) / self.n
        self.v, self.u = np.meshgrid(c, c, indexing="ij")
        ground = np.clip((self.v - HORIZON) / (1 - HORIZON), 0, 1)
        base = np.where(self.v < HORIZON, 0.42, 0.50 + 0.16 * ground)
        self.rgb = np.repeat(base[..., None], 3, axis=2)
        self.ids = np.full((self.n, self.n), -1, np.int16)
        self.area = {}                       # pixels each object covered when drawn

    def box(self, u0, u1, v0, v1):
        """Index slices of the pixels inside [u0, u1] × [v0, v1]."""
        i0, i1 = (min(max(math.floor(t * self.n), 0), self.n) for t in (v0, v1))
        j0, j1 = (min(max(math.ceil(t * self.n), 0), self.n) for t in (u0, u1))
        return slice(i0, max(i0, i1 + 1)), slice(j0, max(j0, j1))

    def paint(self, sl, mask, rgb, obj_id):
        region = self.rgb[sl]
        region[mask] = np.broadcast_to(rgb, mask.shape + (3,))[mask]
        ids = self.ids[sl]
        self.area[obj_id] = self.area.get(obj_id, 0) + int(np.count_nonzero(mask & (ids != obj_id)))
        ids[mask] = obj_id


def _shade(color, normal, view, metal):
    """Per-pixel RGB for unit normals (..., 3) seen from ``view`` (unit, 3)."""
    diff = np.clip(normal @ _LIGHT, 0, 1)[..., None]
    half = _LIGHT + view
    half /= np.linalg.norm(half)
    spec = np.clip(normal @ half, 0, 1)[..., None]
    if metal:   # darker body, bright reflection of the sky above, broad hot highlight
        sky = 0.30 * np.clip(normal[..., 1:2], 0, 1) ** 2
        return np.clip(color * (0.12 + 0.5 * diff) + sky + 1.1 * spec ** 18, 0, 1)
    return np.clip(color * (0.32 + 0.68 * diff) + 0.06 * spec ** 6, 0, 1)


def _view(obj):
    v = np.array([-obj.x, CAMERA_HEIGHT - obj.radius, -(obj.z + DEPTH0)])
    return v / np.linalg.norm(v)


def _shadow(cv, obj):
    u0, v0 = project(obj.x + 0.35 * obj.radius, 0.0, obj.z + 0.25 * obj.radius)
    ru = 1.25 * FOCAL * obj.radius / (obj.z + DEPTH0)
    rv = ru * 0.45
    sl = cv.box(u0 - 2 * ru, u0 + 2 * ru, v0 - 2 * rv, v0 + 2 * rv)
    r2 = ((cv.u[sl] - u0) / ru) ** 2 + ((cv.v[sl] - v0) / rv) ** 2
    cv.rgb[sl] *= (1 - 0.38 * np.exp(-1.6 * r2))[..., None]


def _sphere(cv, obj, k, color):
    u0, v0 = project(obj.x, obj.radius, obj.z)
    r = FOCAL * obj.radius / (obj.z + DEPTH0)
    sl = cv.box(u0 - r, u0 + r, v0 - r, v0 + r)
    dx, dy = (cv.u[sl] - u0) / r, (cv.v[sl] - v0) / r
    rr = dx * dx + dy * dy
    mask = rr <= 1
    normal = np.stack([dx, -dy, -np.sqrt(np.clip(1 - rr, 0, 1))], axis=-1)
    cv.paint(sl, mask, _shade(color, normal, _view(obj), obj.material == "metal"), k)


def _polygon_mask(u, v, pts):
    """Inside test for a convex polygon given as [(u, v), ...]."""
    pts = np.asarray(pts)
    area = np.sum(pts[:, 0] * np.roll(pts[:, 1], -1) - np.roll(pts[:, 0], -1) * pts[:, 1])
    inside = np.ones(u.shape, bool)
    for (ua, va), (ub, vb) in zip(pts, np.roll(pts, -1, axis=0)):
        cross = (ub - ua) * (v - va) - (vb - va) * (u - ua)
        inside &= cross * np.sign(area) >= 0
    return inside


def _cube(cv, obj, k, color):
    a = obj.radius * 0.8                       # half side
    c, s = np.cos(obj.angle), np.sin(obj.angle)
    corners = {}
    for sx in (-1, 1):
        for sz in (-1, 1):
            for y in (0.0, 2 * a):
                X = obj.x + a * (sx * c - sz * s)
                Z = obj.z + a * (sx * s + sz * c)
                corners[(sx, sz, y > 0)] = (X, y, Z)
    center = np.array([obj.x, a, obj.z])
    faces = [  # corner keys in order, outward normal
        ([(-1, -1, 1), (1, -1, 1), (1, 1, 1), (-1, 1, 1)], np.array([0.0, 1.0, 0.0])),
        ([(-1, -1, 0), (1, -1, 0), (1, -1, 1), (-1, -1, 1)], np.array([s, 0.0, -c])),
        ([(1, -1, 0), (1, 1, 0), (1, 1, 1), (1, -1, 1)], np.array([c, 0.0, s])),
        ([(1, 1, 0), (-1, 1, 0), (-1, 1, 1), (1, 1, 1)], np.array([-s, 0.0, c])),
        ([(-1, 1, 0), (-1, -1, 0), (-1, -1, 1), (-1, 1, 1)], np.array([-c, 0.0, -s])),
    ]
    camera = np.array([0.0, CAMERA_HEIGHT, -DEPTH0])
    metal = obj.material == "metal"
    for keys, normal in faces:
        pts3 = np.array([corners[(sx, sz, bool(top))] for sx, sz, top in keys])
        face_center = pts3.mean(axis=0)
        to_cam = camera - face_center
        if normal @ to_cam <= 0 or normal @ (face_center - center) <= 0:
            continue
        pts = [project(*p) for p in pts3]
        us, vs = zip(*pts)
        sl = cv.box(min(us), max(us), min(vs), max(vs))
        mask = _polygon_mask(cv.u[sl], cv.v[sl], pts)
        view = to_cam / np.linalg.norm(to_cam)
        cv.paint(sl, mask, _shade(color, normal[None, None, :], view, metal), k)


def _cylinder(cv, obj, k, color):
    r, h = obj.radius * 0.85, obj.radius * 1.6
    d = obj.z + DEPTH0
    ub, vb = project(obj.x, 0.0, obj.z)
    ut, vt = project(obj.x, h, obj.z)
    ru = FOCAL * r / d
    rvb = ru * (CAMERA_HEIGHT / d) * 0.85      # foreshortened ellipse heights
    rvt = ru * ((CAMERA_HEIGHT - h) / d) * 0.85
    sl = cv.box(ub - ru, ub + ru, vt - rvt, vb + rvb)
    u, v = cv.u[sl], cv.v[sl]
    dx = (u - ub) / ru
    body = (np.abs(dx) <= 1) & (v >= vt) & ((v <= vb) | (((v - vb) / rvb) ** 2 + dx ** 2 <= 1))
    nz = -np.sqrt(np.clip(1 - dx * dx, 0, 1))
    normal = np.stack([dx, np.zeros_like(dx), nz], axis=-1)
    metal = obj.material == "metal"
    view = _view(obj)
    cv.paint(sl, body, _shade(color, normal, view, metal), k)
    top = ((u - ut) / ru) ** 2 + ((v - vt) / rvt) ** 2 <= 1
    cv.paint(sl, top, _shade(color, np.array([0.0, 1.0, 0.0])[None, None, :], view, metal), k)


_DRAW = {"sphere": _sphere, "cube": _cube, "cylinder": _cylinder}


def _draw(objs, size):
    cv = _Canvas(size)
    order = sorted(range(len(objs)), key=lambda i: -objs[i].z)
    for i in order:
        _shadow(cv, objs[i])
    for i in order:
        color = np.array(COLOR_RGB[objs[i].color]) / 255.0
        _DRAW[objs[i].shape](cv, objs[i], i, color)
    return cv


def render(objs, size=64, with_visibility=False):
    """uint8 RGB image (size, size, 3) of the objects.

    With ``with_visibility``, also the fraction of each object's own pixels
    that no nearer object hides (for rejecting heavily occluded scenes)."""
    cv = _draw(objs, size)
    s = SUPERSAMPLE
    img = np.round(cv.rgb.reshape(size, s, size, s, 3).mean(axis=(1, 3)) * 255).astype(np.uint8)
    if not with_visibility:
        return img
    visible = [float(np.count_nonzero(cv.ids == k)) / max(1, cv.area.get(k, 0)) for k in range(len(objs))]
    return img, visible
