/*-------------------------------------------------------------------------
 * src/algo/registry.c
 *		The list of algorithms, the default of each task, and block access
 *		to the training matrix.
 *-------------------------------------------------------------------------
 */
#include "algo/algo.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

static const AlgoSpec *const algorithms[] = {
	&linear_algo,
	&ridge_algo,
	&lasso_algo,
	&elastic_net_algo,
	&logistic_algo,
	&naive_bayes_algo,
	&linear_svm_algo,
	&xgboost_algo,
	&random_forest_algo,
	&kmeans_algo,
	&pca_algo,
};

/*
 * AlgoFind returns the algorithm with this name, or NULL.
 */
const AlgoSpec *
AlgoFind(const char *name)
{
	for (int i = 0; i < lengthof(algorithms); i++)
		if (strcmp(algorithms[i]->name, name) == 0)
			return algorithms[i];
	return NULL;
}

/*
 * AlgoLookup returns the algorithm with this name; an unknown name is an
 * error that lists the known ones.
 */
const AlgoSpec *
AlgoLookup(const char *name)
{
	const AlgoSpec *spec = AlgoFind(name);
	StringInfoData names;

	if (spec)
		return spec;

	initStringInfo(&names);
	for (int i = 0; i < lengthof(algorithms); i++)
		appendStringInfo(&names, "%s%s", i ? ", " : "", algorithms[i]->name);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown algorithm \"%s\"", name),
			 errhint("Known algorithms are %s.", names.data)));
	return NULL;				/* keep compiler quiet */
}

/*
 * AlgoDefault returns the algorithm used when ml.train is given none.
 */
const AlgoSpec *
AlgoDefault(MLTask task)
{
	static const char *const defaults[] = {
		[ML_TASK_REGRESSION] = "linear",
		[ML_TASK_CLASSIFICATION] = "logistic",
		[ML_TASK_CLUSTERING] = "kmeans",
		[ML_TASK_DECOMPOSITION] = "pca",
	};
	const AlgoSpec *spec = AlgoFind(defaults[task]);

	if (spec == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("no algorithm for task %s yet", MLTaskName(task))));
	return spec;
}

/*
 * AlgoNamesForTask lists the algorithms that do a task, for hints.
 */
char *
AlgoNamesForTask(MLTask task)
{
	StringInfoData names;

	initStringInfo(&names);
	for (int i = 0; i < lengthof(algorithms); i++)
		if (algorithms[i]->tasks & ML_TASK_BIT(task))
			appendStringInfo(&names, "%s%s", names.len ? ", " : "", algorithms[i]->name);
	return names.len ? names.data : pstrdup("none yet");
}

/*
 * AlgoOutputs is the number of values predict writes per row.
 */
int
AlgoOutputs(const AlgoModel *m)
{
	switch (m->task)
	{
		case ML_TASK_REGRESSION:
			return 1;
		case ML_TASK_CLASSIFICATION:
			return m->nclasses;
		default:
			return m->noutputs;
	}
}

/*
 * TrainLogAdd records one iteration's figures (NaN where none applies).
 */
void
TrainLogAdd(TrainSet *ts, const char *norm_name, int iteration,
			double train_loss, double validation_loss, double norm)
{
	TrainLog   *log = ts->log;
	TrainLogEntry *e;
	long		secs;
	int			usecs;

	if (log == NULL)
		return;
	if (log->n == log->cap)
	{
		log->cap = Max(64, log->cap * 2);
		log->entries = log->entries ?
			repalloc(log->entries, sizeof(TrainLogEntry) * log->cap) :
			palloc(sizeof(TrainLogEntry) * log->cap);
	}
	e = &log->entries[log->n++];
	log->norm_name = norm_name;
	e->iteration = iteration;
	e->train_loss = train_loss;
	e->validation_loss = validation_loss;
	e->norm = norm;
	TimestampDifference((TimestampTz) log->start, GetCurrentTimestamp(), &secs, &usecs);
	e->elapsed = (double) secs + (double) usecs / 1e6;
}

/*
 * TrainSetBlockBegin prepares a walk over the training rows in blocks.
 */
void
TrainSetBlockBegin(const TrainSet *ts, TrainBlock *blk)
{
	memset(blk, 0, sizeof(*blk));
	if (ts->X == NULL)
		blk->buf = palloc(sizeof(double) * TRAIN_BLOCK_ROWS * Max(ts->p, 1));
}

/*
 * TrainSetNextBlock moves to the next block of at most TRAIN_BLOCK_ROWS
 * rows; false when every row has been seen.  Checks for interrupts.
 */
bool
TrainSetNextBlock(const TrainSet *ts, TrainBlock *blk)
{
	blk->start += blk->count;
	if (blk->start >= ts->n)
		return false;
	blk->count = (int) Min((int64) TRAIN_BLOCK_ROWS, ts->n - blk->start);
	CHECK_FOR_INTERRUPTS();
	if (ts->X)
	{
		blk->X = ts->X + blk->start;
		blk->ld = (int) ts->n;
	}
	else
	{
		PipelineTransformBlock(ts->binding, ts->rows + blk->start, blk->count,
							   blk->buf, blk->count);
		blk->X = blk->buf;
		blk->ld = blk->count;
	}
	return true;
}

void
TrainSetBlockEnd(TrainBlock *blk)
{
	if (blk->buf)
		pfree(blk->buf);
	blk->buf = NULL;
}

/*
 * TrainSetMaterialize transforms every training row once into an n x p
 * column-major matrix, for algorithms that pass over the data many times.
 * It does so only when the matrix and the data read fit together within
 * ml.max_train_memory, and returns whether it did; otherwise blocks keep
 * being transformed on the fly.
 */
bool
TrainSetMaterialize(TrainSet *ts)
{
	Size		bytes = (Size) ts->n * ts->p * sizeof(double);
	Size		limit = (Size) ml_max_train_memory * 1024;

	if (ts->X)
		return true;
	if (ts->binding->ds->bytes + bytes > limit)
		return false;
	ts->X = MemoryContextAllocHuge(CurrentMemoryContext, Max(bytes, sizeof(double)));
	for (int64 start = 0; start < ts->n; start += TRAIN_BLOCK_ROWS)
	{
		int			count = (int) Min((int64) TRAIN_BLOCK_ROWS, ts->n - start);

		/* rows start..start+count-1 of every column; leading dimension n */
		PipelineTransformBlock(ts->binding, ts->rows + start, count,
							   ts->X + start, (int) ts->n);
		CHECK_FOR_INTERRUPTS();
	}
	return true;
}
