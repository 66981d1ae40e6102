"""`convert`: public label tables (CheXpert, ISIC 2019, any CSV) to the imagefolder layout that
`train lora` reads, and `convert validate` to check such a folder."""

import json

from pipelines.core.errors import MedEditError
from pipelines.data import converters as datasets
from pipelines.data.converters import UNCERTAIN_POLICIES


def add_arguments(parser):
    sub = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")
    chexpert = sub.add_parser("chexpert", help="CheXpert train.csv/valid.csv and images")
    chexpert.add_argument("--csv", required=True, help="CheXpert label CSV")
    chexpert.add_argument("--images", required=True, help="folder the CSV's Path column is under")
    chexpert.add_argument("--uncertain", choices=tuple(UNCERTAIN_POLICIES), default="negative",
                          help="what an uncertain (-1) label means")
    isic = sub.add_parser("isic2019", help="ISIC 2019 ground truth and images")
    isic.add_argument("--gt", required=True, help="ISIC_2019_Training_GroundTruth.csv")
    isic.add_argument("--images", required=True, help="folder of the ISIC images")
    isic.add_argument("--artifacts", default=None,
                      help="optional artifact annotation CSV (hair, ruler, ink, gel_bubbles, ...)")
    table = sub.add_parser("csv", help="any CSV: an image column, anatomy and style columns")
    table.add_argument("--csv", required=True)
    table.add_argument("--images", required=True, help="folder the image column is relative to")
    table.add_argument("--image-column", required=True)
    table.add_argument("--anatomy-columns", nargs="*", default=[], metavar="COLUMN",
                       help="text columns join the anatomy caption; 0/1 columns become labels")
    table.add_argument("--style-columns", nargs="*", default=[], metavar="COLUMN",
                       help="text columns join the style caption; 0/1 columns become labels")
    validate = sub.add_parser("validate", help="check an imagefolder: every row, every image")
    validate.add_argument("folder")
    for command in (chexpert, isic, table):
        command.add_argument("--out", required=True, help="new output folder")
    for command in (chexpert, isic, table, validate):
        command.add_argument("--json", action="store_true", help="print the summary as JSON")


def summary(rows: list[dict]) -> dict:
    labels: dict[str, int] = {}
    for row in rows:
        for name, value in (row.get("labels") or {}).items():
            labels[name] = labels.get(name, 0) + int(value == 1)
    return {"images": len(rows), "positives": dict(sorted(labels.items()))}


def run(args) -> int:

    if args.source == "chexpert":
        rows = datasets.from_chexpert(args.csv, args.images, args.out, args.uncertain)
    elif args.source == "isic2019":
        rows = datasets.from_isic2019(args.gt, args.images, args.out, args.artifacts)
    elif args.source == "csv":
        if not (args.anatomy_columns or args.style_columns):
            raise MedEditError("give --anatomy-columns and/or --style-columns")
        rows = datasets.from_csv(args.csv, args.images, args.out, args.image_column,
                                 args.anatomy_columns, args.style_columns)
    else:
        rows = datasets.validate_imagefolder(args.folder)
    result = {"folder": getattr(args, "out", None) or args.folder, **summary(rows)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        verb = "valid" if args.source == "validate" else "written"
        positives = ", ".join(f"{k} {v}" for k, v in result["positives"].items()) or "none"
        print(f"{result['images']} images {verb} in {result['folder']}; positive labels: {positives}")
    return 0
