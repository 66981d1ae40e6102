"""Every limit and default a request, the UI, the CLI or synthesis reads, in one place.

The UI's sliders, the API's checks (editing/requests.py), the command line and synthesis specs all
take their ranges from here, so a value the UI offers is always one the API accepts.
"""

SEED_MAX = 2**32 - 1
STEPS_RANGE = (1, 100)
SCALE_RANGE = (0.0, 15.0)  # guidance per channel
SLIDER_RANGE = (-3.0, 3.0)  # attribute sliders: negative removes, beyond 1 exaggerates
# ... the outer range: a model's mededit.json narrows it per attribute to where its edits were
# measured to hold (`range`, scripts/slider_ranges.py), and every caller reads it there (ModelInfo.slider)
SWAP_RANGE = (0.0, 1.0)  # fraction of the steps before the prompt swap
LOCALITY_RANGE = (0.0, 0.9)  # a share of the largest change; at 1 nothing would be edited
REFRESH_RANGE = (0.0, 1.0)  # share of the steps, the last ones, an uploaded image's edit draws fresh noise in
MAX_PROMPT_CHARS = 400  # far past what the text window reads (64 tokens); longer is a mistake

FRAMES_RANGE = (2, 64)
FRAMES_DEFAULT = 16
CONTROL_POINTS_RANGE = (2, 10)
CONTROL_POINTS_DEFAULT = 6
BEND_RANGE = (-1.0, 1.0)
SERIES_MODES = ("latent", "embedding")

MAX_JSON_CHARS = 20_000  # JSON fields of the API (sliders, export settings)
MAX_JSON_DEPTH = 32  # nesting of those fields: theirs is 3 at most; deeper is an attack on the parser
MAX_DATASET_IMAGES = 10_000_000  # images one phantoms or synthesize run writes

MAX_UPLOAD_BYTES = 64 * 2**20  # an uploaded image or mask file
MAX_UPLOAD_PIXELS = 40_000_000  # one uploaded frame's width x height, read from its header before decoding
# ... and the bytes its decoder holds (Pillow: 1 a pixel for grey, 2 for 16-bit, 4 for RGB or RGBA;
# DICOM: samples x bytes allocated): 40 megapixels of grey (8 or 16 bits), 33 of 8-bit RGB or RGBA
MAX_DECODED_BYTES = 128 * 2**20

SYNTHETIC_MARK = "synthetic image, not a patient"  # in every file MedEdit writes of a generated image
# ... and of an image the user brought, which a model edited (fits DICOM LO after "MedEdit ")
EDITED_MARK = "edited by a generative model, not an original image"
SOFTWARE = "MedEdit"

CAPTION_DROPOUT = 0.1  # per channel, to the null tokens: what classifier-free guidance needs


def step_seed(seed: int, step: int, process: int = 0) -> int:
    """The seed of one training step's random draws: distinct for every (seed, process, step), so
    a resumed run draws exactly what an uninterrupted one would."""
    return (seed * 1_000_003 + process * 7919 + step) % 2**63
