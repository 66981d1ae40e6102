"""Every setting that made an export, in words, for the ZIP's README.txt and the DICOM description
(manifest.json and each file's provenance JSON hold the same values): the guidance, the swap step,
the locality, each slider's value, a series' shape and an upload's inversion and refresh. The
model, prompts, seed, swap point and steps are said beside them by each writer."""


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _signed(pairs) -> str:
    return ", ".join(f"{name} {float(value):+g}" for name, value in pairs)


def setting_phrases(record: dict) -> list[str]:
    """Short phrases, in a fixed order, for every setting a provenance record (Provenance.as_dict)
    holds; a setting the record lacks is left out, never guessed."""
    x, phrases = record.get("extra") or {}, []
    if "anatomy_scale" in x or "style_scale" in x:
        phrases.append(f"guidance anatomy {_number(x.get('anatomy_scale'))}, style {_number(x.get('style_scale'))}")
    if "swap_step" in x:
        phrases.append(f"swap step {x['swap_step']} of {record.get('steps')}")
    if "locality" in x:
        phrases.append(f"locality {_number(x['locality'])}")
    if "sliders" in x:
        phrases.append("sliders " + (_signed(sorted(x["sliders"].items())) or "none moved"))
    if "mode" in x:
        phrases.append(f"series {x['mode']} mode, {x.get('frames')} frames, {x.get('control_points')} "
                       f"control points, bend {_number(x.get('bend'))}")
    if "inversion" in x:
        phrases.append(f"inversion {x['inversion']}, seed {x.get('inversion_seed')}")
    if "refresh" in x:
        phrases.append(f"refresh {_number(x['refresh'])}")
    if x.get("terms"):
        phrases.append("edit terms " + _signed((t["name"], t["weight"]) for t in x["terms"]))
    return phrases
