"""``adapt.py``: a trained few-shot classifier adapted to the user's own class folders, predicting their
images; the CSV, the TorchScript export, and bad input (one sentence, exit status 2, nothing overwritten)."""

import csv
import io
import re

import pytest
import torch
from PIL import Image

from lit_meta.adapt import adapt, decode
from lit_meta.adapt import main as adapt_main
from lit_meta.checkpoints import load_checkpoint
from lit_meta.cli import main as train_main
from lit_meta.datamodules import OmniglotDataModule
from lit_meta.evaluation.adaptation import predict
from lit_meta.registry import rebuild

from .conftest import OMNIGLOT_ROOT, only_error_line, requires_omniglot, run_script, train
from .reference_runs import tiny_run_args

pytestmark = requires_omniglot
SMALL = ["--model.init_args.hidden_sizes", "[8, 8, 8, 8]"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, omniglot_cache):
    folder = tmp_path_factory.mktemp("runs")
    found = {}
    for algorithm in ("protonet", "maml"):
        name = f"omniglot_{algorithm}_5w1s"
        train(tiny_run_args(name, folder / name, *SMALL, omniglot_cache=omniglot_cache))
        found[algorithm] = folder / name / "checkpoints" / "last.ckpt"
    return found


@pytest.fixture(scope="module")
def photos(tmp_path_factory, omniglot_cache):
    """Support folders (5 held-out characters, 2 drawings each, drawn black on white at 60×60 as the
    originals are) and a query folder with the next 2 drawings of each, some in a sub-folder."""
    data = OmniglotDataModule(root=str(OMNIGLOT_ROOT), cache_dir=str(omniglot_cache), queries=3)
    table = data.tasks["test"].images  # uint8 [classes, 20, 28, 28], strokes bright
    root = tmp_path_factory.mktemp("photos")
    for c in range(5):
        for i in range(4):
            image = Image.fromarray(255 - table[c, i].numpy()).resize((60, 60))
            where = root / "support" / f"char{c}" if i < 2 else root / "query" / ("deeper" if c % 2 else "")
            where.mkdir(parents=True, exist_ok=True)
            image.save(where / f"char{c}_{i}.png")
    return root


def read_csv(path):
    rows = list(csv.reader(io.StringIO(path.read_text())))
    return rows[0], rows[1:]


def reference(checkpoint, photos, classes, steps, transductive=True):
    """The same adaptation written out: decode as Omniglot was decoded, adapt, predict, softmax."""
    module, _ = rebuild(load_checkpoint(checkpoint), "reference", with_data=False)
    fmt = OmniglotDataModule.image_format({})
    support = [sorted((photos / "support" / name).glob("*.png")) for name in classes]
    support_x = decode(fmt, [p for paths in support for p in paths])
    support_y = torch.tensor([label for label, paths in enumerate(support) for _ in paths])
    queries = sorted((photos / "query").rglob("*.png"))
    with torch.enable_grad():
        model = module.algorithm.adapt(support_x, support_y, steps)
    with torch.no_grad():
        return queries, predict(model, support_x, decode(fmt, queries), transductive).softmax(-1)


def test_prototypical_networks_take_any_number_of_classes_and_export(checkpoints, photos, tmp_path):
    out, exported = tmp_path / "p.csv", tmp_path / "adapted.pt"
    support = photos / "support"
    status = adapt_main(["--ckpt", str(checkpoints["protonet"]), "--support", str(support), "--query",
                         str(photos / "query"), "--out", str(out), "--export", str(exported)])  # fmt: skip
    assert status == 0
    header, rows = read_csv(out)
    classes = [f"char{c}" for c in range(5)]
    assert header == ["file", "predicted", *(f"p({name})" for name in classes)]
    files, expected = reference(checkpoints["protonet"], photos, classes, None)
    assert [row[0] for row in rows] == [str(f) for f in files] and len(rows) == 10
    probabilities = torch.tensor([[float(v) for v in row[2:]] for row in rows])
    torch.testing.assert_close(probabilities, expected, atol=2e-6, rtol=0)
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(10), atol=1e-5, rtol=0)
    assert [row[1] for row in rows] == [classes[i] for i in expected.argmax(-1).tolist()]
    loaded = torch.jit.load(str(exported))  # plain TorchScript, no lit-meta needed
    queries = decode(OmniglotDataModule.image_format({}), files)
    torch.testing.assert_close(loaded(queries).softmax(-1), expected, atol=1e-5, rtol=1e-5)
    three = adapt(checkpoints["protonet"], support, photos / "query", transductive=False)
    assert three.probabilities.shape == (10, 5) and three.predicted[0] in classes


def test_maml_adapts_with_its_inner_rule_and_needs_its_number_of_classes(
    checkpoints, photos, tmp_path, capsys
):
    predictions = adapt(checkpoints["maml"], photos / "support", photos / "query", steps=2)
    _, expected = reference(checkpoints["maml"], photos, [f"char{c}" for c in range(5)], 2)
    torch.testing.assert_close(predictions.probabilities, expected, atol=1e-5, rtol=1e-5)
    three = tmp_path / "three"
    for c in range(3):
        (three / f"char{c}").mkdir(parents=True)
        for png in (photos / "support" / f"char{c}").glob("*.png"):
            (three / f"char{c}" / png.name).write_bytes(png.read_bytes())
    args = ["--ckpt", str(checkpoints["maml"]), "--support", str(three), "--query", str(photos / "query"),
            "--out", str(tmp_path / "x.csv")]  # fmt: skip
    assert adapt_main(args) == 2
    assert "one output per class for 5-way tasks" in only_error_line(capsys)
    assert not (tmp_path / "x.csv").exists()


def test_bad_input_is_one_sentence_and_nothing_is_overwritten(checkpoints, photos, tmp_path, capsys):
    existing = tmp_path / "predictions.csv"
    existing.write_text("keep me")
    base = ["--ckpt", str(checkpoints["protonet"]), "--query", str(photos / "query")]
    cases = {
        "already exists": [*base, "--support", str(photos / "support"), "--out", str(existing)],
        "support folder .* does not exist": [*base, "--support", str(tmp_path / "nowhere")],
        "--steps does not apply to protonet": [*base, "--support", str(photos / "support"), "--steps", "3"],
    }
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "b").mkdir()
    cases["holds no PNG or JPEG images"] = [*base, "--support", str(tmp_path / "empty")]
    sine = tmp_path / "sine"
    train(tiny_run_args("sine_maml", sine))
    cases["takes few-shot image classifiers, but .* holds a FewShotModule trained on SineDataModule"] = [
        "--ckpt", str(sine / "checkpoints" / "last.ckpt"), "--support", str(photos / "support"),
        "--query", str(photos / "query"),
    ]  # fmt: skip
    for message, args in cases.items():
        assert adapt_main([*args, "--out", str(tmp_path / "new.csv")] if "--out" not in args else args) == 2
        assert re.search(message, only_error_line(capsys)), message
    assert existing.read_text() == "keep me" and not (tmp_path / "new.csv").exists()


def test_the_script_runs_as_a_user_runs_it_and_train_has_no_predict_subcommand(
    checkpoints, photos, tmp_path, capsys
):
    query = photos / "query" / "char0_2.png"
    support = str(photos / "support")
    args = ["--ckpt", str(checkpoints["protonet"]), "--support", support, "--query", str(query)]
    done = run_script("adapt.py", *args, "--out", str(tmp_path / "one.csv"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1 images predicted" in done.stdout and len(read_csv(tmp_path / "one.csv")[1]) == 1
    assert train_main(["predict", "--config", "configs/sine_maml.yaml"]) == 2
    assert "invalid choice: 'predict'" in only_error_line(capsys)
