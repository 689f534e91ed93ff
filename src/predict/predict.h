/*-------------------------------------------------------------------------
 * src/predict/predict.h
 *		The per-backend model cache and the prediction functions.
 *
 * Each backend keeps its deserialised models, by project and by model id.
 * A statement trigger on the catalog tables raises a relcache invalidation
 * on commit; the callback marks the cache stale, and the next lookup
 * retires every entry.  Retired models stay allocated until the end of
 * the transaction, because a running statement may still use one through
 * fn_extra.  A call site keeps its model while the backend learns of no
 * catalog change; once it has processed one, the call site looks its model
 * up again on its next row (docs/reference.md, "Deployments and the
 * prediction cache").
 *-------------------------------------------------------------------------
 */
#ifndef PGMAKER_PREDICT_H
#define PGMAKER_PREDICT_H

#include "pgmaker.h"

#include "model/model.h"

extern uint64 CacheGeneration;
extern uint64 RelcacheGeneration;

extern Model *CacheProjectModel(const char *project);
extern Model *CacheModel(int64 model_id);
extern void CacheInvalidate(void);

#endif							/* PGMAKER_PREDICT_H */
