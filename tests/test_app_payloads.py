"""Values gradio checks before our handlers run (app/payloads.py), and the burned-in flag of the
image endpoints: one clear message per class of bad value, raw over HTTP, and never a traceback
in the server's log."""

import io
import zipfile

import numpy as np
import pydicom
import pytest

from tests.test_app_api import raw_call
from tests.upload_files import dicom_bytes, dicom_dataset, png_bytes

gradio_client = pytest.importorskip("gradio_client")
FILE_META = {"_type": "gradio.FileData"}
IMAGE_FIELDS = dict(anatomy="Chest X-ray showing pleural effusion", style="no devices", to_anatomy="",
                    to_style="", sliders="{}", swap_at=0.25, seed=1, steps=2, anatomy_scale=3.0, style_scale=3.0,
                    model="", locality=0.0, edit_mask=None, keep_mask=None)

NOT_FILES = {  # class of value -> the words the message must hold
    "number": (123, "got int"), "float": (1.5, "got float"), "bool": (True, "got bool"), "text": ("x", "got str"),
    "server path as text": ("/etc/passwd", "got str"), "empty text": ("", "got str"), "list": (["a"], "got list"),
    "empty list": ([], "got list"), "object without a path": ({"x": 1}, "got an object without a path"),
    "url object": ({"url": "http://127.0.0.1/x"}, "got an object without a path"),
    "path not text": ({"path": 5}, "got an object whose path is int"),
    "path without meta": ({"path": "/etc/passwd"}, "without gradio's file meta"),
}


def error_of(stream: str) -> str:
    assert "event: error" in stream, stream[-400:]
    return stream


def edit_image_values(**changes) -> list:
    values = {**IMAGE_FIELDS, **changes}
    return [values.pop("image", None)] + list(values.values())


@pytest.mark.parametrize("name", list(NOT_FILES))
def test_a_value_that_is_not_a_file_is_refused_by_the_fields_name(app_url, capfd, name):
    value, words = NOT_FILES[name]
    stream = error_of(raw_call(app_url, "describe_image", [value]))
    assert "image must be a file" in stream and words in stream and "handle_file" in stream
    stream = error_of(raw_call(app_url, "edit_image", edit_image_values(image=None, edit_mask=value)))
    assert "edit_mask must be a file" in stream and words in stream
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("endpoint, data, words", [
    ("describe_image", [], "/describe_image takes 1 to "),  # (image, allow_burned_in, ...), got 0
    ("edit", ["a chest"], "/edit takes 11 to 12 values (anatomy, style, "),
    ("generate", [], "/generate takes 7 values"),
])
def test_too_few_values_are_refused_with_what_the_endpoint_takes(app_url, capfd, endpoint, data, words):
    stream = error_of(raw_call(app_url, endpoint, data))
    assert words in stream and f"got {len(data)}" in stream, stream[-300:]
    assert "Traceback" not in capfd.readouterr().err


def test_a_file_payload_naming_a_server_path_is_refused_by_name(app_url, capfd):
    payload = {"path": "/etc/hostname", "meta": FILE_META}
    for endpoint, data in (("describe_image", [payload]), ("edit", [payload] + [None] * 11)):
        stream = error_of(raw_call(app_url, endpoint, data))
        assert "was not uploaded to this server" in stream and "hostname" not in stream
    assert "Traceback" not in capfd.readouterr().err


def test_a_file_payload_of_the_wrong_shape_is_refused(app_url, capfd):
    payload = {"path": "x.png", "meta": FILE_META, "size": "big"}
    assert "a value is not of the kind its field takes" in error_of(raw_call(app_url, "describe_image", [payload]))
    assert "Traceback" not in capfd.readouterr().err


def test_a_raw_call_may_leave_out_the_optional_trailing_fields(app_url):
    """allow_burned_in came after the others: a call without it still reaches the handler."""
    assert "image is required" in error_of(raw_call(app_url, "describe_image", [None]))
    stream = error_of(raw_call(app_url, "edit_image", edit_image_values()[:12]))  # no locality, masks...
    assert "image is required" in stream


def test_the_burned_in_flag_must_be_true_or_false(app_url):
    assert "allow_burned_in must be true or false, got int" in error_of(raw_call(app_url, "describe_image",
                                                                                 [None, 1]))


def test_a_burned_in_dicom_is_refused_unless_allowed_and_then_every_output_says_so(app_url, tmp_path):
    stored = np.linspace(0, 4095, 64 * 64).reshape(64, 64).astype(np.uint16)
    path = tmp_path / "burned.dcm"
    path.write_bytes(dicom_bytes(dicom_dataset(stored, BurnedInAnnotation="YES")))
    client = gradio_client.Client(app_url, verbose=False)
    with pytest.raises(Exception, match="may show identifying text in its pixels"):
        client.predict(gradio_client.handle_file(str(path)), api_name="/describe_image")
    *_, archive, settings = client.predict(gradio_client.handle_file(str(path)), **IMAGE_FIELDS, refresh=0.0,
                                           allow_burned_in=True, api_name="/edit_image")
    assert settings["burned_in_annotation"] == "YES"
    assert any("may show identifying text" in note for note in settings["notes"])
    with zipfile.ZipFile(archive) as z:
        dicom_name = next(name for name in z.namelist() if name.endswith(".dcm"))
        assert pydicom.dcmread(io.BytesIO(z.read(dicom_name))).BurnedInAnnotation == "YES"
        assert "MAY SHOW IDENTIFYING TEXT" in z.read("README.txt").decode()


def queue_call(app_url: str, fn_index: int, data: list) -> str:
    """An event of the UI itself (not a named endpoint), called as its page would call it."""
    import httpx
    session = "payloads-test"
    with httpx.Client(base_url=app_url, timeout=60) as http:
        joined = http.post("gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
                                                          "event_data": None, "trigger_id": None})
        assert joined.status_code == 200, joined.text
        with http.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if "process_completed" in line:
                    return line
    return ""


def test_the_upload_panels_own_event_refuses_a_non_file_by_name(app_url, capfd):
    import httpx
    config = httpx.get(app_url + "config", timeout=30).json()
    labels = {c["id"]: c.get("props", {}).get("label") for c in config["components"]}
    fn_index, inputs = next((d.get("id", i), d["inputs"]) for i, d in enumerate(config["dependencies"])
                            if any(labels.get(c) == "Your image" for c in d["inputs"]))
    data = [123 if labels.get(c) == "Your image" else None for c in inputs]
    answer = queue_call(app_url, fn_index, data)
    assert "Your image must be a file" in answer and "got int" in answer, answer[-300:]
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("ticked", [False, True])
def test_the_upload_panel_takes_burned_in_text_only_with_its_box_ticked(app_url, ticked):
    import httpx
    config = httpx.get(app_url + "config", timeout=30).json()
    labels = {c["id"]: c.get("props", {}).get("label") for c in config["components"]}
    fn_index, inputs = next((d.get("id", i), d["inputs"]) for i, d in enumerate(config["dependencies"])
                            if any(labels.get(c) == "Your image" for c in d["inputs"])
                            and any(str(labels.get(c)).startswith("Accept burned-in text") for c in d["inputs"]))
    stored = np.linspace(0, 4095, 64 * 64).reshape(64, 64).astype(np.uint16)
    data = dicom_bytes(dicom_dataset(stored, BurnedInAnnotation="YES"))
    with httpx.Client(base_url=app_url, timeout=60) as http:
        path = http.post("gradio_api/upload", files={"files": ("scan.dcm", data)}).json()[0]
    values = {"Your image": {"path": path, "meta": FILE_META}}
    sent = [values.get(labels.get(c), ticked if str(labels.get(c)).startswith("Accept") else None) for c in inputs]
    answer = queue_call(app_url, fn_index, sent)
    if ticked:
        assert '"success":true' in answer and "may show identifying text" in answer, answer[-400:]
    else:
        assert "may show identifying text in its pixels" in answer and '"success":false' in answer, answer[-400:]


EDIT_IMAGE_FIELDS = list(IMAGE_FIELDS) + ["refresh", "allow_burned_in"]


@pytest.mark.parametrize("field", EDIT_IMAGE_FIELDS)
def test_no_value_a_client_sends_to_edit_image_is_an_internal_error(app_url, capfd, field):
    """Every field of /edit_image after the image, a value of each kind, with a real upload: a
    specific message (or a result, where the value happens to be valid), never an internal error,
    a null error or a traceback."""
    import httpx
    png = png_bytes(np.full((64, 64, 3), 90, np.uint8))
    for value in (123, "x", ["a"], {"x": 1}):
        with httpx.Client(base_url=app_url, timeout=60) as http:
            path = http.post("gradio_api/upload", files={"files": ("x.png", png)}).json()[0]
        values = {**IMAGE_FIELDS, "refresh": 0.0, "allow_burned_in": False, field: value}
        stream = raw_call(app_url, "edit_image", [{"path": path, "meta": FILE_META}] + list(values.values()))
        assert "event: complete" in stream or "event: error" in stream, stream[-300:]
        assert "internal error" not in stream.lower() and '"error": null' not in stream, (field, value, stream[-300:])
    assert "Traceback" not in capfd.readouterr().err
