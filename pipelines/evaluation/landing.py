"""Did the edit land? After an edit the attribute classifier reads the result, as the evaluator does.

    report = landing(classifier, result.neutral, result.edited, result.settings, model.info.attributes)
    report["notes"]   # e.g. "pacemaker asked, not found in the result (0.18): try ..."
    add_landing(result, model)   # the same into result.settings["landing"] and result.notes, read by
                                 # the model's own classifier where it ships one (classifier.model_classifier)

What was asked: each slider (scale > 0: present; < 0: absent) and each attribute whose phrase the
typed edited prompt adds to the source prompt, or drops from it. An asked-for change lands, as the
evaluator judges it, when the classifier reads the attribute as asked in the result (p >= 0.5
present, the evaluator's threshold) and read it otherwise in the source: an attribute asked for
that the source already showed (or asked away that it already lacked) did not land, the edit
changed nothing the classifier reads, and is said so. An asked-for attribute the
classifier does not find, or a removed one it still finds,
is said with its probability and the remedies the evaluator shows work: an earlier swap, a
stronger slider (a value within the model's range for it, none at its end), and for an uploaded image redraw fine detail (refresh; removing hair lands in
98.0% of edits at 0.2 against 85.5% at 0). An attribute not asked for that the classifier reads
differently before and after (it crosses 0.5) is said too. Only the result's modality's
attributes are read. A dermoscopy result with no lesion where the prompt names one is said too,
by a classifier with a lesion output (lesion_check.py).
"""

from __future__ import annotations

from pipelines.core.limits import SLIDER_RANGE
from pipelines.data.attributes import modality_of
from pipelines.evaluation.classifier import OUTPUTS, model_classifier, predict_probs
from pipelines.evaluation.lesion_check import lesion_landing

PRESENT = 0.5  # the evaluator's threshold


def asked(settings: dict, attributes: list[dict]) -> dict[str, bool]:
    """Attribute name -> wanted present (True) or absent (False), from the sliders and the typed
    edited prompts."""
    wanted = {}
    for a in attributes:
        channel, phrase = a["channel"], a["phrase"].lower()
        source = settings[channel].lower()
        edited = (settings[f"to_{channel}"] or settings[channel]).lower()
        if phrase in edited and phrase not in source:
            wanted[a["name"]] = True
        elif phrase in source and phrase not in edited:
            wanted[a["name"]] = False
    for name, scale in (settings.get("sliders") or {}).items():
        if scale:
            wanted[name] = scale > 0
    return wanted


def stronger_slider(attribute: dict, scale: float, present: bool) -> str | None:
    """A slider value further toward what was asked, within the model's range for it; None at its end."""
    low, high = attribute.get("range", SLIDER_RANGE)
    end = high if present else low
    target = min(high, scale + 0.5) if present else max(low, scale - 0.5)
    return None if target == scale or scale == end else f"the {attribute['name'].replace('_', ' ')} slider at {target:g}"


def remedy(attribute: dict, scale: float, present: bool, upload: bool) -> str:
    steps = ["an earlier swap (swap_at lower, e.g. 0.1)"]
    slider = stronger_slider(attribute, scale, present)
    if slider:
        steps.append(slider)
    if upload and not present:
        steps.append("redraw fine detail (refresh 0.2)")
    return "try " + (", ".join(steps[:-1]) + " or " if len(steps) > 1 else "") + steps[-1]


def landing(classifier, neutral, edited, settings: dict, attributes: list[dict]) -> dict:
    """{"asked": {name: {"wanted", "probability", "before", "landed", "already"}},
    "changed": {name: [before, after]},
    "notes": [...]} for one edit (neutral and edited [H, W, 3] uint8)."""
    modality = modality_of(settings["anatomy"], settings["style"], settings["to_anatomy"])
    names = [a["name"] for a in attributes if a.get("modality") == modality and a["name"] in OUTPUTS]
    wanted = {name: want for name, want in asked(settings, attributes).items() if name in names}
    before, after = predict_probs(classifier, [neutral, edited])
    probability = {name: (float(before[OUTPUTS.index(name)]), float(after[OUTPUTS.index(name)])) for name in names}
    upload = settings.get("source") == "upload"
    by_name = {a["name"]: a for a in attributes}
    report, notes = {"asked": {}, "changed": {}}, []
    for name, want in wanted.items():
        p0, p = probability[name]
        already = (p0 >= PRESENT) == want  # the source read as asked: nothing for the edit to do
        landed = (p >= PRESENT) == want and not already
        report["asked"][name] = {"wanted": "present" if want else "absent", "probability": round(p, 3),
                                 "before": round(p0, 3), "landed": landed, "already": already}
        shown = name.replace("_", " ")
        if already:
            state = "in the source" if want else "absent from the source"
            notes.append(f"{shown} asked {'' if want else 'away '}but already {state} ({p0:.2f} before, "
                         f"{p:.2f} after): the classifier sees nothing for this edit to change")
        elif not landed:
            what = (f"{shown} asked, not found in the result ({p:.2f})" if want
                    else f"{shown} asked away, still in the result ({p:.2f})")
            scale = (settings.get("sliders") or {}).get(name, 0.0)
            notes.append(f"{what}: {remedy(by_name[name], scale, want, upload)}")
    for name, (p0, p1) in probability.items():
        if name not in wanted and (p0 >= PRESENT) != (p1 >= PRESENT):
            report["changed"][name] = [round(p0, 3), round(p1, 3)]
            verb = "appeared" if p1 >= PRESENT else "disappeared"
            notes.append(f"not asked, but {name.replace('_', ' ')} {verb} ({p0:.2f} -> {p1:.2f}): "
                         "a keep mask or a higher 'Keep the rest' (locality) holds it")
    if modality == "dermoscopy":  # every dermoscopy prompt names a lesion; a model can still draw none
        lesion, lesion_notes = lesion_landing(before, after, settings)
        if lesion is not None:  # a classifier without the lesion output says nothing of it
            report["lesion"] = lesion
        notes += lesion_notes
    report["notes"] = notes
    return report


def shipped_classifier():
    """The default classifier (assets/classifier): the one that reads a model without its own."""
    return model_classifier()


def add_landing(result, model, classifier=None):
    """An edit's result with what the classifier reads in it: settings "landing" (asked and
    changed) and a note for each edit that did not land or attribute that changed unasked.
    `model` is the LoadedModel that made it: its attributes, and its own classifier where it ships
    one (default: model_classifier(model.domain_folder))."""
    classifier = classifier or model_classifier(model.domain_folder)
    report = landing(classifier, result.neutral, result.edited, result.settings, model.info.attributes)
    result.notes = list(result.notes) + report.pop("notes")
    result.settings["landing"] = report
    return result
