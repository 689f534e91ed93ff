/*-------------------------------------------------------------------------
 * src/pgmaker.h
 *		Declarations shared by every pgmaker module: the task kinds, the
 *		ml.* settings and each module's initialisation entry point.
 *-------------------------------------------------------------------------
 */
#ifndef PGMAKER_H
#define PGMAKER_H

#include "postgres.h"

#include "utils/jsonb.h"

/* The kind of learning problem a project solves; fixed at its first model. */
typedef enum MLTask
{
	ML_TASK_REGRESSION = 0,
	ML_TASK_CLASSIFICATION,
	ML_TASK_CLUSTERING,
	ML_TASK_DECOMPOSITION
} MLTask;

#define ML_TASK_BIT(t)	(1u << (t))

extern const char *MLTaskName(MLTask task);
extern bool MLTaskFromName(const char *name, MLTask *task);

/* Settings (src/guc.c). */
extern int	ml_aggregate_train_min_rows;
extern char *ml_database;
extern int	ml_max_workers;
extern int	ml_capture_buffer;	/* kB */
extern int	ml_naptime;		/* ms */
extern int	ml_max_train_memory;	/* kB */
extern int	ml_threads;

extern void GucInit(void);
#define ML_PARALLEL_MIN_FLOPS 5e7
extern void MLApplyThreadLimit(double flops);

/* jsonb helpers (src/pgmaker.c). */
struct JsonbValue;
struct JsonbParseState;
typedef void (*JsonbKeyVisitor) (const char *key, struct JsonbValue *value, void *arg);

extern void JsonbForEachKey(Jsonb *object, const char *what,
							JsonbKeyVisitor visit, void *arg);
extern const char *JsonbValueTypeName(const struct JsonbValue *v);
extern bool JsonbValueToDouble(const struct JsonbValue *v, double *out);
extern char *JsonbValueToCString(const struct JsonbValue *v);
extern void JbKey(struct JsonbParseState **st, const char *key);
extern void JbString(struct JsonbParseState **st, const char *value);
extern void JbJsonb(struct JsonbParseState **st, Jsonb *value);
extern void JbFloat(struct JsonbParseState **st, double value);
extern void JbInt(struct JsonbParseState **st, int64 value);
extern void JbBool(struct JsonbParseState **st, bool value);
extern void JbNull(struct JsonbParseState **st);
extern void JbBeginObject(struct JsonbParseState **st);
extern void JbEndObject(struct JsonbParseState **st);
extern void JbBeginArray(struct JsonbParseState **st);
extern void JbEndArray(struct JsonbParseState **st);
extern Jsonb *JbFinishObject(struct JsonbParseState **st);
extern Jsonb *JbFinishArray(struct JsonbParseState **st);
extern Jsonb *JbParse(const char *text);
extern Jsonb *JbConcat(Jsonb *a, Jsonb *b);

/*
 * Helpers of the aggregates with bytea states (src/pgmaker.c): a state
 * argument detoasted and, when only 4-byte aligned (as in a tuple), copied
 * so that its int64 and double fields are aligned; and the error of a
 * transition, combine or final function called as a plain function.
 */
extern bytea *MLAlignedBytea(bytea *b);
extern void MLNotInAggregate(const char *fn) pg_attribute_noreturn();

/*
 * JSON parsed with semantic actions (common/jsonapi.h), which return a
 * status since PostgreSQL 16: declare them ML_JSON_ACTION and end them
 * with ML_JSON_ACTION_DONE.  JsonParseText runs a parse (sem NULL: only
 * checks the text) and returns whether it succeeded; it never raises.
 */
#if PG_VERSION_NUM >= 160000
#define ML_JSON_ACTION JsonParseErrorType
#define ML_JSON_ACTION_DONE return JSON_SUCCESS
#else
#define ML_JSON_ACTION void
#define ML_JSON_ACTION_DONE return
#endif
struct JsonSemAction;
extern bool JsonParseText(char *text, int len, struct JsonSemAction *sem);

/* Seconds from start (a TimestampTz) to now. */
extern double SecondsSince(int64 start);

/* Module initialisation, called once from _PG_init. */
extern void PredictInit(void);

/* src/monitor/capture.c: prediction capture's shared memory */
extern void CaptureInit(void);

/* src/bgw: the launcher and the job workers */
#define ML_MAX_JOB_WORKERS 64
extern void BgwInit(void);

#endif							/* PGMAKER_H */
