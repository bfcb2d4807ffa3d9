#!/usr/bin/env bash
# Masking ablation (issue 3): single-corpus vs. multi-corpus sru_ner models, with
# and without multi-corpus loss masking, on BC5CDR-chem (Chemical), BC5CDR-disease
# (Disease; same sentences as BC5CDR-chem) and linnaeus (Species).
#
# Usage (from anywhere; paths are relative to the repository root):
#   scripts/run_ablation.sh            # = all: convert, 5 trainings (2 at a time), 5 evaluations, table
#   scripts/run_ablation.sh convert
#   scripts/run_ablation.sh train NAME # NAME: single_bc5cdr_chem single_bc5cdr_disease single_linnaeus
#                                      #       multi_masked multi_unmasked
#   scripts/run_ablation.sh eval NAME
#   scripts/run_ablation.sh train_eval NAME
#   scripts/run_ablation.sh max_positive NAME  # NAME's model with max_positive = 1, evaluated
#   scripts/run_ablation.sh table      # markdown table from the evaluation JSONs
# Environment:
#   DATA_DIR   corpus directory (default: ../shared/data relative to the repo root)
#   MAX_STEPS  updates per training (default 450), the same for all five models
#   JOBS       trainings run at once by "all" (default 2)
#   OUT_DIR    models, logs and evaluation JSONs (default: training/ablation)
#   SEED       overrides the config's seed (seed replicates)
set -euo pipefail

MAX_STEPS="${MAX_STEPS:-450}"
JOBS="${JOBS:-2}"
OUT_DIR="${OUT_DIR:-training/ablation}"
source "$(dirname "${BASH_SOURCE[0]}")/run_common.sh"
DATA_DIR="${DATA_DIR:-$ROOT/../shared/data}"
CONFIG=configs/ablation_cpu.cfg
CORPUS=corpus

NAMES=(multi_masked multi_unmasked single_bc5cdr_chem single_bc5cdr_disease single_linnaeus)
TESTS=("$CORPUS/bc5cdr_chem/test.spacy" "$CORPUS/bc5cdr_disease/test.spacy" "$CORPUS/linnaeus/test.spacy")

convert_one() {  # SRC_DIR NAME
    local src="$DATA_DIR/$1" name="$2"
    $PY -m spacy_sru_ner convert "$src/train.tsv" "$CORPUS/$name/train.spacy" --format iob --corpus "$name"
    $PY -m spacy_sru_ner convert "$src/devel.tsv" "$CORPUS/$name/dev.spacy" --format iob --corpus "$name" --limit 500
    $PY -m spacy_sru_ner convert "$src/test.tsv" "$CORPUS/$name/test.spacy" --format iob --corpus "$name"
}

do_convert() {
    convert_one BC5CDR-chem-IOB bc5cdr_chem
    convert_one BC5CDR-disease-IOB bc5cdr_disease
    convert_one linnaeus-IOB linnaeus
}

# spacy train overrides of each model, into the array ARGS
set_overrides() {  # NAME
    case "$1" in
        multi_masked) ARGS=(--components.sru_ner.masking true) ;;
        # the loss before issue 9: no positive weighting, one learning rate, no tok2vec dropout
        multi_masked_v0) ARGS=(--components.sru_ner.masking true --components.sru_ner.positive_weight 1
                               --components.sru_ner.decoder_lr_scale 1 --training.dropout 0) ;;
        # one change each on top of multi_masked
        multi_shift_bar) ARGS=(--components.sru_ner.masking true --components.sru_ner.shift_bar 0.5) ;;
        multi_mentions) ARGS=(--components.sru_ner.masking true --corpora.train.mention_fraction 0.5) ;;
        multi_mentions_shift_bar) ARGS=(--components.sru_ner.masking true --corpora.train.mention_fraction 0.5
                                        --components.sru_ner.shift_bar 0.5) ;;
        multi_mentions_shift_bar_pw5) ARGS=(--components.sru_ner.masking true --corpora.train.mention_fraction 0.5
                                            --components.sru_ner.shift_bar 0.5 --components.sru_ner.positive_weight 5) ;;
        multi_mentions25_shift_bar) ARGS=(--components.sru_ner.masking true --corpora.train.mention_fraction 0.25
                                          --components.sru_ner.shift_bar 0.5) ;;
        multi_unmasked) ARGS=(--components.sru_ner.masking false) ;;
        single_bc5cdr_chem)
            ARGS=(--paths.train_bc5cdr_disease null --paths.dev_bc5cdr_disease null
                  --paths.train_linnaeus null --paths.dev_linnaeus null
                  --initialize.components.sru_ner.labels '["Chemical"]') ;;
        single_bc5cdr_disease)
            ARGS=(--paths.train_bc5cdr_chem null --paths.dev_bc5cdr_chem null
                  --paths.train_linnaeus null --paths.dev_linnaeus null
                  --initialize.components.sru_ner.labels '["Disease"]') ;;
        single_linnaeus)
            ARGS=(--paths.train_bc5cdr_chem null --paths.dev_bc5cdr_chem null
                  --paths.train_bc5cdr_disease null --paths.dev_bc5cdr_disease null
                  --initialize.components.sru_ner.labels '["Species"]') ;;
        *) echo "unknown model name: $1" >&2; return 1 ;;
    esac
}

do_train() {  # NAME
    set_overrides "$1"
    timed_train "$1" "$CONFIG" "${ARGS[@]}"
}

do_eval() {  # NAME
    local name="$1" start end
    mkdir -p "$OUT_DIR/eval"
    start=$(date +%s)
    $PY -m spacy_sru_ner evaluate "$OUT_DIR/$name/model-last" "${TESTS[@]}" \
        --output "$OUT_DIR/eval/$name.json" > "$OUT_DIR/$name.eval.log" 2>&1
    end=$(date +%s)
    echo "$((end - start))" > "$OUT_DIR/$name/eval_seconds.txt"
    echo "evaluated $name in $((end - start)) s"
}

do_max_positive() {  # NAME: the trained model with max_positive = 1, evaluated as NAME_maxpos1
    local name="$1"
    $PY - "$OUT_DIR/$name/model-last" "$OUT_DIR/${name}_maxpos1" <<'PYEOF'
import sys

import spacy

nlp = spacy.load(sys.argv[1])
nlp.get_pipe("sru_ner").cfg["max_positive"] = 1
nlp.get_pipe_config("sru_ner")["max_positive"] = 1
nlp.to_disk(sys.argv[2])
PYEOF
    mkdir -p "$OUT_DIR/eval"
    $PY -m spacy_sru_ner evaluate "$OUT_DIR/${name}_maxpos1" "${TESTS[@]}" \
        --output "$OUT_DIR/eval/${name}_maxpos1.json" > "$OUT_DIR/${name}_maxpos1.eval.log" 2>&1
    echo "evaluated $name with max_positive = 1"
}

do_table() {
    OUT_DIR="$OUT_DIR" MAX_STEPS="$MAX_STEPS" $PY - <<'PYEOF'
import json, os
from pathlib import Path

out = Path(os.environ["OUT_DIR"])
models = [
    ("single_bc5cdr_chem", "single BC5CDR-chem"),
    ("single_bc5cdr_disease", "single BC5CDR-disease"),
    ("single_linnaeus", "single linnaeus"),
    ("multi_masked", "multi, masking = true"),
    ("multi_unmasked", "multi, masking = false"),
    ("multi_masked_v0", "multi, masking = true, loss before issue 9"),
    ("multi_shift_bar", "multi, masking = true, shift_bar = 0.5"),
    ("multi_mentions", "multi, masking = true, mention_fraction = 0.5"),
    ("multi_mentions_shift_bar", "multi, masking = true, mention_fraction = 0.5, shift_bar = 0.5"),
    ("multi_mentions_shift_bar_pw5", "multi, masking = true, mention_fraction = 0.5, shift_bar = 0.5, positive_weight = 5"),
    ("multi_mentions25_shift_bar", "multi, masking = true, mention_fraction = 0.25, shift_bar = 0.5"),
]
models += [(key + "_maxpos1", title + ", max_positive = 1") for key, title in models if key.startswith("multi")]
corpora = [("bc5cdr_chem", "BC5CDR-chem (Chemical)"), ("bc5cdr_disease", "BC5CDR-disease (Disease)"),
           ("linnaeus", "linnaeus (Species)")]
head = "| model | " + " | ".join(f"{c} P / R / F" for _, c in corpora) + " | train s | steps |"
print(head)
print("|" + "---|" * (len(corpora) + 3))
for key, title in models:
    res_path = out / "eval" / f"{key}.json"
    if not res_path.exists():  # a variant this run did not train
        continue
    res = json.loads(res_path.read_text())
    model_dir = out / key / "model-last" if (out / key / "model-last").exists() else out / key
    meta = json.loads((model_dir / "meta.json").read_text())
    labels = set(meta.get("labels", {}).get("sru_ner", []))
    cells = []
    for name, _ in corpora:
        c = res["corpora"][name]
        if not labels & set(c["labels"]):
            cells.append("–")  # the model does not predict this corpus's label
        else:
            cells.append(f"{100*c['p']:.1f} / {100*c['r']:.1f} / {100*c['f']:.1f}")
    trained = key.removesuffix("_maxpos1")  # the same trained model, decoded with max_positive = 1
    secs = (out / trained / "train_seconds.txt")
    secs = secs.read_text().strip() if secs.exists() else "?"
    steps = (out / trained / "steps.txt")
    steps = steps.read_text().strip() if steps.exists() else os.environ["MAX_STEPS"]
    print(f"| {title} | " + " | ".join(cells) + f" | {secs} | {steps} |")
PYEOF
}

cmd="${1:-all}"
case "$cmd" in
    convert) do_convert ;;
    train) do_train "$2" ;;
    eval) do_eval "$2" ;;
    train_eval) do_train "$2"; do_eval "$2" ;;
    max_positive) do_max_positive "$2" ;;
    table) do_table ;;
    all)
        do_convert
        # at most $JOBS trainings at once (each single-threaded)
        # each job trains one model, then evaluates it on the three test sets
        printf '%s\n' "${NAMES[@]}" | xargs -P "$JOBS" -I{} bash "$0" train_eval {}
        do_table
        ;;
    *) echo "usage: $0 [all|convert|train NAME|eval NAME|table]" >&2; exit 2 ;;
esac
