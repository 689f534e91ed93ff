#!/usr/bin/python3
"""test/bench/py_route.py: the Python route to the same models, for `make bench`.

Usage: /usr/bin/python3 py_route.py NFEAT THRESHOLD [NTHREAD ROUNDS]

What a data scientist would run outside the database: psycopg2 pulls
c1..cNFEAT and y of table t (connection from the PG* environment), numpy
makes the matrix, scikit-learn splits 75/25 (random_state 42) and fits
  linear    LinearRegression, hold-out R^2
  logistic  LogisticRegression(max_iter=1000) on y > THRESHOLD, hold-out
            accuracy
and, with NTHREAD and ROUNDS,
  xgboost   the same 75/25 split as linear's, xgb.DMatrix of the training
            rows and xgb.train for ROUNDS rounds with the parameters of
            xgb_baseline.py (tree_method hist, max_depth 6, eta 0.3,
            reg:squarederror, seed 42, nthread NTHREAD); hold-out R^2 of
            its predictions on the other 25%
Every step is timed with time.perf_counter(); each model's end-to-end time
is the pull (query, fetch, matrix) plus its split and fit (for xgboost:
split + DMatrix + xgb.train; the hold-out prediction is not counted).
Prints "PY <what> <value>" lines.  Debian's python3-psycopg2,
python3-numpy, python3-sklearn and, for xgboost, python3-xgboost.
"""
import sys
import time

import numpy as np
import psycopg2
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split


def main():
    if len(sys.argv) not in (3, 5):
        sys.exit("usage: py_route.py NFEAT THRESHOLD [NTHREAD ROUNDS]")
    nfeat, threshold = int(sys.argv[1]), float(sys.argv[2])
    with_xgb = len(sys.argv) == 5
    if with_xgb:
        nthread, rounds = int(sys.argv[3]), int(sys.argv[4])
        import xgboost as xgb  # only when asked for: python3-xgboost
    cols = ", ".join("c%d" % k for k in range(1, nfeat + 1))
    t0 = time.perf_counter()
    conn = psycopg2.connect("")
    cur = conn.cursor()
    cur.execute("SELECT %s, y FROM t" % cols)
    rows = cur.fetchall()
    data = np.array(rows, dtype=np.float64)
    del rows
    conn.close()
    t1 = time.perf_counter()
    X, y = data[:, :nfeat], data[:, nfeat]
    print("PY rows %d" % X.shape[0])
    print("PY pull %.3f" % ((t1 - t0) * 1000))

    t2 = time.perf_counter()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=42)
    lin = LinearRegression().fit(Xtr, ytr)
    r2 = lin.score(Xte, yte)
    t3 = time.perf_counter()
    print("PY linear_fit %.3f" % ((t3 - t2) * 1000))
    print("PY linear_total %.3f" % ((t1 - t0 + t3 - t2) * 1000))
    print("PY linear_r2 %.6f" % r2)

    t4 = time.perf_counter()
    yb = y > threshold
    Xtr, Xte, ytr, yte = train_test_split(X, yb, test_size=0.25, random_state=42, stratify=yb)
    log = LogisticRegression(max_iter=1000).fit(Xtr, ytr)
    acc = log.score(Xte, yte)
    t5 = time.perf_counter()
    print("PY logistic_fit %.3f" % ((t5 - t4) * 1000))
    print("PY logistic_total %.3f" % ((t1 - t0 + t5 - t4) * 1000))
    print("PY logistic_accuracy %.6f" % acc, flush=True)
    if not with_xgb:
        return

    params = {"tree_method": "hist", "max_depth": 6, "eta": 0.3,
              "objective": "reg:squarederror", "seed": 42, "nthread": nthread}
    t6 = time.perf_counter()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=42)
    t7 = time.perf_counter()
    dtrain = xgb.DMatrix(Xtr, label=ytr, missing=np.nan, nthread=nthread)
    t8 = time.perf_counter()
    bst = xgb.train(params, dtrain, rounds)
    t9 = time.perf_counter()
    pred = bst.predict(xgb.DMatrix(Xte, missing=np.nan, nthread=nthread))
    xr2 = r2_score(yte, pred)
    print("PY xgboost_version %s" % xgb.__version__)
    print("PY xgboost_dmatrix %.3f" % ((t8 - t7) * 1000))
    print("PY xgboost_train %.3f" % ((t9 - t8) * 1000))
    print("PY xgboost_total %.3f" % ((t1 - t0 + t9 - t6) * 1000))
    print("PY xgboost_r2 %.6f" % xr2, flush=True)


if __name__ == "__main__":
    main()
