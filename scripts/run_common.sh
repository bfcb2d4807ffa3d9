# Sourced by the result runs (run_ablation.sh, run_baselines.sh, run_minilm.sh): the
# repository root as working directory, one CPU thread per process, $PY, and a timed
# `spacy train` / `spacy evaluate` into $OUT_DIR (set MAX_STEPS and OUT_DIR first;
# SEED, if set, overrides [system] seed).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
PY="${PYTHON:-python}"

timed_train() {  # NAME CONFIG [spacy train overrides...]: model in $OUT_DIR/NAME, log, train_seconds.txt
    local name="$1" config="$2" start end; shift 2
    mkdir -p "$OUT_DIR/$name"
    start=$(date +%s)
    if [ -n "${SEED:-}" ]; then set -- "$@" --system.seed "$SEED"; fi
    $PY -m spacy train "$config" --output "$OUT_DIR/$name" --training.max_steps "$MAX_STEPS" "$@" \
        > "$OUT_DIR/$name.train.log" 2>&1
    end=$(date +%s)
    echo "$((end - start))" > "$OUT_DIR/$name/train_seconds.txt"
    echo "$MAX_STEPS" > "$OUT_DIR/$name/steps.txt"
    echo "trained $name in $((end - start)) s ($MAX_STEPS steps)"
}

spacy_eval() {  # NAME TEST: `spacy evaluate` of $OUT_DIR/NAME/model-last into $OUT_DIR/eval/NAME.json
    mkdir -p "$OUT_DIR/eval"
    $PY -m spacy evaluate "$OUT_DIR/$1/model-last" "$2" --output "$OUT_DIR/eval/$1.json" > "$OUT_DIR/$1.eval.log" 2>&1
    echo "evaluated $1 on $2"
}
