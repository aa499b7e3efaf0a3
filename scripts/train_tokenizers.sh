#!/usr/bin/env bash
# Train, evaluate and export every tokenizer pair shipped in python_blocks/unitocom/models,
# one after the other (each uses both CPU cores). Resumable: a run that stopped continues
# from its checkpoint; a run with runs/<name>/metrics.json is skipped. Cards go to docs/models.
#
#   ./unitocom corpus build --out data/clevr64      # once, ~3 min
#   bash scripts/train_tokenizers.sh                # ~4 h on 2 CPU cores
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=${CORPUS:-data/clevr64}
train() {  # out-dir, then train_tokenizer arguments
    local out=$1; shift
    if [[ -f $out/metrics.json ]]; then echo "== $out: done, skipped"; return; fi
    echo "== $out"
    ./unitocom python -m onnx_export.train_tokenizer --corpus "$CORPUS" --seed 0 --out "$out" --resume "$@"
}
# Main pairs (width 128, depth 4): the S=32 image pair [4/7] builds on, and the audio pair.
train runs/image-genib-32 --modality image --variant genib --tokens 32 --minutes 50
train runs/image-vae-32   --modality image --variant vae   --tokens 32 --minutes 50
train runs/audio-genib    --modality audio --variant genib --depth 2 --batch 32 --minutes 17
train runs/audio-vae      --modality audio --variant vae   --depth 2 --batch 32 --minutes 17
# Token-count sweep (smaller: width 96, so the whole set fits the 60 MB budget). 10 min each
# for S = 16 and 64. S = 128 runs 192 tokens through each Transformer: it was trained with
# batch 16 on one thread for 25 min per model (the two can run side by side on two cores).
for s in 16 64; do
    for v in genib vae; do
        train runs/image-$v-$s --modality image --variant $v --tokens $s --width 96 --minutes 10
    done
done
for v in genib vae; do
    train runs/image-$v-128 --modality image --variant $v --tokens 128 --width 96 --batch 16 --minutes 25 --threads 1
done
# The shipped S = 32 σ-GenIB pair is runs/image-genib-32 after two more steps (README, "The
# learned link"): the image JSCC trained on its tokens, then 10 minutes of end-to-end fine-tuning
# of the four models through the link (50 + 10 = 60 min of training for the pair):
#   ./unitocom python -m onnx_export.train_jscc --modality image --corpus "$CORPUS" --minutes 22 --threads 1 --out runs/jscc-image
#   ./unitocom python -m onnx_export.finetune_link --corpus "$CORPUS" --minutes 10 --resume --out runs/finetune-image
