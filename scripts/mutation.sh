#!/usr/bin/env bash
# Mutation testing of the loss functions and the shared two-player update (not run by CI).
#
#   bash scripts/mutation.sh [losses|gan] [--tests-from REV] [--keep]
#
# mutmut (3.x, installed from PyPI when missing) rewrites the code under test one small change
# at a time (an operator, a constant, an argument, ...) and runs the tests that reach the
# changed function; a mutant no test notices "survives". The target picks what is mutated and
# the fast tests that exercise it:
#
#   losses   every module of losses/      tests/test_golden_divergence_table.py (first: see
#                                         below), tests/test_losses.py, tests/test_golden_*.py
#   gan      models/gan.py                tests/test_golden_gan.py, tests/test_losses.py and
#                                         tests/test_models.py's fast tests of mlp_gan
#
# MUTATION_TESTS="tests/a.py tests/b.py::test_c" replaces the selection (split at spaces).
# --tests-from REV runs the tests/ folder of a git revision instead of the working tree's (the
# code mutated is always the working tree's): `--tests-from 36c8848` measures what the tests of
# that commit kill. Test files of the selection that REV lacks are left out.
#
# Everything happens in a copy of the working tree under a temporary folder (mutmut writes a
# mutants/ folder next to the code it mutates), removed at the end unless --keep is given;
# the repository is never written to. MUTATION_CHILDREN sets the parallel workers (2).
# Prints the killed/survived counts and the surviving mutants; `mutmut show NAME` in the kept
# folder shows one as a diff.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET=losses
TESTS_FROM=""
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    losses|gan) TARGET="$1" ;;
    --tests-from) TESTS_FROM="$2"; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "error: unknown argument '$1': use losses or gan, --tests-from REV, --keep" >&2; exit 2 ;;
  esac
  shift
done

case "$TARGET" in
  losses) ONLY="losses/*"
          DEFAULT_TESTS="tests/test_golden_divergence_table.py tests/test_losses.py tests/test_golden_*.py" ;;
  gan) ONLY="models/gan.py"
       # the registry suite's fast tests of the smallest family (the whole suite takes ~10 min)
       FAST_MODELS=""
       for id in "test_shapes[mlp_gan]" "test_two_tiny_epochs_move_both_networks[mlp_gan]" \
                 "test_d_steps_per_generator_step[mlp_gan]" "test_minimax_objective_trains[mlp_gan]" \
                 "test_generate_is_seeded[mlp_gan]" test_mlp_gan_follows_the_paper test_bad_arguments \
                 test_unknown_model_lists_the_registry; do
         FAST_MODELS+=" tests/test_models.py::$id"
       done
       DEFAULT_TESTS="tests/test_golden_gan.py tests/test_losses.py$FAST_MODELS" ;;
esac

if ! python3 -c "import mutmut, sys; sys.exit(int(mutmut.__version__.split('.')[0]) < 3)" 2>/dev/null; then
  python3 -m pip install --quiet "mutmut>=3.8,<4"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gan-zoo-mutation.XXXXXX")"
cleanup() { if [ "$KEEP" = 1 ]; then echo "kept: $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT

# The working tree as it is (uncommitted edits included), without git data or run outputs.
tar -C "$ROOT" --exclude=./.git --exclude=./runs --exclude=./evaluation --exclude=./mutants \
    --exclude=__pycache__ --exclude=.pytest_cache --exclude='*.egg-info' -cf - . | tar -C "$WORK" -xf -
if [ -n "$TESTS_FROM" ]; then
  rm -rf "$WORK/tests"
  git -C "$ROOT" archive "$TESTS_FROM" tests | tar -C "$WORK" -xf -
fi

cd "$WORK"
if [ -n "${MUTATION_TESTS:-}" ]; then
  read -r -a SELECTION <<< "$MUTATION_TESTS"
else
  SELECTION=()
  for pattern in $DEFAULT_TESTS; do
    for file in $pattern; do
      if [ -f "${file%%::*}" ] && [[ " ${SELECTION[*]} " != *" $file "* ]]; then SELECTION+=("$file"); fi
    done
  done
fi
if [ ${#SELECTION[@]} -eq 0 ]; then
  echo "error: none of the test files for '$TARGET' exists" >&2
  exit 2
fi

# mutmut reads its settings from setup.cfg; the copy gets its own. Each mutant runs in a
# process forked from a server that has imported only the heavy libraries (no TensorFlow op
# has run in it, so no thread pool is forked); the project's modules are imported afresh in
# every worker, so code that runs at import time (losses/fgan.py builds its divergence table
# then) runs mutated too. The tester credits such code to the first test of the run, hence
# the order of the selection above.
printf '%s\n' numpy scipy scipy.linalg scipy.optimize scipy.stats tensorflow keras > preload.txt
{
  echo "[mutmut]"
  echo "source_paths ="
  echo "    losses"
  echo "    models"
  echo "only_mutate = $ONLY"
  echo "also_copy ="
  for extra in train zoo setup.py; do echo "    $extra"; done
  # The completeness check of the golden table lists every function of losses/, which the
  # mutated copies of the modules multiply: it has nothing to say about a mutant.
  # -n 0: mutmut runs the tests in its own processes, without pytest.ini's xdist workers.
  printf 'pytest_add_cli_args =\n    -q\n    -p\n    no:cacheprovider\n    -n\n    0\n'
  printf '    --deselect\n    tests/test_losses.py::test_every_public_loss_function_has_golden_values\n'
  echo "pytest_add_cli_args_test_selection ="
  for item in "${SELECTION[@]}"; do echo "    $item"; done
  echo "process_isolation = forkserver"
  echo "forkserver_warmup = import"
  echo "preload_modules_file = $WORK/preload.txt"
  echo "timeout_constant = 10"
  echo "use_git_change_detection = false"
} > setup.cfg

echo "mutating $ONLY against: ${SELECTION[*]}${TESTS_FROM:+ (tests of $TESTS_FROM)}"
export TF_CPP_MIN_LOG_LEVEL=2 CUDA_VISIBLE_DEVICES=""
START=$SECONDS
mutmut run --max-children "${MUTATION_CHILDREN:-2}" > mutmut-run.log 2>&1 || {
  tail -40 mutmut-run.log >&2
  echo "error: mutmut run failed (log above; --keep keeps $WORK)" >&2
  exit 1
}
mutmut export-cicd-stats > /dev/null
mutmut results --all true > results.txt
echo "done in $(( SECONDS - START )) s"
python3 - <<'EOF'
import collections
import json

stats = json.load(open("mutants/mutmut-cicd-stats.json"))
print("counts: " + ", ".join(f"{key} {stats[key]}" for key in
                              ("total", "killed", "survived", "no_tests", "timeout", "suspicious", "segfault")))
by_status = collections.defaultdict(list)
for line in open("results.txt"):
    name, _, status = line.strip().rpartition(": ")
    by_status[status].append(name)
for status in ("survived", "no tests", "timeout", "suspicious"):
    for name in sorted(by_status.get(status, [])):
        print(f"{status}: {name}")
EOF
if [ "$KEEP" = 1 ]; then
  for name in $(awk -F': ' '$2 == "survived" {print $1}' results.txt); do mutmut show "$name"; done \
    > survivors.diff 2>&1 || true
  echo "diffs of the survivors: $WORK/survivors.diff"
fi
