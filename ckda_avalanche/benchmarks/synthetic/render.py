"""Vectorised rendering of visible and infrared images of one synthetic identity.

A person is a layered 2-D figure in body coordinates (``u`` across, ``v`` down, both in body heights): legs, skirt,
torso, arms, neck, head, hair, chest logo and carried object. Every layer is a soft mask tagged with a material
(skin, hair, upper, lower, shoes, logo, bag). Visible images give materials their colour and garment texture under
the camera's illumination and colour cast; infrared images give them a single intensity, a mix of emitted heat
(skin hot, garments by emissivity, objects near ambient) and near-infrared reflectance, replicated to 3 channels as
real IR data is. Colour therefore carries no cross-modality information; shape, texture layout and heat do.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from .domains import DomainSpec
from .identity import IdentityAttributes
from .nuisance import CLUTTER_COLOURS, CameraCondition, Nuisance

_FOOT = 0.985
_ARM_LENGTH = 0.40
_ARM_HALF_WIDTH = 0.028
_LUMA = np.array([0.299, 0.587, 0.114])


def _soft(distance: np.ndarray, edge: float) -> np.ndarray:
    """Anti-aliased inside mask from a signed distance (positive inside)."""
    return np.clip(distance / edge + 0.5, 0.0, 1.0)


def _box(u, v, u0, u1, v0, v1, edge):
    d = np.minimum(np.minimum(u - u0, u1 - u), np.minimum(v - v0, v1 - v))
    return _soft(d, edge)


def _smooth_noise(rng: np.random.Generator, n: int, h: int, w: int, grid: tuple[int, int], c: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a random coarse grid bilinearly upsampled to (n, h, w, c)."""
    gh, gw = grid
    coarse = rng.uniform(-1.0, 1.0, size=(n, gh + 1, gw + 1, c)).astype(np.float32)
    yi = np.linspace(0, gh, h)
    xi = np.linspace(0, gw, w)
    y0 = np.minimum(yi.astype(int), gh - 1)
    x0 = np.minimum(xi.astype(int), gw - 1)
    fy = (yi - y0).astype(np.float32)[None, :, None, None]
    fx = (xi - x0).astype(np.float32)[None, None, :, None]
    a = coarse[:, y0][:, :, x0]
    b = coarse[:, y0][:, :, x0 + 1]
    c_ = coarse[:, y0 + 1][:, :, x0]
    d = coarse[:, y0 + 1][:, :, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c_ * (1 - fx) + d * fx) * fy


def _background(cam: CameraCondition, rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    """Visible-light scene reflectance (n, h, w, 3) of one camera, with per-image clutter: every background family
    has its own branch (an unknown family is an error, never another family's look). The benchmark's families end
    with one or two rectangular structures (doors, posters, cars, bins); the pool's ``park`` (tree trunks) and
    ``studio`` (spotlit empty backdrop) do not."""
    ys = ((np.arange(h) + 0.5) / h)[None, :, None, None]
    xs = ((np.arange(w) + 0.5) / w)[None, None, :, None]
    horizon = cam.horizon + rng.normal(0.0, 0.03, (n, 1, 1, 1))
    ground = np.clip((ys - horizon) / 0.04 + 0.5, 0.0, 1.0)
    top = np.asarray(cam.scene_top) * (1 + rng.normal(0, 0.06, (n, 1, 1, 3)))
    bottom = np.asarray(cam.scene_bottom) * (1 + rng.normal(0, 0.06, (n, 1, 1, 3)))
    bg = top * (1 - ground) + bottom * ground
    bg = bg * (1 + 0.18 * _smooth_noise(rng, n, h, w, (5, 3), 1))
    if cam.background == "corridor":  # pillars / doors at a camera-typical period
        phase = rng.uniform(0, 1, (n, 1, 1, 1))
        pillars = (np.sin(2 * np.pi * (xs * 2.5 + phase)) > 0.6) * (1 - ground)
        bg = bg * (1 - 0.35 * pillars)
    elif cam.background == "street":  # vegetation / parked objects blobs above the ground line
        blobs = np.clip(_smooth_noise(rng, n, h, w, (4, 2), 1) * 2.0 - 0.6, 0.0, 1.0) * (1 - ground)
        green = np.array(CLUTTER_COLOURS["street"][0])
        bg = bg * (1 - blobs) + green * (0.6 + 0.4 * rng.random((n, 1, 1, 1))) * blobs
    elif cam.background == "night":  # street lamps
        cy = rng.uniform(0.05, 0.45, (n, 1, 1, 1))
        cx = rng.uniform(0.0, 1.0, (n, 1, 1, 1))
        glow = np.exp(-(((ys - cy) / 0.12) ** 2 + ((xs - cx) / 0.25) ** 2))
        bg = bg + glow * np.array(CLUTTER_COLOURS["night"][0]) * rng.uniform(0.5, 1.2, (n, 1, 1, 1))
    elif cam.background == "park":  # pretraining pool only: up to three dark tree trunks under the foliage
        for _ in range(3):
            x0 = rng.uniform(-0.1, 1.0, (n, 1, 1, 1))
            width = rng.uniform(0.04, 0.1, (n, 1, 1, 1))
            trunk = (xs > x0) & (xs < x0 + width) & (ys > horizon - rng.uniform(0.1, 0.3, (n, 1, 1, 1)))
            bg = np.where(trunk & (ys < horizon + 0.05), np.array(CLUTTER_COLOURS["park"][0]), bg)
        return np.clip(bg, 0.0, 1.2).astype(np.float32)
    elif cam.background == "studio":  # pretraining pool only: an empty backdrop under a soft spotlight
        cx = rng.uniform(0.3, 0.7, (n, 1, 1, 1))
        spot = np.exp(-(((ys - 0.35) / 0.45) ** 2 + ((xs - cx) / 0.5) ** 2))
        bg = bg * (0.7 + 0.45 * spot)
        return np.clip(bg, 0.0, 1.2).astype(np.float32)
    elif cam.background != "indoor":  # indoor: the plain scene and the structures below
        raise ValueError(f"camera {cam.camid}: no renderer for background family {cam.background!r}")
    # One or two rectangular structures (doors, posters, cars, bins).
    for _ in range(2):
        x0 = rng.uniform(-0.2, 0.9, (n, 1, 1, 1))
        y0 = rng.uniform(0.1, 0.7, (n, 1, 1, 1))
        rect = ((xs > x0) & (xs < x0 + rng.uniform(0.1, 0.4, (n, 1, 1, 1)))
                & (ys > y0) & (ys < y0 + rng.uniform(0.1, 0.35, (n, 1, 1, 1))))
        present = rng.random((n, 1, 1, 1)) < 0.6
        bg = np.where(rect & present, rng.uniform(0.1, 0.9, (n, 1, 1, 3)), bg)
    return np.clip(bg, 0.0, 1.2).astype(np.float32)


def _upper_pattern(who: IdentityAttributes, u: np.ndarray, v: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """Fraction of the secondary colour on the upper garment, in body coordinates (moves with the body)."""
    f = who.pattern_frequency
    if who.pattern == 1:  # stripes
        s = u * np.cos(who.pattern_angle) + v * np.sin(who.pattern_angle)
        return np.clip(0.5 + 2.0 * np.sin(2 * np.pi * f * s), 0.0, 1.0)
    if who.pattern == 2:  # checks
        return np.clip(0.5 + 2.0 * np.sin(2 * np.pi * f * u) * np.sin(2 * np.pi * f * v), 0.0, 1.0)
    if who.pattern == 3:  # two-tone blocks, split tilted by the pattern angle
        split = t0 + 0.5 * (t1 - t0) + 0.3 * np.sin(who.pattern_angle) * u
        return np.clip((v - split) / 0.01 + 0.5, 0.0, 1.0) + 0.0 * u
    return np.zeros(np.broadcast_shapes(u.shape, v.shape))


def _layers(who: IdentityAttributes, nz: Nuisance, h: int, w: int):
    """Soft masks of the figure's layers in painting order, as (material, mask, pattern-or-None) triples."""
    n = len(nz)
    f32 = np.float32
    ys = ((np.arange(h, dtype=f32) + 0.5) / h)[None, :, None]
    xs = ((np.arange(w, dtype=f32) + 0.5) / w - 0.5)[None, None, :] * f32(w / h)
    hp = (nz.scale * who.height).astype(f32)[:, None, None]
    top = (1.0 - hp) / 2 + nz.dy.astype(f32)[:, None, None]
    v = (ys - top) / hp
    sign = np.where(nz.flip, f32(-1.0), f32(1.0))[:, None, None]
    u = (xs - nz.dx.astype(f32)[:, None, None]) / hp * sign
    view = nz.view[:, None, None]
    front, back, side = view == 0, view == 1, view == 2
    wf = np.where(side, f32(0.62), f32(1.0))
    stride = nz.stride.astype(f32)[:, None, None]
    edge = 1.0 / (h * float(np.mean(nz.scale * who.height)))
    hd = who.head
    t0 = 2 * hd + 0.02
    t1 = t0 + who.torso_length
    out = []

    # Legs (lower garment, skin below it for shorts), then shoes.
    leg_len = _FOOT - t1
    for s in (-1.0, 1.0):
        slant = np.where(side, s * 0.3 * stride, s * 0.03 + 0.02 * stride * s)
        centre = np.where(side, 0.0, s * who.waist * 0.5) + slant * (v - t1)
        half = who.leg * np.where(side, 1.1, 1.0)
        leg = _box(u - centre, v, -half, half, t1 - 0.02, _FOOT, edge)
        garment = v < t1 + who.lower_length * leg_len
        out.append(("lower", leg * garment, None))
        out.append(("skin", leg * ~garment, None))
        out.append(("shoes", leg * (v > _FOOT - 0.035), None))
    if who.skirt:
        frac = np.clip((v - t1) / 0.25, 0.0, 1.0)
        hw = (who.waist * (1.05 + 0.45 * frac)) * wf
        out.append(("lower", _soft(np.minimum(hw - np.abs(u), np.minimum(v - t1 + 0.02, t1 + 0.25 - v)), edge), None))
    # Torso: a trapezoid from shoulders to waist.
    frac = np.clip((v - t0) / (t1 - t0), 0.0, 1.0)
    hw = (who.shoulder + (who.waist - who.shoulder) * frac) * wf
    torso = _soft(np.minimum(hw - np.abs(u), np.minimum(v - t0, t1 - v)), edge)
    pattern = _upper_pattern(who, u / wf, v, t0, t1)
    out.append(("upper", torso, pattern))
    # Arms: sleeves then skin.
    for s in (-1.0, 1.0):
        offset = np.where(side, 0.0, s * (who.shoulder * wf + _ARM_HALF_WIDTH * 0.8))
        slant = np.where(side, s * 0.35 * stride, s * 0.06)
        arm = _box(u - offset - slant * (v - t0), v, -_ARM_HALF_WIDTH, _ARM_HALF_WIDTH, t0 + 0.005,
                   t0 + _ARM_LENGTH, edge)
        sleeve = v < t0 + who.sleeve * _ARM_LENGTH
        out.append(("upper", arm * sleeve, pattern))
        out.append(("skin", arm * ~sleeve, None))
    # Neck, head, hair.
    out.append(("skin", _box(u, v, -0.35 * hd, 0.35 * hd, 1.6 * hd, t0 + 0.01, edge), None))
    cu = np.where(side, 0.12 * hd, 0.0)
    r = np.sqrt(((u - cu) / (0.85 * hd)) ** 2 + ((v - hd) / hd) ** 2)
    head = _soft((1.0 - r) * hd, edge)
    out.append(("skin", head, None))
    cap = np.where(back, 1.75 * hd, np.where(side, 0.9 * hd, 0.7 * hd))
    out.append(("hair", head * (v < cap), None))
    if who.long_hair:
        band = _box(u - cu, v, -0.95 * hd, 0.95 * hd, hd, t0 + 0.11, edge)
        out.append(("hair", band * np.where(front, np.abs(u) > 0.6 * hd, 1.0), None))
    if who.has_logo:
        out.append(("logo", _box(u, v, -0.035, 0.035, t0 + 0.05, t0 + 0.11, edge) * front, None))
    # Carried object (its side is mirrored with the figure because u is).
    cs = float(who.carried_side)
    if who.carried == 1:  # backpack
        pack_back = _box(u, v, -who.shoulder * 0.75, who.shoulder * 0.75, t0 + 0.03, t0 + 0.25, edge)
        straps = sum(_box(u - s * who.shoulder * 0.5, v, -0.012, 0.012, t0, t0 + 0.2, edge) for s in (-1.0, 1.0))
        pack_side = _box(u, v, -who.shoulder * 0.62 - 0.085, -who.shoulder * 0.62 + 0.01, t0 + 0.03, t0 + 0.25, edge)
        out.append(("bag", np.where(back, pack_back, np.where(front, np.clip(straps, 0, 1), pack_side)), None))
    elif who.carried == 2:  # handbag at the hip
        cx = cs * (who.waist * wf + 0.045)
        out.append(("bag", _box(u - cx, v, -0.035, 0.035, t1 - 0.05, t1 + 0.08, edge), None))
    elif who.carried == 3:  # messenger: diagonal strap + bag at the opposite hip
        line = -cs * who.shoulder * 0.8 + cs * 1.6 * who.shoulder * (v - t0) / who.torso_length
        strap = _box(u - line * wf, v, -0.012, 0.012, t0, t1, edge) * ~side
        bag = _box(u - cs * (who.waist * wf + 0.03), v, -0.05, 0.05, t1 - 0.04, t1 + 0.09, edge)
        out.append(("bag", np.clip(strap + bag, 0.0, 1.0), None))
    shade = np.clip(1.0 - 0.35 * (u / (who.shoulder * 1.4 * wf)) ** 2, 0.55, 1.0)
    return out, u, shade, n


def _materials_visible(who: IdentityAttributes) -> dict[str, np.ndarray]:
    return {"skin": np.array(who.skin), "hair": np.array(who.hair), "upper": np.array(who.upper),
            "lower": np.array(who.lower), "shoes": np.array(who.shoes), "logo": np.array(who.logo),
            "bag": np.array(who.bag_colour)}


def _materials_infrared(who: IdentityAttributes, spec: DomainSpec, ambient: float) -> dict[str, float]:
    """Single-channel infrared value of every material: heat and near-infrared reflectance, mixed."""
    heat = who.body_heat - ambient
    thermal = {"skin": who.body_heat, "hair": ambient + 0.5 * heat, "upper": ambient + heat * who.upper_emissivity,
               "lower": ambient + heat * who.lower_emissivity, "shoes": ambient + 0.15 * heat,
               "logo": ambient + heat * who.upper_emissivity, "bag": ambient + 0.1 * heat}
    nir = {"skin": 0.75, "hair": 0.25 + 0.4 * float(np.array(who.hair) @ _LUMA), "upper": who.upper_nir,
           "lower": who.lower_nir, "shoes": 0.2 + 0.5 * float(np.array(who.shoes) @ _LUMA),
           "logo": 0.2 + 0.6 * float(np.array(who.logo) @ _LUMA), "bag": who.bag_nir}
    wt = spec.thermal_weight
    return {k: wt * thermal[k] + (1 - wt) * nir[k] for k in thermal}


def render_images(who: IdentityAttributes, cam: CameraCondition, nz: Nuisance, spec: DomainSpec,
                  img_size: tuple[int, int], rng: np.random.Generator) -> list[np.ndarray]:
    """Render ``len(nz)`` images of identity ``who`` seen by camera ``cam``; returns uint8 (H, W, 3) arrays.

    Infrared images have three identical channels.
    """
    out_h, out_w = img_size
    h = max(16, int(round(out_h * spec.resolution_factor)))
    w = max(8, int(round(out_w * spec.resolution_factor)))
    n_bg = 1 if nz.shared_background else len(nz)
    layers, u, shade, n = _layers(who, nz, h, w)
    channels = 1 if cam.infrared else 3
    premult = np.zeros((n, h, w, channels), dtype=np.float32)
    alpha = np.zeros((n, h, w, 1), dtype=np.float32)
    if cam.infrared:
        values = _materials_infrared(who, spec, cam.ambient)
        # The pattern's second fabric differs in reflectance and (less) in emissivity; infrared_texture scales
        # how much of that contrast the infrared camera resolves.
        tw, heat = spec.thermal_weight, who.body_heat - cam.ambient
        contrast_sign = 1.0 if who.upper_secondary_nir >= who.upper_nir else -1.0
        full = (tw * (cam.ambient + heat * np.clip(who.upper_emissivity + 0.3 * contrast_sign, 0.05, 1.0))
                + (1 - tw) * who.upper_secondary_nir)
        secondary = values["upper"] + spec.infrared_texture * (full - values["upper"])
    else:
        values = _materials_visible(who)
        secondary = np.array(who.upper_secondary)
    for material, mask, pattern in layers:
        m = np.asarray(mask, dtype=np.float32)[..., None]
        if not m.any():
            continue
        value = np.asarray(values[material], dtype=np.float32).reshape(1, 1, 1, -1)
        if pattern is not None and who.pattern != 0:
            p = np.asarray(pattern, dtype=np.float32)[..., None]
            value = value + (np.asarray(secondary, dtype=np.float32).reshape(1, 1, 1, -1) - value) * p
        # In place, float32: this loop dominates the generation time.
        premult *= 1.0 - m
        premult += value * m
        alpha *= 1.0 - m
        alpha += m
    if cam.infrared:
        # The near-infrared illuminator sits next to the lens: no directional light, and half the body shading;
        # thermal shading is weaker still.
        person_shade = (1.0 + (shade - 1.0) * 0.5 * (1 - 0.7 * spec.thermal_weight))[..., None]
    else:
        light = 1.0 + 0.25 * cam.light_direction * np.clip(u / 0.2, -1.0, 1.0)
        person_shade = (shade * light)[..., None]
    scene = _background(cam, rng, n_bg, h, w)
    if cam.infrared:
        thermal_bg = cam.ambient + 0.08 * _smooth_noise(rng, n_bg, h, w, (4, 2), 1)
        nir_bg = 0.35 * (scene @ _LUMA)[..., None] * 1.3 + 0.1 * _smooth_noise(rng, n_bg, h, w, (6, 3), 1)
        scene = spec.thermal_weight * thermal_bg + (1 - spec.thermal_weight) * nir_bg
    img = premult * person_shade + scene * (1 - alpha)
    # Occluder: a side object (pole, passer-by) or a bottom object (bench, car).
    ys = ((np.arange(h) + 0.5) / h)[None, :, None, None]
    xs = ((np.arange(w) + 0.5) / w)[None, None, :, None]
    start = np.abs(nz.occ_start)[:, None, None, None]
    ext = nz.occ_extent[:, None, None, None]
    left = (nz.occ_start < 0)[:, None, None, None]
    side_occ = (ys > start) & np.where(left, xs < ext, xs > 1 - ext)
    bottom_occ = ys > 1 - ext
    occ = np.where((nz.occ_kind == 0)[:, None, None, None], side_occ, bottom_occ) & nz.occluded[:, None, None, None]
    occ_val = nz.occ_value[:, None, None, None] * (1 + 0.1 * _smooth_noise(rng, n, h, w, (3, 2), 1))
    img = np.where(occ, occ_val if cam.infrared else occ_val * rng.uniform(0.7, 1.3, (n, 1, 1, 3)), img)
    # Camera response.
    gain = nz.gain[:, None, None, None] * cam.brightness
    if cam.infrared:
        # Active near-infrared illumination is steadier than daylight: a third of the visible per-image jitter.
        gain = (1.0 + (nz.gain[:, None, None, None] - 1.0) / 3.0) * cam.brightness
        vignette = 1.0 - 0.3 * ((xs - 0.5) ** 2 * 4 + (ys - 0.5) ** 2 * 4) * (1 - spec.thermal_weight)
        img = img * vignette * gain
        if cam.black_hot:
            img = 1.0 - img
        lo, hi = spec.infrared_noise
    else:
        img = img * gain * np.asarray(cam.cast)
        lo, hi = spec.visible_noise
    img = np.clip(img, 0.0, 1.0)
    noise_std = (lo + (hi - lo) * nz.noise_level).astype(np.float32)[:, None, None, None]
    quantised = (img * 255.0 + 0.5).astype(np.uint8)
    stored = np.empty((n, out_h, out_w, channels), dtype=np.uint8)
    for i in range(n):  # PIL's resize and blur are per image; everything else is batched
        pil = Image.fromarray(quantised[i, ..., 0] if channels == 1 else quantised[i])
        if (h, w) != (out_h, out_w):
            pil = pil.resize((out_w, out_h), Image.BILINEAR)
        if nz.blur[i] > 0.05:
            pil = pil.filter(ImageFilter.GaussianBlur(radius=float(nz.blur[i])))
        stored[i] = np.asarray(pil).reshape(out_h, out_w, channels)
    noisy = stored.astype(np.float32) + rng.standard_normal(stored.shape, dtype=np.float32) * (noise_std * 255.0)
    final = np.clip(noisy + 0.5, 0.0, 255.0).astype(np.uint8)
    if channels == 1:
        final = np.repeat(final, 3, axis=3)
    return list(final)
