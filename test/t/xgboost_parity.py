#!/usr/bin/python3
# test/t/xgboost_parity.py: the Python side of t/003_xgboost_parity.pl.
#
# Usage:
#   xgboost_parity.py CSV TARGET POSITIVE PREDICTIONS MODEL_JSON OUTDIR
#
# Trains XGBoost in Python on every row of CSV (in file order) with the
# parameters pgmaker's xgboost passes for the hyperparameters
# {"n_estimators": 50, "max_depth": 4, "eta": 0.3, "seed": 1}, predicts
# every row, and compares with PREDICTIONS (one number a line, in the same
# order: pgmaker's ml.predict for regression, the probability of POSITIVE
# from ml.predict_proba for classification; POSITIVE is "-" for
# regression).  Then it loads MODEL_JSON (ml.export_model's output) and
# compares its predictions too.  It prints two lines:
#   train_max_diff <max |python - pgmaker|>
#   export_max_diff <max |exported model - pgmaker|>
# and, for the import test, writes its own model as OUTDIR/python.ubj and
# its predictions as OUTDIR/python_predictions.txt.
import csv
import os
import sys

import numpy as np
import xgboost as xgb

ROUNDS = 50


def load(path, target, positive):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    features = [c for c in rows[0].keys() if c != target]
    X = np.array([[float(r[c]) if r[c] != "" else np.nan for c in features] for r in rows],
                 dtype=np.float64)
    if positive == "-":
        y = np.array([float(r[target]) for r in rows])
    else:
        y = np.array([1.0 if r[target] == positive else 0.0 for r in rows])
    return X, y


def main():
    csv_path, target, positive, pred_path, model_path, outdir = sys.argv[1:7]
    X, y = load(csv_path, target, positive)
    params = {
        "objective": "reg:squarederror" if positive == "-" else "binary:logistic",
        "tree_method": "hist",
        "max_depth": 4,
        "eta": 0.3,
        "seed": 1,
        "nthread": 1,
        "max_bin": 256,
        "min_child_weight": 1,
        "lambda": 1,
        "alpha": 0,
        "subsample": 1,
        "colsample_bytree": 1,
        "colsample_bynode": 1,
        "gamma": 0,
    }
    booster = xgb.train(params, xgb.DMatrix(X, label=y), num_boost_round=ROUNDS)
    ours = booster.predict(xgb.DMatrix(X)).astype(np.float64)
    booster.save_model(os.path.join(outdir, "python.ubj"))
    np.savetxt(os.path.join(outdir, "python_predictions.txt"), ours, fmt="%.17g")

    pgmaker = np.loadtxt(pred_path, dtype=np.float64)
    if pgmaker.shape != ours.shape:
        sys.exit(f"pgmaker gave {pgmaker.shape[0]} predictions for {ours.shape[0]} rows")
    print(f"train_max_diff {np.max(np.abs(ours - pgmaker)):.3e}")

    exported = xgb.Booster(model_file=model_path)
    with open(model_path, "rb") as f:
        from_bytes = xgb.Booster()
        from_bytes.load_model(bytearray(f.read()))
    theirs = exported.predict(xgb.DMatrix(X)).astype(np.float64)
    again = from_bytes.predict(xgb.DMatrix(X)).astype(np.float64)
    if not np.array_equal(theirs, again):
        sys.exit("the exported model predicts differently from a file and from bytes")
    print(f"export_max_diff {np.max(np.abs(theirs - pgmaker)):.3e}")


if __name__ == "__main__":
    main()
