#!/usr/bin/python3
"""test/bench/xgb_baseline.py: XGBoost's own training time, for `make bench`.

Usage: /usr/bin/python3 xgb_baseline.py FILE NFEAT NTHREAD ROUNDS eval|noeval

FILE is the output of `COPY t (c1, ..., cNFEAT, y) TO STDOUT WITH (FORMAT
binary)`: every column float8 and never NULL, so each tuple is a fixed
2 + (NFEAT + 1) * 12 bytes and the file is parsed with one numpy view (not
timed).  The features become a C-contiguous float32 n x NFEAT matrix (what
pgmaker hands to XGDMatrixCreateFromMat), the target a float32 vector.

One run times, with time.perf_counter():
  dmatrix  xgb.DMatrix(X, label=y, missing=nan, nthread=NTHREAD)
  train    xgb.train(params, dtrain, ROUNDS) with tree_method hist,
           max_depth 6, eta 0.3, reg:squarederror, seed 42, nthread NTHREAD,
           and no evaluation set (XGBoost's plain training time)
and, with "eval",
  train_eval  the same on a fresh DMatrix with evals=[(dtrain, "train")],
           verbose_eval=False: the training loss computed every round, as
           pgmaker's training telemetry does (information only)
It prints "XGB <what> <ms>" lines (dmatrix_train is dmatrix + train), plus
"XGB version <v>" and "XGB rows <n>".  test/bench/run.sh calls it once per
run, alternating with ml.train.
"""
import sys
import time

import numpy as np
import xgboost as xgb


def load(path, nfeat):
    ncol = nfeat + 1
    raw = np.fromfile(path, dtype=np.uint8)
    header = 11 + 4 + 4
    sig = b"PGCOPY\n\xff\r\n\x00"
    if raw[:11].tobytes() != sig:
        sys.exit("xgb_baseline: %s is not a binary COPY file" % path)
    ext = int.from_bytes(raw[15:19].tobytes(), "big")
    start = header + ext
    body = raw[start:len(raw) - 2]  # the trailer is int16 -1
    fields = [("n", ">i2")]
    for j in range(ncol):
        fields += [("l%d" % j, ">i4"), ("v%d" % j, ">f8")]
    dt = np.dtype(fields)
    if body.size % dt.itemsize:
        sys.exit("xgb_baseline: unexpected size of %s (NULLs or other types?)" % path)
    rec = body.view(dt)
    if (rec["n"] != ncol).any() or any((rec["l%d" % j] != 8).any() for j in range(ncol)):
        sys.exit("xgb_baseline: %s has NULLs or non-float8 columns" % path)
    X = np.empty((rec.size, nfeat), dtype=np.float32)
    for j in range(nfeat):
        X[:, j] = rec["v%d" % j]
    y = rec["v%d" % nfeat].astype(np.float32)
    return X, y


def main():
    if len(sys.argv) != 6 or sys.argv[5] not in ("eval", "noeval"):
        sys.exit("usage: xgb_baseline.py FILE NFEAT NTHREAD ROUNDS eval|noeval")
    path, (nfeat, nthread, rounds), with_eval = \
        sys.argv[1], map(int, sys.argv[2:5]), sys.argv[5] == "eval"
    X, y = load(path, nfeat)
    print("XGB version %s" % xgb.__version__)
    print("XGB rows %d" % X.shape[0])
    params = {"tree_method": "hist", "max_depth": 6, "eta": 0.3,
              "objective": "reg:squarederror", "seed": 42, "nthread": nthread}
    t0 = time.perf_counter()
    dtrain = xgb.DMatrix(X, label=y, missing=np.nan, nthread=nthread)
    t1 = time.perf_counter()
    bst = xgb.train(params, dtrain, rounds)
    t2 = time.perf_counter()
    print("XGB dmatrix %.3f" % ((t1 - t0) * 1000))
    print("XGB train %.3f" % ((t2 - t1) * 1000))
    print("XGB dmatrix_train %.3f" % ((t2 - t0) * 1000), flush=True)
    if not with_eval:
        return
    del bst, dtrain
    dtrain = xgb.DMatrix(X, label=y, missing=np.nan, nthread=nthread)
    t0 = time.perf_counter()
    xgb.train(params, dtrain, rounds, evals=[(dtrain, "train")], verbose_eval=False)
    t1 = time.perf_counter()
    print("XGB train_eval %.3f" % ((t1 - t0) * 1000), flush=True)


if __name__ == "__main__":
    main()
