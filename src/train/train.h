/*-------------------------------------------------------------------------
 * src/train/train.h
 *		ml.train: read, split, fit the pipeline and the algorithm, measure,
 *		store, and deploy when the model earns it.
 *-------------------------------------------------------------------------
 */
#ifndef PGMAKER_TRAIN_H
#define PGMAKER_TRAIN_H

#include "pgmaker.h"

#include "data/data.h"
#include "eval/eval.h"
#include "model/model.h"

extern double *ModelScoreRows(const Model *m, const DataSet *ds, const int64 *rows,
							  int64 n, int nclasses_y, char **labels_y);
extern void ModelEvaluateRows(const Model *m, const DataSet *ds, const int64 *rows,
							  int64 n, const double *y, int nclasses_y,
							  char **labels_y, int64 seed, bool detailed,
							  Metrics *out);

#endif							/* PGMAKER_TRAIN_H */
