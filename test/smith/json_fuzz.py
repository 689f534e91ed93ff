#!/usr/bin/env python3
"""test/smith/json_fuzz.py: mutated JSON against every jsonb argument of ml.

pgmaker reads hyperparameters, preprocess options, gates, search
arguments, monitor thresholds, job, load, clean, bandit and labeling
options, and prediction inputs from jsonb.  Those parsers walk the
server's jsonb with its iterator, so they are fuzzed here, in the server,
rather than by a libFuzzer harness: each statement passes one mutation of
a valid document to one function, runs in its own rolled-back transaction
with a statement timeout, and a backend that dies on a signal is a crash,
found in the server log by run.py's Runner, which runs the statements.

Mutations, chosen at random from a seeded generator, applied 1 to 4 times:
a value replaced by another type (huge, tiny, negative, fractional,
integer-valued floats, strings that spell numbers, NaN and Infinity as
text, null, booleans, empty and deep arrays and objects, long strings,
non-ASCII text), a key dropped, an unknown key added, a key's value
wrapped in an array, a whole document replaced by a scalar or an array.

Usage: json_fuzz.py --conninfo CONNINFO --log SERVER_LOG --statements N
                    --seed S --out DIR
Prints one line of figures and exits 1 when any statement crashed a backend.
"""

import argparse
import copy
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import Runner  # noqa: E402

# (statement with one %s for the jsonb literal, seed documents)
TARGETS = [
    ("SELECT count(*) FROM ml.train('fz_xgb', 'diabetes', 'progression', 'xgboost', hyperparams => %s)",
     [{"n_estimators": 5, "max_depth": 3, "learning_rate": 0.3, "subsample": 0.8, "seed": 1},
      {"n_estimators": 3, "objective": "reg:squarederror", "min_child_weight": 1, "reg_lambda": 1,
       "early_stopping_rounds": 2, "validation_fraction": 0.2, "tree_method": "hist", "max_bin": 16}]),
    ("SELECT count(*) FROM ml.train('fz_lin', 'diabetes', 'progression', 'elastic_net', hyperparams => %s)",
     [{"alpha": 0.1, "l1_ratio": 0.5, "max_iter": 100, "tol": 1e-6, "cv": 3}]),
    ("SELECT count(*) FROM ml.train('fz_log', 'iris', 'species', 'logistic', hyperparams => %s)",
     [{"C": 1.0, "max_iter": 50, "class_weight": "balanced", "penalty": "l2",
       "rules": {"overfit": {"action": "stop"}, "nan_or_inf": {"action": "alert"}}}]),
    ("SELECT count(*) FROM ml.train('fz_km', 'SELECT alcohol, malic_acid FROM wine', NULL, 'kmeans', "
     "hyperparams => %s)",
     [{"n_clusters": 3, "max_iter": 20, "n_init": 2, "seed": 4}]),
    ("SELECT count(*) FROM ml.train('fz_pre', 'diabetes', 'progression', 'linear', preprocess => %s)",
     [{"impute": "median", "scale": "standard", "exclude": ["s6"], "bmi": {"scale": "minmax", "clip": [-0.1, 0.1]},
       "age": {"bins": 4}, "max_categories": 10}]),
    ("SELECT count(*) FROM ml.train('diabetes', 'diabetes', 'progression', 'ridge', gate => %s)",
     [{"min": {"r2": 0.1}, "max": {"rmse": 100}, "beat_by": {"r2": 0.01}, "significance": 0.05}]),
    ("SELECT count(*) FROM ml.train('fz_s', 'diabetes', 'progression', 'ridge', search => 'random', "
     "search_params => %s)",
     [{"alpha": [0.1, 1, 10]}, {"alpha": {"low": 0.01, "high": 10, "log": True}}]),
    ("SELECT count(*) FROM ml.train('fz_s', 'diabetes', 'progression', 'ridge', search => 'random', "
     "search_params => '{\"alpha\": [0.1, 1]}', search_args => %s)",
     [{"n_iter": 2, "cv": 2, "metric": "r2", "max_seconds": 1}]),
    ("SELECT count(*) FROM ml.autopilot('fz_ap', 'diabetes', 'progression', 1, search_args => %s)",
     [{"algorithms": ["linear", "ridge"], "n_iter": 1, "cv": 2}]),
    ("SELECT count(*) FROM ml.monitor('diabetes', 'diabetes', %s)",
     [{"thresholds": {"psi": 0.2, "js_divergence": 0.1, "null_increase": 0.05, "chi2_p": 0.01},
       "features": {"bmi": {"out_of_range": 0.2}}}]),
    ("SELECT ml.clean('diabetes', 'fz_clean', %s)",
     [{"columns": {"bmi": {"impute": "median", "outliers": {"method": "iqr", "k": 1.5}}},
       "*": {"impute": "mean"}, "dedupe": {"keys": ["age"], "order_by": "bmi", "keep": "first"},
       "drop_columns_null_fraction": 0.5}]),
    ("SELECT ml.predict('diabetes', %s)",
     [{"age": 0.03, "sex": 0.05, "bmi": 0.06, "bp": 0.02, "s1": -0.04, "s2": -0.03, "s3": -0.04,
       "s4": 0.0, "s5": 0.02, "s6": -0.01}]),
    ("SELECT ml.predict_proba('iris', %s)",
     [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]),
    ("SELECT ml.explain('iris_xgb', %s)",
     [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]),
    ("SELECT ml.embed('wine_clusters', %s)",
     [{"alcohol": 13.0, "malic_acid": 2.0, "ash": 2.3}]),
    ("SELECT ml.create_bandit('fz_b', ARRAY['a', 'b'], 'linucb', %s)",
     [{"dim": 2, "alpha": 1, "lambda": 1, "seed": 1},
      {"features": ["x", "y"], "intercept": True}]),
    ("SELECT ml.create_bandit('fz_t', ARRAY['a', 'b'], 'thompson', %s)",
     [{"prior_alpha": 1, "prior_beta": 1, "seed": 2}]),
    ("SELECT * FROM ml.choose('offers', %s)", [{"x": 0.5, "y": 0.25}]),
    ("SELECT ml.create_labeling_job('fz_l', 'SELECT row_number() OVER () AS id, * FROM iris', 'id', %s)",
     [{"labels": ["setosa", "versicolor"], "labelers_per_item": 2, "batch_size": 5, "strategy": "random",
       "gold": {"1": "setosa"}, "gold_rate": 0.1, "task_timeout": "10 minutes", "seed": 1}]),
    ("SELECT * FROM ml.model_quality('diabetes', now() - interval '1 day', '1 hour', %s)",
     [{"min": {"r2": 0.1}, "max": {"rmse": 80}}]),
    ("SELECT ml.set_credentials('fz_c', %s)",
     [{"access_key_id": "AKIA", "secret_access_key": "x", "region": "eu-west-1", "session_token": "t"}]),
    ("SELECT ml.create_alert_channel('fz_a', 'http://127.0.0.1:9/', %s)",
     [{"Authorization": "Bearer x"}]),
    ("SELECT ml.load('file:///nonexistent/fz.csv', 'fz_load', 'csv', %s)",
     [{"delimiter": ";", "header": True, "mode": "create", "on_error": "skip", "sample_rows": 10,
       "null": "NA", "quote": "'", "encoding": "LATIN1"}]),
]

ATOMS = [
    None, True, False, 0, -1, 1, 2, 3, 7, 2 ** 31, 2 ** 31 - 1, -2 ** 31, 2 ** 63, -2 ** 63, 10 ** 30,
    1e308, -1e308, 5e-324, 0.5, -0.5, 1.0, 1e-9, 123456789.123, "", "0", "1", "-1", "1e400", "NaN",
    "nan", "Infinity", "-Infinity", "true", "null", "none", "median", "standard", "one_hot", "r2",
    "rmse", "f1", "auto", "balanced", "1 hour", "-1 day", "1000000 years", "\u00e9\u00e8\u4e2d",
    "x" * 70, "y" * 5000, [], {}, [1, 2, 3], ["a"], {"a": 1}, [[[]]], {"": None},
]


def deep(depth):
    value = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def random_value(rng):
    r = rng.random()
    if r < 0.85:
        return copy.deepcopy(rng.choice(ATOMS))   # mutated in place later
    if r < 0.95:
        return deep(rng.choice([10, 100, 1000, 5000]))
    return [copy.deepcopy(rng.choice(ATOMS)) for _ in range(rng.choice([1, 10, 1000, 20000]))]


def paths(doc, depth=0):
    """The (container, key) pairs of a document, down to depth 6 and at
    most 50 items of a container (deep and long values are mutated whole)."""
    out = []
    if depth > 6:
        return out
    if isinstance(doc, dict):
        for k, v in list(doc.items())[:50]:
            out.append((doc, k))
            out += paths(v, depth + 1)
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:50]):
            out.append((doc, i))
            out += paths(v, depth + 1)
    return out


def mutate(doc, rng):
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 4)):
        spots = paths(doc)
        op = rng.random()
        if not spots or op < 0.03:
            doc = random_value(rng)
            continue
        parent, key = rng.choice(spots)
        if op < 0.55:
            parent[key] = random_value(rng)
        elif op < 0.70 and isinstance(parent, dict):
            del parent[key]
        elif op < 0.85 and isinstance(parent, dict):
            parent[rng.choice(["unknown", "seed", "n_estimators", "alpha", "labels", "thresholds",
                               "x" * rng.choice([1, 64, 300])])] = random_value(rng)
        else:
            parent[key] = [parent[key]]
    return doc


def literal(doc):
    return "'" + json.dumps(doc).replace("'", "''") + "'::jsonb"


def main():
    sys.setrecursionlimit(100000)   # the deep values, through copy and json
    ap = argparse.ArgumentParser()
    ap.add_argument("--conninfo", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--statements", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    rng = random.Random(args.seed)
    runner = Runner(args.conninfo, args.log, args.out, "crash-json")
    started = time.time()
    for n in range(args.statements):
        template, seeds = TARGETS[n % len(TARGETS)]
        runner.run(template % literal(mutate(rng.choice(seeds), rng)))
    runner.close()
    print("json: %d statements over %d functions' jsonb arguments, %d succeeded, %d errors, "
          "%d crashes, %.0f s" % (args.statements, len(TARGETS), runner.succeeded, runner.errors,
                                  runner.crashes, time.time() - started))
    sys.exit(1 if runner.crashes else 0)


if __name__ == "__main__":
    main()
