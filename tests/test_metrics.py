"""Edit metrics on constructed editors whose right answers are known by hand."""

import numpy as np
import pytest
from scipy import ndimage

from pipelines.core.errors import MedEditError
from pipelines.evaluation.metrics import (attribute_accuracy, cfrt, cfrt_per_seed, edit_footprint,
                                          flips_by_attribute, no_non_target_flip_rate, non_target_flips,
                                          psnr_outside, ssim_outside)

S, T, K, TARGET = 6, 3, 4, 1


def _neutral():
    rng = np.random.default_rng(0)
    return rng.uniform(0.05, 0.35, (S, K))  # all labels off under threshold 0.5


def _image(seed=0, h=32, w=32):
    rng = np.random.default_rng(seed)
    # smooth random texture, contrast-stretched, so SSIM has structure to compare
    base = np.clip(ndimage.gaussian_filter(rng.uniform(0, 1, (h, w, 3)), (2, 2, 0)) * 2 - 0.5, 0, 1)
    return (base * 255).round().astype(np.uint8)


def _box_mask(h=32, w=32):
    m = np.zeros((h, w), bool)
    m[2:8, 2:8] = True
    return m


# ---------------------------------------------------------------- three constructed editors

def test_perfect_editor():
    pn = _neutral()
    pe = np.repeat(pn[:, None, :], T, axis=1)
    pe[:, :, TARGET] = 0.95  # the target jumps, nothing else moves
    assert cfrt(pn, pe, TARGET) == 1.0
    assert no_non_target_flip_rate(pn, pe, TARGET) == 1.0
    # the prompt asked for the target on, the classifier sees exactly that
    intended = np.zeros((S, K), int)
    intended[:, TARGET] = 1
    assert attribute_accuracy(pe[:, 0], intended)["mean"] == 1.0

    neutral, mask = _image(), _box_mask()
    edited = neutral.copy()
    edited[mask] = 255  # only the target's pixels change
    assert psnr_outside(neutral, edited, mask) == 100.0
    assert ssim_outside(neutral, edited, mask) == pytest.approx(1.0)


def test_identity_editor():
    pn = _neutral()
    pe = np.repeat(pn[:, None, :], T, axis=1)
    assert cfrt(pn, pe, TARGET) == 0.0  # all Deltas 0: the strict '>' never holds
    assert no_non_target_flip_rate(pn, pe, TARGET) == 1.0
    img = _image(1)
    assert psnr_outside(img, img.copy(), _box_mask()) == 100.0
    assert psnr_outside(img, img.copy()) == 100.0
    assert ssim_outside(img, img.copy()) == pytest.approx(1.0, abs=1e-12)
    assert ssim_outside(img, img.copy(), on="luminance") == pytest.approx(1.0, abs=1e-12)


def test_wrong_attribute_editor():
    pn = _neutral()
    pe = np.repeat(pn[:, None, :], T, axis=1)
    pe[:, :, 3] = 0.9  # edits attribute 3 instead of the target
    assert cfrt(pn, pe, TARGET) == 0.0
    assert non_target_flips(pn, pe, TARGET).all()
    assert no_non_target_flip_rate(pn, pe, TARGET) == 0.0
    # ignoring column 3 in the flip check hides it; the target alone is never counted
    assert no_non_target_flip_rate(pn, pe, TARGET, attribute_indices=[0, 2]) == 1.0
    assert no_non_target_flip_rate(pn, pe, 3) == 1.0


# ---------------------------------------------------------------- CFRT by hand

def test_cfrt_hand_computed():
    # dyadic values, so the Deltas are exact and the tie in seed 0 is a real tie
    pn = np.array([[0.25, 0.25, 0.25],
                   [0.5, 0.5, 0.5]])
    pe = np.array([
        # seed 0: Deltas per column mean(.5,.25,0)=.25, .25, mean(0,.25,.5)=.25 -> tie, no flip
        [[0.75, 0.5, 0.25], [0.5, 0.5, 0.5], [0.25, 0.5, 0.75]],
        # seed 1: Deltas [-.125, +.375, +.125]
        [[0.375, 0.875, 0.625]] * 3,
    ])
    np.testing.assert_array_equal(cfrt_per_seed(pn, pe, 1), [False, True])
    assert cfrt(pn, pe, 1) == 0.5
    assert cfrt(pn, pe, 2) == 0.0   # seed 1: .125 < .375
    assert cfrt(pn, pe, 0) == 0.0
    # restricting the comparison: seed 1 target 2 vs column 0 only (.125 > -.125) flips
    np.testing.assert_array_equal(cfrt_per_seed(pn, pe, 2, attribute_indices=[0, 2]),
                                  [False, True])
    # names work like indices
    assert cfrt(pn, pe, "b", names=("a", "b", "c")) == 0.5


def test_cfrt_signed_and_direction():
    pn = np.array([[0.8, 0.5, 0.5]])
    pe = np.array([[[0.2, 0.3, 0.5]]])  # target 0 drops .6, column 1 drops .2, column 2 flat
    assert cfrt(pn, pe, 0) == 0.0            # adding: -.6 is not above -.2 or 0
    assert cfrt(pn, pe, 0, direction=-1) == 1.0  # removing: +.6 beats the signed -.2 and 0
    # others stay signed: a non-target that drops more than the target rises still loses
    pn2 = np.array([[0.2, 0.9]])
    pe2 = np.array([[[0.4, 0.1]]])  # target +.2, other -.8: signed -.8 < .2 -> flips
    assert cfrt(pn2, pe2, 0) == 1.0
    # [S, K] edits are read as T = 1
    assert cfrt(pn2, pe2[:, 0], 0) == 1.0


def test_cfrt_rejects_bad_input():
    pn = np.full((2, 3), 0.5)
    with pytest.raises(MedEditError, match="does not match"):
        cfrt(pn, np.full((2, 2, 4), 0.5), 0)
    with pytest.raises(MedEditError, match="NaN"):
        cfrt(np.array([[np.nan, 0.1, 0.2]]), np.full((1, 1, 3), 0.5), 0)
    with pytest.raises(MedEditError, match=r"\[0, 1\]"):
        cfrt(pn, np.full((2, 1, 3), 1.5), 0)
    with pytest.raises(MedEditError, match="out of range"):
        cfrt(pn, np.full((2, 1, 3), 0.5), 3)
    with pytest.raises(MedEditError, match="direction"):
        cfrt(pn, np.full((2, 1, 3), 0.5), 0, direction=0)
    with pytest.raises(MedEditError, match="besides the target"):
        cfrt(pn, np.full((2, 1, 3), 0.5), 0, attribute_indices=[0])
    with pytest.raises(MedEditError, match="unknown attribute"):
        cfrt(pn, np.full((2, 1, 3), 0.5), "ink", names=("a", "b", "c"))


# ---------------------------------------------------------------- labels

def test_attribute_accuracy():
    probs = np.array([[0.9, 0.2], [0.6, 0.7], [0.1, 0.4], [0.5, 0.49]])
    labels = np.array([[1, 0], [0, 1], [0, 1], [1, 0]])
    acc = attribute_accuracy(probs, labels, names=("hair", "ink"))
    np.testing.assert_allclose(acc["per_attribute"], [0.75, 0.75])  # 0.5 counts as positive
    assert acc["mean"] == pytest.approx(0.75)
    assert acc["by_name"] == {"hair": 0.75, "ink": 0.75}
    with pytest.raises(MedEditError, match="0 or 1"):
        attribute_accuracy(probs, labels * 0.7)
    with pytest.raises(MedEditError, match="differ in shape"):
        attribute_accuracy(probs[:, :1], labels)


# ---------------------------------------------------------------- preservation

def test_edit_footprint_is_where_a_pixel_moved_more_than_24_levels_in_some_channel():
    neutral = np.full((2, 3, 3), 100, np.uint8)
    edited = neutral.copy()
    edited[0, 0, 2] = 124  # exactly the threshold: not part of the edit
    edited[0, 1, 1] = 125  # one level more, in one channel: part of it
    edited[1, 2] = 60
    assert edit_footprint(neutral, edited).tolist() == [[False, True, False], [False, False, True]]
    assert edit_footprint(neutral / 255, edited / 255).tolist() == edit_footprint(neutral, edited).tolist()
    with pytest.raises(MedEditError, match="differ in shape"):
        edit_footprint(neutral, edited[:1])


def test_psnr_of_known_noise():
    img = np.full((64, 64, 3), 0.5)
    noise = np.where(np.random.default_rng(0).random(img.shape) < 0.5, -0.1, 0.1)
    assert psnr_outside(img, img + noise) == pytest.approx(20.0)  # MSE .01 exactly
    mask = np.zeros((64, 64), bool)
    mask[:32] = True
    noisy = img.copy()
    noisy[mask] = 1.0  # huge change inside the mask is ignored
    noisy[~mask] += noise[~mask]
    assert psnr_outside(img, noisy, mask) == pytest.approx(20.0)
    with pytest.raises(MedEditError, match="whole image"):
        psnr_outside(img, noisy, np.ones((64, 64), bool))
    with pytest.raises(MedEditError, match="does not match"):
        psnr_outside(img, noisy, np.ones((8, 8), bool))
    with pytest.raises(MedEditError, match="differ in shape"):
        psnr_outside(img, img[:10])
    with pytest.raises(MedEditError, match=r"\[0, 1\]"):
        psnr_outside(img * 255, img)


def test_ssim_shift_and_mask_dilation():
    img = _image(2, 40, 40)
    shifted = np.roll(img, 2, axis=1)
    s = ssim_outside(img, shifted)
    assert 0 < s < 0.99
    # a change inside the mask leaves SSIM outside its dilation at exactly 1
    mask = np.zeros((40, 40), bool)
    mask[15:25, 15:25] = True
    edited = img.copy()
    edited[mask] = 0
    assert ssim_outside(img, edited, mask) == pytest.approx(1.0, abs=1e-12)
    # without the mask the change shows
    assert ssim_outside(img, edited) < 0.99
    with pytest.raises(MedEditError, match="no pixel left"):
        ssim_outside(img[:10, :10], img[:10, :10])
    with pytest.raises(MedEditError, match="luminance"):
        ssim_outside(img, img, on="rgb")


def test_flips_by_attribute_says_which_label_moved_and_which_way():
    pn = _neutral()  # every label off
    pn[0, 3] = 0.9  # seed 0 has attribute 3 on
    pe = np.repeat(pn[:, None, :], T, axis=1)
    pe[:, :, TARGET] = 0.95
    pe[1, :, 2] = 0.8  # seed 1: attribute 2 turns on at every swap point
    pe[0, 0, 3] = 0.1  # seed 0: attribute 3 turns off at the first swap point only
    names = ["a", "b", "c", "d"]
    flips = flips_by_attribute(pn, pe, "b", names)
    assert set(flips) == {"a", "c", "d"}  # the target is not a flip
    assert flips["a"] == {"on": 0.0, "off": 0.0}
    assert flips["c"] == {"on": pytest.approx(1 / S), "off": 0.0}
    assert flips["d"] == {"on": 0.0, "off": pytest.approx(1 / (S * T))}
    with pytest.raises(MedEditError, match="names"):
        flips_by_attribute(pn, pe, 1, names[:3])
