#!/usr/bin/env bash
# scripts/smith.sh: `make smith`: random SQL from sqlsmith against a database
# with pgmaker installed and a few trained projects (regression,
# classification with logistic and XGBoost, k-means), a monitor run, a
# bandit and a labeling job, keeping only queries that call an ml function
# (test/smith/run.py); then mutated JSON against every jsonb argument of
# the ml functions (test/smith/json_fuzz.py).  Prints the statements run,
# the errors and the crashes; fails when any statement crashed a backend,
# and keeps the crashing statements in test/smith/crashers/.
#
# Environment: SMITH_QUERIES (queries that call ml functions to run,
# default 2000), SMITH_SEED (sqlsmith's first seed, and the JSON
# mutations' seed, default 1), SMITH_JSON (JSON statements, default 1000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

QUERIES=${SMITH_QUERIES:-2000}
SEED=${SMITH_SEED:-1}
JSON=${SMITH_JSON:-1000}
[[ $JSON =~ ^[0-9]+$ ]] || { echo "smith: SMITH_JSON must be a non-negative integer" >&2; exit 1; }
[[ $QUERIES =~ ^[1-9][0-9]*$ ]] || { echo "smith: SMITH_QUERIES must be a positive integer" >&2; exit 1; }
[[ $SEED =~ ^[0-9]+$ ]] || { echo "smith: SMITH_SEED must be a non-negative integer" >&2; exit 1; }
command -v sqlsmith >/dev/null 2>&1 || { echo "smith: sqlsmith not found; run make deps" >&2; exit 1; }

make -s
make -s install >/dev/null

CLUSTER=""
OUT=$(mktemp -d /tmp/pgmaker-smith.XXXXXX)
cleanup() {
    [[ -z $CLUSTER ]] || scripts/cluster.sh stop "$CLUSTER" >/dev/null 2>&1 || true
    rm -rf "$OUT"
}
trap cleanup EXIT

CLUSTER=$(PGMAKER_PRELOAD=pgmaker scripts/cluster.sh start | tail -n 1)
# shellcheck disable=SC1091
source "$CLUSTER/env"

psql -X -q -v ON_ERROR_STOP=1 -f test/data/load.sql >/dev/null
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION pgmaker;
SELECT count(*) FROM ml.train('diabetes', 'diabetes', 'progression');
SELECT count(*) FROM ml.train('iris', 'iris', 'species', 'logistic');
SELECT count(*) FROM ml.train('iris_xgb', 'iris', 'species', 'xgboost', hyperparams => '{"n_estimators": 10}');
SELECT count(*) FROM ml.train('wine_clusters', 'SELECT alcohol, malic_acid, ash FROM wine', NULL, 'kmeans',
                              hyperparams => '{"n_clusters": 3}');
SELECT count(*) FROM ml.monitor('diabetes', 'diabetes');
SELECT ml.create_bandit('offers', ARRAY['a', 'b', 'c'], 'linucb', '{"dim": 2}');
SELECT ml.reward('offers', decision_id, 1) FROM ml.choose('offers', ARRAY[0.5, 0.5]::float8[]);
SELECT ml.create_labeling_job('iris_labels', 'SELECT row_number() OVER () AS id, * FROM iris', 'id',
                              '{"labels": ["setosa", "versicolor", "virginica"], "batch_size": 10}');
SELECT ml.submit_label(task_id, 'ann', 'setosa') FROM ml.next_label_task('iris_labels', 'ann');
SQL

echo "== sqlsmith: $QUERIES queries that call ml functions, first seed $SEED"
rc=0
/usr/bin/python3 test/smith/run.py --conninfo "host=$PGHOST port=$PGPORT user=postgres dbname=$PGDATABASE" \
    --log "$CLUSTER/postgres.log" --queries "$QUERIES" --seed "$SEED" --out "$OUT" || rc=$?
if (( JSON > 0 )); then
    echo "== mutated JSON: $JSON statements, seed $SEED"
    /usr/bin/python3 test/smith/json_fuzz.py --conninfo "host=$PGHOST port=$PGPORT user=postgres dbname=$PGDATABASE" \
        --log "$CLUSTER/postgres.log" --statements "$JSON" --seed "$SEED" --out "$OUT" || rc=$?
fi
if compgen -G "$OUT/crash-*.sql" >/dev/null; then
    mkdir -p test/smith/crashers
    for f in "$OUT"/crash-*.sql; do
        cp "$f" "test/smith/crashers/$(date +%Y%m%d%H%M%S)-${f##*/}"
    done
    echo "== crashing queries kept in test/smith/crashers/"
fi
exit $rc
