"""Reading what a user uploads (data/uploads.py, data/dicom_upload.py): every format the issue
names, made by the real writers, and hostile or broken files refused with a clear message."""

import numpy as np
import pytest
from PIL import Image
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, RLELossless

from pipelines.core.errors import MedEditError
from pipelines.core.limits import MAX_UPLOAD_BYTES
from pipelines.data.uploads import as_rgb_array, fit, fit_mask, read_image, read_mask
from tests.upload_files import (dicom_bytes, dicom_dataset, encapsulated_dicom, jpeg_bomb, jpeg_bytes,
                                jpeg_extended_12_bit_dicom, jpeg_ls_dicom, pillow_codestream, png_bomb, png_bytes,
                                report_dicom)

RNG = np.random.default_rng(0)
GREY = RNG.integers(0, 256, (48, 40), dtype=np.uint8)
RGB = RNG.integers(0, 256, (48, 40, 3), dtype=np.uint8)


def test_png_8_bit_grey_and_rgb_are_read_exactly():
    grey = read_image(png_bytes(GREY))
    assert grey.kind == "PNG" and grey.pixels.shape == (48, 40, 3) and not grey.notes
    assert np.array_equal(grey.pixels[..., 0], GREY) and np.array_equal(grey.pixels[..., 2], GREY)
    assert np.array_equal(read_image(png_bytes(RGB)).pixels, RGB)


def test_png_16_bit_grey_keeps_its_8_bit_values():
    decoded = read_image(png_bytes(GREY.astype(np.uint16) * 257, "I;16"))
    assert np.array_equal(decoded.pixels[..., 0], GREY)
    assert any("16-bit" in note and "full 16-bit range" in note for note in decoded.notes)


def test_png_16_bit_using_12_bits_is_stretched_from_its_range_not_black():
    decoded = read_image(png_bytes((GREY.astype(np.uint16) * 16).astype(np.uint16), "I;16"))
    assert decoded.pixels.max() == 255 and any("own range" in note for note in decoded.notes)


def test_png_rgba_is_flattened_onto_black_with_a_note():
    alpha = np.full((48, 40), 255, np.uint8)
    alpha[:, :20] = 0
    decoded = read_image(png_bytes(np.dstack([RGB, alpha])))
    assert decoded.pixels[:, :20].max() == 0 and np.array_equal(decoded.pixels[:, 20:], RGB[:, 20:])
    assert any("transparent" in note for note in decoded.notes)
    opaque = read_image(png_bytes(np.dstack([RGB, np.full((48, 40), 255, np.uint8)])))
    assert np.array_equal(opaque.pixels, RGB) and not opaque.notes


def test_jpeg_is_read_and_turned_upright_by_its_exif_orientation():
    smooth = np.zeros((48, 40, 3), np.uint8)
    smooth[:24] = (200, 120, 90)  # top half skin-coloured, bottom half black
    plain = read_image(jpeg_bytes(smooth, quality=95))
    assert plain.kind == "JPEG" and plain.pixels.shape == (48, 40, 3) and not plain.notes
    assert np.abs(plain.pixels.astype(int) - smooth).mean() < 3  # lossy, but the same picture
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    turned = read_image(jpeg_bytes(smooth, quality=95, exif=exif.tobytes()))
    assert turned.pixels.shape == (40, 48, 3) and any("EXIF" in note for note in turned.notes)
    assert turned.pixels[:, -5:].mean() > 100 and turned.pixels[:, :5].mean() < 10  # top went right


def test_fit_resizes_the_shorter_side_and_crops_the_centre_with_a_note():
    wide = np.zeros((100, 300, 3), np.uint8)
    wide[:, 100:200] = 255  # the centre third is white: the crop keeps exactly it
    upload = fit(read_image(png_bytes(wide)), 64)
    assert upload.image.shape == (64, 64, 3) and upload.image.min() >= 250
    assert upload.source_size == (300, 100)
    assert "resized from 300x100 to 192x64 and centre-cropped to 64x64" in upload.notes
    assert fit(read_image(png_bytes(np.zeros((64, 64, 3), np.uint8))), 64).notes == []
    small = fit(read_image(png_bytes(RGB)), 64)  # enlarged
    assert small.image.shape == (64, 64, 3) and "resized from 40x48 to 64x77" in small.notes[0]


def test_a_mask_follows_its_image_through_the_same_geometry():
    mask = np.zeros((100, 300), bool)
    mask[:, :150] = True  # the left half of the image: the left half of the centre crop
    fitted = fit_mask(mask, 64)
    assert fitted.shape == (64, 64) and fitted[:, :31].all() and not fitted[:, 33:].any()
    rgba = np.zeros((100, 300, 4), np.uint8)
    rgba[:, :150, 3] = 255  # painted where opaque
    assert np.array_equal(read_mask(png_bytes(rgba)), mask)
    assert np.array_equal(read_mask(png_bytes(mask.astype(np.uint8) * 255)), mask)


def test_dicom_rescale_and_window_are_applied():
    stored = np.tile(np.arange(0, 4096, 64, dtype=np.uint16), (8, 1))  # 8 x 64 ramp, 12 bits
    # Hounsfield-like: value = stored - 1024; the window 0 +- 1000 shows -1000..1000.
    ds = dicom_dataset(stored, RescaleSlope=1, RescaleIntercept=-1024, WindowCenter=0, WindowWidth=2000)
    decoded = read_image(dicom_bytes(ds))
    row = decoded.pixels[0, :, 0].astype(int)
    hu = stored[0].astype(int) - 1024
    assert (row[hu <= -1000] == 0).all() and (row[hu >= 1000] == 255).all()
    middle = (hu > -900) & (hu < 900)
    expected = np.round(((hu[middle] + 0.5) / 1999 + 0.5) * 255)  # PS3.3 C.11.2.1.2 LINEAR
    assert np.abs(row[middle] - expected).max() <= 1
    assert "rescale slope 1 and intercept -1024 applied" in decoded.notes
    assert "window centre 0, width 2000 applied" in decoded.notes


def test_dicom_monochrome1_is_inverted_and_multi_frame_gives_its_first_frame():
    stored = np.stack([np.full((16, 16), 100, np.uint16), np.full((16, 16), 4000, np.uint16)])
    stored[0, 0, 0] = 0  # a range to scale by
    decoded = read_image(dicom_bytes(dicom_dataset(stored, frames=2)))
    assert decoded.pixels[1, 1, 0] == round(255 * 100 / 100)  # frame 0 scaled by its own range
    assert "the DICOM file holds 2 frames; the first is used" in decoded.notes
    mono1 = read_image(dicom_bytes(dicom_dataset(stored[0], photometric="MONOCHROME1")))
    assert mono1.pixels[1, 1, 0] == 0 and mono1.pixels[0, 0, 0] == 255
    assert any("MONOCHROME1 inverted" in note for note in mono1.notes)


def test_dicom_compressed_with_a_decoder_present_is_read():
    stored = RNG.integers(0, 4096, (32, 24), dtype=np.uint16)
    ds = dicom_dataset(stored, WindowCenter=2048, WindowWidth=4096)
    ds.compress(RLELossless)  # pydicom's own RLE encoder and decoder
    plain = read_image(dicom_bytes(dicom_dataset(stored, WindowCenter=2048, WindowWidth=4096)))
    assert np.array_equal(read_image(dicom_bytes(ds)).pixels, plain.pixels)


def test_the_file_sha256_is_of_its_bytes():
    import hashlib
    data = png_bytes(GREY)
    assert read_image(data).sha256 == hashlib.sha256(data).hexdigest()


HOSTILE = {
    "bomb": (png_bomb(), "too large to decode"),
    "bomb within Pillow's limit": (png_bomb(9000, 9000), "81 megapixels; at most 40 are accepted"),
    "JPEG bomb": (jpeg_bomb(), "9000x9000 = 81 megapixels"),
    "truncated PNG": (png_bytes(RGB)[:200], "PNG image is corrupt or truncated"),
    "corrupt PNG": (png_bytes(RGB)[:60] + b"\x00" * 40 + png_bytes(RGB)[100:], "corrupt or truncated"),
    "truncated JPEG": (jpeg_bytes(RGB)[:300], "JPEG image is corrupt or truncated"),
    "not an image": (b"%PDF-1.4 not an image at all" * 10, "not a PNG, JPEG or DICOM file"),
    "empty": (b"", "file is empty"),
    "DICOM without pixel data": (report_dicom(), "no image (no pixel data)"),
    "DICOM JPEG-LS without decoder": (jpeg_ls_dicom(np.zeros((8, 8), np.uint16)),
                                      "compressed as JPEG-LS Lossless Image Compression, and no decoder"),
    "truncated DICOM": (dicom_bytes(dicom_dataset(np.zeros((64, 64), np.uint16)))[:-1000],
                        "DICOM file is truncated: its pixel data holds"),
    "DICOM cut before its pixels": (dicom_bytes(dicom_dataset(np.zeros((8, 8), np.uint16)))[:400],
                                    "no image (no pixel data)"),
    "DICOM preamble only": (b"\0" * 128 + b"DICM" + b"\x02\x00", "DICOM file is corrupt or truncated"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_or_broken_files_are_refused_with_a_message(name):
    data, message = HOSTILE[name]
    with pytest.raises(MedEditError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_image(data)


def test_a_huge_dicom_frame_is_refused_before_decoding():
    ds = dicom_dataset(np.zeros((8, 8), np.uint16))
    ds.Rows, ds.Columns = 20_000, 20_000  # the header lies: 400 megapixels
    with pytest.raises(MedEditError, match="20000x20000 = 400 megapixels"):
        read_image(dicom_bytes(ds))


@pytest.mark.parametrize("format, syntax", [("JPEG", JPEGBaseline8Bit), ("JPEG2000", JPEG2000Lossless)])
def test_a_compressed_frame_larger_than_its_header_says_is_refused_before_decoding(format, syntax):
    data = encapsulated_dicom(pillow_codestream(3000, 2000, format), syntax, rows=64, columns=64)
    with pytest.raises(MedEditError, match="the DICOM header says 64x64, its pixel data is 3000x2000"):
        read_image(data)
    honest = read_image(encapsulated_dicom(pillow_codestream(24, 16, format), syntax, rows=16, columns=24))
    assert honest.pixels.shape == (16, 24, 3)


def test_a_12_bit_jpeg_extended_dicom_says_which_decoder_it_needs():
    with pytest.raises(MedEditError, match=r"compressed with JPEG Extended \(12-bit\).*install pylibjpeg"):
        read_image(jpeg_extended_12_bit_dicom())


def test_uncompressed_pixel_data_longer_than_the_header_says_is_refused_quietly(capfd):
    ds = dicom_dataset(np.zeros((64, 64), np.uint16))
    ds.PixelData = np.zeros((600, 600), np.uint16).tobytes()  # 87 frames' worth for a 1-frame header
    with pytest.raises(MedEditError, match=r"header says 64x64 \(1 frame\(s\) of 16 bits: 8192 bytes\), its "
                                           "pixel data holds 720000 bytes"):
        read_image(dicom_bytes(ds))
    assert capfd.readouterr().err == ""  # pydicom's own warning never reaches stderr


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.png"
    with open(path, "wb") as f:
        f.truncate(MAX_UPLOAD_BYTES + 1)  # sparse: nothing is written, the size is what counts
    with pytest.raises(MedEditError, match="at most 64 MiB is accepted"):
        read_image(path)
    with pytest.raises(MedEditError, match="does not exist"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(MedEditError, match="is not a file"):
        read_image(tmp_path)


def test_messages_never_quote_dicom_identifiers():
    from tests.upload_files import identifiers
    ds = dicom_dataset(np.zeros((64, 64), np.uint16))
    broken = [dicom_bytes(ds)[:-1000], dicom_bytes(ds)[:400]]
    for data in broken:
        with pytest.raises(MedEditError) as caught:
            read_image(data)
        assert not any(value in str(caught.value) for value in identifiers(ds))
    decoded = read_image(dicom_bytes(ds))
    assert not any(value in " ".join(decoded.notes) for value in identifiers(ds))


def test_arrays_from_an_app_are_taken_grey_rgb_or_rgba():
    assert as_rgb_array(GREY).shape == (48, 40, 3)
    assert np.array_equal(as_rgb_array(RGB), RGB)
    with pytest.raises(MedEditError, match="uint8 array"):
        as_rgb_array(GREY.astype(np.float32))


BURNED_IN = {  # elements -> the reason the refusal gives, or None: accepted without a word
    "says YES": (dict(BurnedInAnnotation="YES"), "its header says BurnedInAnnotation YES"),
    "screen save": (dict(ImageType=["DERIVED", "SECONDARY", "SCREEN SAVE"]), "a screen save"),
    "scanned document": (dict(ConversionType="SD"), "a scanned document"),
    "ultrasound": (dict(Modality="US"), "an ultrasound image"),
    "ultrasound that says NO": (dict(Modality="US", BurnedInAnnotation="NO"), None),
    "ultrasound that says neither": (dict(Modality="US", BurnedInAnnotation=""), "an ultrasound image"),
    "plain secondary capture": ({}, None),
}


@pytest.mark.parametrize("name", list(BURNED_IN))
def test_a_dicom_that_may_show_identifying_text_is_refused_unless_allowed(name):
    elements, reason = BURNED_IN[name]
    data = dicom_bytes(dicom_dataset(np.full((16, 16), 7, np.uint16), **elements))
    if reason is None:
        assert not read_image(data).burned_in and not read_image(data, allow_burned_in=True).burned_in
        return
    refusal = f"may show identifying text in its pixels \\((it is )?{reason}.*--allow-burned-in"
    with pytest.raises(MedEditError, match=refusal):
        read_image(data)
    allowed = read_image(data, allow_burned_in=True)
    assert allowed.burned_in and fit(allowed, 8).burned_in
    assert any(reason in note and "BurnedInAnnotation YES" in note for note in allowed.notes)


def test_a_frame_over_the_decoded_bytes_bound_is_refused_before_decoding():
    """Within the pixel limit, but 4 bytes a pixel once decoded (RGBA) or 6 (16-bit RGB DICOM)."""
    with pytest.raises(MedEditError, match="6000x6000 at 4 bytes a pixel: 137 MiB once decoded; at most 128 MiB"):
        read_image(png_bomb(6000, 6000, colour=6))
    with pytest.raises(MedEditError, match="6000x6000 at 4 bytes a pixel"):
        read_mask(png_bomb(6000, 6000, colour=6))
    ds = dicom_dataset(np.zeros((8, 8), np.uint16), photometric="RGB", bits=16)
    ds.SamplesPerPixel, ds.PlanarConfiguration, ds.Rows, ds.Columns = 3, 0, 5000, 5000
    with pytest.raises(MedEditError, match="5000x5000 at 6 bytes a pixel: 143 MiB once decoded"):
        read_image(dicom_bytes(ds))


def conversions():
    """Files of every conversion path (each decodes to the same pixels whatever the block size)."""
    ramp16 = (np.arange(48 * 40, dtype=np.uint16).reshape(48, 40) * 29)
    rgba = np.dstack([RGB, RNG.integers(0, 256, (48, 40), dtype=np.uint8)])
    palette = Image.fromarray(RGB).convert("P", palette=Image.Palette.ADAPTIVE)
    buffer = __import__("io").BytesIO()
    palette.save(buffer, format="PNG")
    stored = RNG.integers(0, 4096, (48, 40), dtype=np.uint16)
    colour = dicom_dataset(np.zeros((48, 40), np.uint16), photometric="RGB", bits=8)
    colour.SamplesPerPixel, colour.PlanarConfiguration, colour.BitsAllocated, colour.HighBit = 3, 0, 8, 7
    colour.PixelData = RGB.tobytes()
    return {"16-bit full range": png_bytes(ramp16, "I;16"), "16-bit own range": png_bytes(ramp16 // 64, "I;16"),
            "RGBA": png_bytes(rgba), "palette": buffer.getvalue(), "grey": png_bytes(GREY), "RGB": png_bytes(RGB),
            "JPEG": jpeg_bytes(RGB), "DICOM window": dicom_bytes(dicom_dataset(stored, WindowCenter=1000,
                                                                               WindowWidth=1500)),
            "DICOM own range": dicom_bytes(dicom_dataset(stored, RescaleSlope=2, RescaleIntercept=-5)),
            "DICOM MONOCHROME1": dicom_bytes(dicom_dataset(stored, photometric="MONOCHROME1")),
            "DICOM RGB": dicom_bytes(colour)}


@pytest.mark.parametrize("name", list(conversions()))
def test_converting_a_block_of_rows_at_a_time_changes_no_pixel(monkeypatch, name):
    import pipelines.data.decoding as decoding
    data = conversions()[name]
    whole = read_image(data)
    monkeypatch.setattr(decoding, "BLOCK_PIXELS", 7 * 40)  # blocks of 7 rows: the last one shorter
    blocks = read_image(data)
    assert np.array_equal(blocks.pixels, whole.pixels) and blocks.notes == whole.notes
    assert not np.array_equal(whole.pixels, np.zeros_like(whole.pixels))
    if name == "RGBA":
        assert np.array_equal(read_mask(data), read_mask(data)) and read_mask(data).shape == (48, 40)


def test_decoding_a_16_bit_png_makes_no_float_copy_of_the_whole_image(monkeypatch):
    """The issue's case in small: a 16-bit PNG once took 25 bytes a pixel in float64 copies; numpy
    now holds the result (3 bytes a pixel) and one block's temporaries (small beside the image
    here, as the default block is beside a 40-megapixel one)."""
    import tracemalloc

    import pipelines.data.decoding as decoding
    monkeypatch.setattr(decoding, "BLOCK_PIXELS", 2**16)
    side = 2048
    data = png_bytes((np.arange(side * side, dtype=np.uint32).reshape(side, side) % 65536).astype(np.uint16), "I;16")
    tracemalloc.start()
    try:
        decoded = read_image(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoded.pixels.shape == (side, side, 3)
    assert peak < 4 * side * side, f"{peak / side / side:.1f} bytes a pixel"


def test_a_deflated_dicom_is_inflated_within_the_upload_limit_or_refused():
    """pydicom would inflate all of it: 100 MiB of zeros in a file of about 100 KB is refused first."""
    from tests.upload_files import deflated_dicom
    assert read_image(deflated_dicom()).pixels.shape == (8, 8, 3)
    bomb = deflated_dicom(100 * 2**20)
    assert len(bomb) < 200_000
    with pytest.raises(MedEditError, match="deflated, and inflates to more than 64 MiB: refused before inflating"):
        read_image(bomb)
