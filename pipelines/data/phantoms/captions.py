"""Anatomy and style captions whose wording varies by seed.

Whenever a binary attribute is on, its registry phrase appears verbatim in its channel's caption;
when it is off, no wording containing the phrase is used. Each slot picks its synonym from its own
stream, so changing one factor rarely rewords the rest of the caption.
"""

from pipelines.data.attributes import attributes_of
from pipelines.data.phantoms.drawing import unit_hash


def _pick(seed: int, slot: str, options):
    options = tuple(options)
    return options[int(unit_hash(seed, "caption:" + slot) * len(options))]


def _shuffled(seed: int, slot: str, items: list) -> list:
    return sorted(items, key=lambda item: unit_hash(seed, f"caption:{slot}:{item}"))


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _phrases(modality: str, channel: str, factors: dict) -> dict[str, str]:
    return {a.name: a.phrase for a in attributes_of(modality, channel) if factors[a.name]}


# --- dermoscopy --------------------------------------------------------------------------------

def _lesion_size_words(size: float) -> tuple[str, ...]:
    if size < 0.3:
        return ("small", "small", "little")
    if size < 0.4:
        return ("medium-sized", "moderate-sized", "mid-sized")
    if size < 0.48:
        return ("large", "large", "sizeable")
    return ("very large", "extensive", "very large")


def _position_words(x: float, y: float) -> tuple[str, ...]:
    dx, dy = x - 0.5, y - 0.5
    if abs(dx) < 0.04 and abs(dy) < 0.04:
        return ("centred", "in the centre", "in the middle of the field")
    vert = "top" if dy < -0.04 else "bottom" if dy > 0.04 else ""
    horiz = "left" if dx < -0.04 else "right" if dx > 0.04 else ""
    where = " ".join(w for w in (vert, horiz) if w)
    return (f"in the {where} part of the field", f"slightly off-centre towards the {where}",
            f"towards the {where}")


def _a(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _skin_words(tone: float) -> tuple[str, ...]:
    bands = (("fair skin", "very light skin", "pale skin"), ("light skin", "light skin", "lightly tanned skin"),
             ("medium skin", "olive skin", "medium-toned skin"), ("brown skin", "tan-brown skin", "brown skin"),
             ("dark skin", "dark brown skin", "deeply pigmented skin"))
    return bands[min(int(tone * 5), 4)]


def _lighting_words(light: float) -> tuple[str, ...]:
    if light < 0.33:
        return ("dim lighting", "low illumination", "dim light")
    if light < 0.66:
        return ("even lighting", "normal illumination", "moderate light")
    return ("bright lighting", "strong illumination", "bright light")


def _no_lesion(seed: int) -> str:
    return _pick(seed, "anatomy-no-lesion", (
        "a dermoscopic image of skin with no lesion",
        "dermoscopy of normal skin, no lesion",
        "close-up dermoscopic view of bare skin, no lesion in the field",
    ))


def _dermoscopy(f: dict, seed: int) -> tuple[str, str]:
    mel = f["melanoma"]
    lesion = "melanoma (MEL)" if mel else "melanocytic nevus (NV)"
    look = _pick(seed, "look", ("asymmetric multicoloured", "irregular, asymmetric", "irregularly bordered")
                 if mel else ("symmetric, evenly brown", "round, regular", "evenly pigmented oval"))
    size = _pick(seed, "size", _lesion_size_words(f["lesion_size"]))
    where = _pick(seed, "position", _position_words(f["lesion_x"], f["lesion_y"]))
    anatomy = _pick(seed, "anatomy", (
        f"a dermoscopic image with {lesion}, {_a(size)} {look} lesion {where}",
        f"a dermoscopic image with {lesion}; {size} lesion {where}",
        f"dermoscopy of {_a(size)} {look} lesion {where}, {lesion}",
        f"{lesion}: {size} {look} lesion {where}, dermoscopic view",
        f"close-up dermoscopic view of {lesion}, {size}, {where}",
    )) if f["lesion"] else _no_lesion(seed)
    skin = _pick(seed, "skin", _skin_words(f["skin_tone"]))
    light = _pick(seed, "lighting", _lighting_words(f["lighting"]))
    arts = _shuffled(seed, "artifact order", list(_phrases("dermoscopy", "style", f).values()))
    arts_text = ", ".join(arts) if arts else _pick(seed, "clean", ("no artifacts", "clean skin", "artifact-free"))
    style = _pick(seed, "style", (
        f"{skin}, {light}, {arts_text}",
        f"{skin} under {light}, {arts_text}",
        f"dermoscopy photo, {skin}, {light}, {arts_text}",
        f"{arts_text}; {skin} in {light}",
    ))
    return anatomy, style


# --- chest X-ray -------------------------------------------------------------------------------

def _cxr(f: dict, seed: int) -> tuple[str, str]:
    findings = []
    if f["effusion"]:
        side = f["effusion_side"]
        findings.append(_pick(seed, "effusion", (
            "pleural effusion on both sides" if side == "both" else f"pleural effusion on the {side}",
            "bilateral pleural effusions" if side == "both" else f"{side}-sided pleural effusion",
            "bilateral pleural effusions with blunted angles" if side == "both"
            else f"{side} pleural effusion blunting the costophrenic angle",
        )))
    if f["cardiomegaly"]:
        findings.append(_pick(seed, "cardiomegaly", (
            "cardiomegaly", "cardiomegaly with an enlarged cardiac silhouette",
            "cardiomegaly (cardiothoracic ratio above 0.5)")))
    if f["opacity"]:
        where = f"{f['opacity_side']} {f['opacity_zone']} zone"
        findings.append(_pick(seed, "opacity", (f"a focal lung opacity in the {where}",
                                                f"a focal lung opacity, {where}")))
    heart = "" if f["cardiomegaly"] else _pick(seed, "heart", (
        "normal heart size", "normal cardiac silhouette", "heart size within normal limits"))
    if not findings:
        anatomy = _pick(seed, "anatomy-normal", (
            f"Normal chest X-ray with no significant findings, {heart}",
            f"Normal chest X-ray with no significant findings; clear lungs, {heart}",
            f"Frontal chest radiograph with clear lungs and {heart}, no significant findings",
            "Normal chest X-ray with no significant findings",
        ))
    else:
        findings = _shuffled(seed, "finding order", findings)
        lead = _pick(seed, "anatomy-lead", ("Chest X-ray showing", "Chest radiograph showing",
                                            "Frontal chest X-ray with", "CXR demonstrating"))
        anatomy = f"{lead} {_join(findings)}" + (f", {heart}" if heart else "")
    view = _pick(seed, "view", ("PA view", "posteroanterior projection", "PA radiograph") if f["view"] == "PA"
                 else ("AP view", "anteroposterior portable projection", "AP radiograph"))
    e = f["exposure"]
    exposure = _pick(seed, "exposure", ("underexposure", "a light, underexposed film", "low exposure") if e < 0.9 else
                     ("good exposure", "adequate exposure", "normal exposure") if e <= 1.1 else
                     ("overexposure", "a dark, overexposed film", "high exposure"))
    n = f["noise"]
    noise = _pick(seed, "noise", ("low noise", "little grain", "little noise") if n < 0.33 else
                  ("moderate noise", "some quantum mottle", "mild grain") if n < 0.66 else
                  ("heavy noise", "marked grain", "marked quantum mottle"))
    devices = list(_phrases("cxr", "style", f).values())
    if devices:
        devices = _shuffled(seed, "device order", devices)
        extra = _pick(seed, "style-lead", ("showing", "with", "including"))
        tail = f"{extra} {_join(devices)}"
    else:
        tail = _pick(seed, "no-devices", ("no lines, tubes or hardware", "no devices", "no hardware visible"))
    style = _pick(seed, "style", (f"{view}, {exposure}, {noise}, {tail}", f"{tail}; {view}, {exposure}, {noise}",
                                  f"{view} with {exposure} and {noise}, {tail}"))
    return anatomy, style


def caption(modality: str, factors: dict, seed: int) -> tuple[str, str]:
    """(anatomy caption, style caption) for complete, checked factors."""
    return (_dermoscopy if modality == "dermoscopy" else _cxr)(factors, seed)
