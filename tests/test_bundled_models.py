"""Every ONNX model shipped in python_blocks/unitocom/models: metadata, names,
pairs, size budget, and quality that matches its model card."""
import hashlib
import json
import pathlib
import re

import numpy as np
import pytest

from gnuradio.unitocom import model_store
from gnuradio.unitocom.onnx_session import make_session

MODELS = sorted(model_store.PACKAGE_MODELS.glob("*.onnx"))
REQUIRED = ("unitocom.schema", "role", "modality", "token_len", "token_dim", "n_symbols", "version",
            "train_data", "train_metrics", "io_names")
ROOT = pathlib.Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not MODELS, reason="no models shipped yet")


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_name_hash_and_metadata(path):
    m = re.fullmatch(r"(\w+)-(\w+)-([0-9a-f]{8})\.onnx", path.name)
    assert m, path.name
    assert hashlib.sha256(path.read_bytes()).hexdigest()[:8] == m[3]
    meta = model_store.read_metadata(path)
    assert all(k in meta for k in REQUIRED), sorted(set(REQUIRED) - set(meta))
    assert meta["role"] in ("tokenizer", "detokenizer") and meta["variant"] == m[2]
    json.loads(meta["train_metrics"]), json.loads(meta["io_names"])
    card = ROOT / "docs" / "models" / f"{m[1].replace('detokenizer', 'tokenizer')}-{m[2]}.md"
    assert card.is_file(), f"model card {card}"


def test_all_models_fit_the_size_budget():
    assert sum(p.stat().st_size for p in MODELS) < 60 * 2 ** 20


def pairs():
    toks = [p for p in MODELS if model_store.read_metadata(p)["role"] == "tokenizer"]
    return [(t, model_store.find(t.name.split("-")[0].replace("tokenizer", "detokenizer"), t.name.split("-")[1]))
            for t in toks]


@pytest.mark.parametrize("tok,det", pairs(), ids=lambda p: p.name)
def test_pair_matches_and_reconstructs_as_its_card_says(tok, det):
    meta_t, meta_d = model_store.read_metadata(tok), model_store.read_metadata(det)
    model_store.check_pair(meta_t, meta_d)
    if meta_t["modality"] != "image":
        pytest.skip("only image pairs have a round-trip check so far")
    from gnuradio.unitocom.data.corpus import make_item
    images = np.stack([make_item("test", i, 0)["image"] for i in range(48)]).astype(np.float32) / 255
    x = images.transpose(0, 3, 1, 2)
    t = make_session(str(tok), 2, "cpu").run(None, {"image": x})[0]
    y = make_session(str(det), 2, "cpu").run(None, {"tokens": t})[0]
    psnr = np.mean(10 * np.log10(1 / np.mean((y - x) ** 2, axis=(1, 2, 3))))
    card_psnr = json.loads(meta_t["train_metrics"])["noiseless"]["psnr_db"]
    assert abs(psnr - card_psnr) < 1.5, (psnr, card_psnr)
