"""`adapt.py` end to end on held-out Omniglot alphabets laid out as folders, as a user would give them.

    python bench/adapt_omniglot.py --ckpt bench/results/checkpoints/omniglot_protonet_5w1s.ckpt --shots 1 5

Each meta-test alphabet of the small subset (Japanese (katakana) and Sanskrit, never seen in
meta-training) is unpacked from ``images_background_small2.zip`` as original 105×105 PNGs and written as
``support/<character>/`` (the first ``shots`` drawings of each character, by file name) and
``query/<character>/`` (its other drawings). ``lit_meta.adapt.adapt`` (what ``adapt.py`` runs) adapts the
checkpoint to the support folders and predicts every query image; accuracy is the fraction of query
images whose predicted class is their folder. A model that takes any number of classes (Prototypical
Networks) gets the whole alphabet at once; a model with a ``ways``-output head gets the alphabet's
characters in consecutive groups of ``ways``. Results are merged into bench/results/adapt_omniglot.json.
"""

import argparse
import json
import shutil
import tempfile
import zipfile
from pathlib import Path

import torch

from lit_meta.adapt import adapt, load_image_classifier
from lit_meta.datamodules.omniglot import SMALL_SPLIT
from lit_meta.evaluation.stats import mean_confidence_interval
from lit_meta.noise import silence_library_noise

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared" / "data" / "omniglot" / "images_background_small2.zip"
RESULTS = ROOT / "bench" / "results" / "adapt_omniglot.json"


def problems(alphabet: Path, ways: int | None) -> list[list[Path]]:
    """The alphabet's character folders, all at once (``ways`` None) or in groups of ``ways``."""
    characters = sorted(p for p in alphabet.iterdir() if p.is_dir())
    if ways is None:
        return [characters]
    return [characters[i : i + ways] for i in range(0, len(characters) - ways + 1, ways)]


def lay_out(characters: list[Path], shots: int, folder: Path) -> tuple[Path, Path]:
    """``folder/support/<character>/`` with the first ``shots`` drawings, ``folder/query/<character>/``
    with the rest."""
    for character in characters:
        drawings = sorted(character.glob("*.png"))
        for split, chosen in (("support", drawings[:shots]), ("query", drawings[shots:])):
            target = folder / split / character.name
            target.mkdir(parents=True)
            for drawing in chosen:
                shutil.copy(drawing, target / drawing.name)
    return folder / "support", folder / "query"


def score(ckpt: Path, shots: int, unpacked: Path) -> dict:
    module, _ = load_image_classifier(ckpt)
    ways = module.hparams.out_features if module.algorithm.ADAPTS_BY_STEPS else None
    correct, per_alphabet = [], {}
    for name in SMALL_SPLIT["test"]:
        alphabet_correct = []
        for index, characters in enumerate(problems(unpacked / name, ways)):
            with tempfile.TemporaryDirectory() as folder:
                support, query = lay_out(characters, shots, Path(folder) / str(index))
                predictions = adapt(ckpt, support, query)
                truth = [path.parent.name for path in predictions.files]
                alphabet_correct += [p == t for p, t in zip(predictions.predicted, truth, strict=True)]
        per_alphabet[name] = {
            "classes_per_problem": ways or len(problems(unpacked / name, None)[0]),
            "problems": len(problems(unpacked / name, ways)),
            "query_images": len(alphabet_correct),
            "accuracy": sum(alphabet_correct) / len(alphabet_correct),
        }
        correct += alphabet_correct
    mean, ci = mean_confidence_interval(torch.tensor(correct, dtype=torch.float))
    return {
        "checkpoint": ckpt.name, "algorithm": module.hparams.algorithm, "shots": shots,
        "query_images": len(correct), "accuracy": mean, "ci": ci, "alphabets": per_alphabet,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", type=Path, nargs="+", required=True)
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    args = parser.parse_args()
    silence_library_noise()
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else []
    with tempfile.TemporaryDirectory() as folder:
        with zipfile.ZipFile(ARCHIVE) as bundle:
            bundle.extractall(folder)
        unpacked = Path(folder) / "images_background_small2"
        for ckpt in args.ckpt:
            for shots in args.shots:
                row = score(ckpt, shots, unpacked)
                results = [r for r in results if (r["checkpoint"], r["shots"]) != (ckpt.name, shots)] + [row]
                RESULTS.write_text(json.dumps(results, indent=2))
    print("| checkpoint | support shots | classes per problem | query images | accuracy (95% CI) |")
    print("|---|---|---|---|---|")
    for row in results:
        classes = "/".join(str(a["classes_per_problem"]) for a in row["alphabets"].values())
        print(f"| {row['checkpoint']} | {row['shots']} | {classes} | {row['query_images']} | "
              f"{100 * row['accuracy']:.1f}% ± {100 * row['ci']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
