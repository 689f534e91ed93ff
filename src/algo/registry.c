/*-------------------------------------------------------------------------
 * src/algo/registry.c
 *		The list of algorithms, the default of each task, and block access
 *		to the training matrix.
 *-------------------------------------------------------------------------
 */
#include "algo/algo.h"

#include <cblas.h>

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
	&endpoint_algo,
	&ensemble_algo,
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

	if (spec && !spec->internal)
		return spec;

	initStringInfo(&names);
	for (int i = 0; i < lengthof(algorithms); i++)
		if (!algorithms[i]->internal)
			appendStringInfo(&names, "%s%s", names.len ? ", " : "", algorithms[i]->name);
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
		if ((algorithms[i]->tasks & ML_TASK_BIT(task)) && !algorithms[i]->internal)
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
 * TrainLogAdd records one iteration's figures (NaN where none applies)
 * and has the debugger rules look at them; false: a rule stops the run.
 */
bool
TrainLogAdd(TrainSet *ts, const char *norm_name, int iteration,
			double train_loss, double validation_loss, double norm)
{
	TrainLog   *log = ts->log;
	TrainLogEntry *e;

	if (log == NULL)
		return true;
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
	e->elapsed = SecondsSince(log->start);
	return DebugObserve(log);
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
 * TrainSetCrossProducts accumulates, in one pass over the training rows,
 * X'X (upper triangle) and, with_y, X'y and y'y, of the rows centred on
 * their means when centre is set.  The sums run on data shifted by the
 * first block's means (close to the final means, so the correction loses
 * no precision) and are then corrected to the true means; without centring
 * nothing is shifted.
 */
void
TrainSetCrossProducts(TrainSet *ts, bool centre, bool with_y, CrossProducts *cp)
{
	int			p = ts->p;
	double	   *cblock = palloc(sizeof(double) * TRAIN_BLOCK_ROWS * Max(p, 1));
	double	   *yc = palloc(sizeof(double) * TRAIN_BLOCK_ROWS);
	double	   *shift = palloc0(sizeof(double) * Max(p, 1));
	double	   *xsum = palloc0(sizeof(double) * Max(p, 1));
	double		yshift = 0.0;
	double		ysum = 0.0;
	double		ysq = 0.0;
	bool		shifted = false;
	TrainBlock	blk;

	cp->p = p;
	cp->XtX = palloc0(sizeof(double) * Max((Size) p * p, 1));
	cp->Xty = with_y ? palloc0(sizeof(double) * Max(p, 1)) : NULL;
	cp->xmean = palloc0(sizeof(double) * Max(p, 1));
	cp->ymean = 0.0;

	MLApplyThreadLimit(2.0 * TRAIN_BLOCK_ROWS * p * p);
	TrainSetBlockBegin(ts, &blk);
	while (TrainSetNextBlock(ts, &blk))
	{
		if (centre && !shifted)
		{
			for (int j = 0; j < p; j++)
			{
				const double *src = blk.X + (Size) j * blk.ld;

				for (int i = 0; i < blk.count; i++)
					shift[j] += src[i];
				shift[j] /= blk.count;
			}
			for (int i = 0; with_y && i < blk.count; i++)
				yshift += ts->y[blk.start + i];
			yshift /= blk.count;
			shifted = true;
		}
		for (int j = 0; j < p; j++)
		{
			const double *src = blk.X + (Size) j * blk.ld;
			double	   *dst = cblock + (Size) j * blk.count;
			double		s = 0.0;

			for (int i = 0; i < blk.count; i++)
			{
				dst[i] = src[i] - shift[j];
				s += dst[i];
			}
			xsum[j] += s;
		}
		if (p > 0)
			cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, p, blk.count,
						1.0, cblock, blk.count, 1.0, cp->XtX, p);
		if (!with_y)
			continue;
		for (int i = 0; i < blk.count; i++)
		{
			yc[i] = ts->y[blk.start + i] - yshift;
			ysum += yc[i];
			ysq += yc[i] * yc[i];
		}
		if (p > 0)
			cblas_dgemv(CblasColMajor, CblasTrans, blk.count, p, 1.0, cblock,
						blk.count, yc, 1, 1.0, cp->Xty, 1);
	}
	TrainSetBlockEnd(&blk);

	if (centre)
	{
		double		n = (double) ts->n;
		double		dy = ysum / n;

		for (int j = 0; j < p; j++)
		{
			double		dj = xsum[j] / n;

			for (int i = 0; i <= j; i++)
				cp->XtX[(Size) j * p + i] -= n * (xsum[i] / n) * dj;
			if (with_y)
				cp->Xty[j] -= n * dj * dy;
			cp->xmean[j] = shift[j] + dj;
		}
		ysq -= n * dy * dy;
		cp->ymean = yshift + dy;
	}
	cp->yty = Max(ysq, 0.0);
	pfree(cblock);
	pfree(yc);
	pfree(shift);
	pfree(xsum);
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
