#!/usr/bin/env bash
# spaCy baselines for the README results (issue 4), same budget as the masking
# ablation (scripts/run_ablation.sh): MAX_STEPS updates of 1000 words, one CPU thread.
#   ner      on BC5CDR-chem, BC5CDR-disease, linnaeus with the ablation's tok2vec
#            (MultiHashEmbed 96, rows 5000/1000/2500/2500, CNN depth 4), to compare
#            with the single-corpus sru_ner models of the ablation;
#   GENIA    sru_ner (configs/genia_nested_cpu.cfg) vs spancat
#            (configs/baseline_spancat_cpu.cfg), same tok2vec (width 128); trained on
#            the Finkel & Manning train split (per-type MLC files: inner same-type
#            mentions missing), scored on its fully nested test split.
# Usage: scripts/run_baselines.sh ner|genia_sru|genia_spancat|all   (after `run_ablation.sh convert`
#        and `python scripts/convert_corpora.py assets/corpora corpus` for corpus/genia_fm)
set -euo pipefail
MAX_STEPS="${MAX_STEPS:-450}"
OUT_DIR="${OUT_DIR:-training/ablation}"
source "$(dirname "${BASH_SOURCE[0]}")/run_common.sh"

train_eval() {  # NAME CONFIG TRAIN DEV TEST [overrides...]
    local name="$1" config="$2" train="$3" dev="$4" test="$5"; shift 5
    timed_train "$name" "$config" --paths.train "$train" --paths.dev "$dev" --training.eval_frequency 500 "$@"
    spacy_eval "$name" "$test"
}

do_ner() {
    for c in bc5cdr_chem bc5cdr_disease linnaeus; do
        train_eval "ner_$c" configs/baseline_ner_cpu.cfg corpus/$c/train.spacy corpus/$c/dev.spacy corpus/$c/test.spacy \
            --components.ner.model.tok2vec.embed.width 96 \
            --components.ner.model.tok2vec.embed.rows "[5000, 1000, 2500, 2500]" \
            --components.ner.model.tok2vec.encode.width 96
    done
}
G=corpus/genia_fm
case "${1:-all}" in
    ner) do_ner ;;
    genia_sru) train_eval genia_sru_ner configs/genia_nested_cpu.cfg $G/train.spacy $G/dev.spacy $G/test.spacy ;;
    genia_spancat) train_eval genia_spancat configs/baseline_spancat_cpu.cfg $G/train.spacy $G/dev.spacy $G/test.spacy ;;
    all) do_ner; "$0" genia_spancat; "$0" genia_sru ;;
    *) echo "usage: $0 ner|genia_sru|genia_spancat|all" >&2; exit 2 ;;
esac
