/*-------------------------------------------------------------------------
 * src/train/train.c
 *		ml.train: the whole training run in one transaction.
 *
 * Steps: validate the arguments; read the source with the caller's rights;
 * settle the task and encode the target; split deterministically; fit the
 * pipeline on the training rows only; fit the algorithm; measure it on
 * the hold-out rows (or, with test_size 0, on the training rows, and say
 * so); write the project, the model and maybe a deployment.  An error or
 * a cancel at any point leaves no catalog row, since all writes happen at
 * the end of the same transaction.  The data lives in a memory context of
 * its own, deleted before the result row is returned.
 *-------------------------------------------------------------------------
 */
#include "train/train.h"

#include <math.h>

#include "catalog/catalog.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "predict/predict.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/jsonb.h"

PG_FUNCTION_INFO_V1(ml_train);
PG_FUNCTION_INFO_V1(ml_evaluate);

#define MAX_CLASSES 1000
#define TRAIN_METRICS_MAX_ROWS 100000
#define INFER_MAX_INT_CLASSES 10

typedef enum DeployMode
{
	DEPLOY_AUTO,
	DEPLOY_ALWAYS,
	DEPLOY_NEVER
} DeployMode;

/* The encoded target. */
typedef struct Target
{
	double	   *y;				/* value, or class index */
	int			nclasses;
	char	  **labels;
	double	   *label_values;
	bool		labels_numeric;
} Target;

typedef struct TrainResult
{
	char	   *project;
	int64		model_id;
	const char *algorithm;
	Jsonb	   *metrics;
	bool		deployed;
} TrainResult;

static bool
is_integer_type(Oid typid)
{
	Oid			base = getBaseType(typid);

	return base == INT2OID || base == INT4OID || base == INT8OID;
}

static bool
is_bool_type(Oid typid)
{
	return getBaseType(typid) == BOOLOID;
}

static int
double_cmp(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return x < y ? -1 : (x > y);
}

static int
cstring_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Distinct values of a numeric column, sorted; stops counting past max. */
static int
numeric_distinct(const DataColumn *col, int64 n, int max, double **out)
{
	double	   *v = palloc_extended(sizeof(double) * Max(n, 1), MCXT_ALLOC_HUGE);
	int			k = 0;

	memcpy(v, col->values, sizeof(double) * n);
	qsort(v, n, sizeof(double), double_cmp);
	for (int64 i = 0; i < n; i++)
	{
		if (i == 0 || v[i] != v[i - 1])
		{
			if (k == max)
				return max + 1;
			v[k++] = v[i];
		}
	}
	*out = v;
	return k;
}

/*
 * Settles the task: the one asked for, the project's, or inferred from
 * the target (and, without one, from the algorithm, if one was named).
 */
static MLTask
settle_task(const DataSet *ds, const char *task_arg, const ProjectInfo *project,
			const AlgoSpec *spec)
{
	MLTask		task;

	if (task_arg)
	{
		if (!MLTaskFromName(task_arg, &task))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown task \"%s\"", task_arg),
					 errhint("Tasks are regression, classification, clustering and decomposition.")));
	}
	else if (project)
		task = project->task;
	else if (ds->target == NULL)
	{
		/* no target: clustering, unless the algorithm only decomposes */
		task = spec && (spec->tasks & ML_TASK_BIT(ML_TASK_DECOMPOSITION)) &&
			!(spec->tasks & ML_TASK_BIT(ML_TASK_CLUSTERING)) ?
			ML_TASK_DECOMPOSITION : ML_TASK_CLUSTERING;
	}
	else if (ds->target->categorical || is_bool_type(ds->target->typid))
		task = ML_TASK_CLASSIFICATION;
	else if (is_integer_type(ds->target->typid))
	{
		double	   *distinct;

		task = numeric_distinct(ds->target, ds->nrows, INFER_MAX_INT_CLASSES, &distinct)
			<= INFER_MAX_INT_CLASSES ? ML_TASK_CLASSIFICATION : ML_TASK_REGRESSION;
	}
	else
		task = ML_TASK_REGRESSION;

	if (project && project->task != task)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("project \"%s\" does %s, not %s", project->name,
						MLTaskName(project->task), MLTaskName(task)),
				 errhint("A project's task is fixed by its first model; use another project name.")));
	if ((task == ML_TASK_REGRESSION || task == ML_TASK_CLASSIFICATION) && ds->target == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("task %s needs a target column", MLTaskName(task))));
	if ((task == ML_TASK_CLUSTERING || task == ML_TASK_DECOMPOSITION) && ds->target != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("task %s takes no target column", MLTaskName(task)),
				 errhint("Pass target => NULL, and exclude the column from the source if it should not be a feature.")));
	return task;
}

/* Encodes the target as values (regression) or class indexes. */
static void
encode_target(const DataSet *ds, MLTask task, Target *t)
{
	const DataColumn *col = ds->target;
	int64		n = ds->nrows;

	memset(t, 0, sizeof(*t));
	if (task == ML_TASK_REGRESSION)
	{
		if (col->categorical)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("regression target \"%s\" must be numeric, not %s", col->name,
							format_type_be(col->typid)),
					 errhint("Pass task => 'classification' to predict its categories.")));
		t->y = col->values;
		return;
	}

	t->y = palloc_extended(sizeof(double) * Max(n, 1), MCXT_ALLOC_HUGE);
	if (col->categorical)
	{
		char	  **sorted = palloc(sizeof(char *) * Max(col->ndict, 1));
		int		   *rank = palloc(sizeof(int) * Max(col->ndict, 1));

		if (col->ndict > MAX_CLASSES)
			goto too_many;
		memcpy(sorted, col->dict, sizeof(char *) * col->ndict);
		qsort(sorted, col->ndict, sizeof(char *), cstring_ptr_cmp);
		for (int d = 0; d < col->ndict; d++)
			for (int s = 0; s < col->ndict; s++)
				if (sorted[s] == col->dict[d])
					rank[d] = s;
		for (int64 i = 0; i < n; i++)
			t->y[i] = rank[col->codes[i]];
		t->nclasses = col->ndict;
		t->labels = sorted;
	}
	else
	{
		double	   *distinct;
		int			k = numeric_distinct(col, n, MAX_CLASSES, &distinct);

		if (k > MAX_CLASSES)
			goto too_many;
		for (int64 i = 0; i < n; i++)
		{
			double	   *hit = bsearch(&col->values[i], distinct, k, sizeof(double), double_cmp);

			t->y[i] = (double) (hit - distinct);
		}
		t->nclasses = k;
		t->labels_numeric = true;
		t->label_values = distinct;
		t->labels = palloc(sizeof(char *) * Max(k, 1));
		for (int c = 0; c < k; c++)
		{
			if (is_bool_type(col->typid))
				t->labels[c] = pstrdup(distinct[c] != 0 ? "true" : "false");
			else if (is_integer_type(col->typid) && fabs(distinct[c]) < 9.2e18)
				t->labels[c] = psprintf("%lld", (long long) distinct[c]);
			else if (is_integer_type(col->typid))
				t->labels[c] = psprintf("%.0f", distinct[c]);
			else
				t->labels[c] = float8out_internal(distinct[c]);
		}
	}
	if (t->nclasses < 2)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("target column \"%s\" has only one class (\"%s\")", col->name, t->labels[0]),
				 errhint("Classification needs at least two classes in the target.")));
	return;

too_many:
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("target column \"%s\" has more than %d classes", col->name, MAX_CLASSES),
			 errhint("If it is a quantity, pass task => 'regression'.")));
}

/*
 * Metrics of an unsupervised model on DataSet rows.  Clustering: inertia
 * (squared distance to the nearest centre, summed) over every row, and
 * the silhouette of a seeded sample of at most SILHOUETTE_MAX_ROWS rows.
 * Decomposition: the share of the rows' total variance that the
 * projections keep (the components are orthonormal, so the variances of
 * the projections add up to the variance they explain).
 */
static void
evaluate_unsupervised(const Model *m, PipelineBinding *b, const int64 *rows,
					  int64 n, int64 seed, Metrics *out)
{
	int			p = m->pipeline->nfeatures;
	int			k = ModelOutputs(m);
	double	   *X = palloc(sizeof(double) * TRAIN_BLOCK_ROWS * Max(p, 1));
	double	   *o = palloc(sizeof(double) * TRAIN_BLOCK_ROWS * k);
	double	   *xshift = palloc0(sizeof(double) * Max(p, 1));
	double	   *xs1 = palloc0(sizeof(double) * Max(p, 1));
	double	   *xs2 = palloc0(sizeof(double) * Max(p, 1));
	double	   *oshift = palloc0(sizeof(double) * k);
	double	   *os1 = palloc0(sizeof(double) * k);
	double	   *os2 = palloc0(sizeof(double) * k);
	double		inertia = 0.0;

	MetricsCompute(out, m->task, NULL, NULL, 0, 0, false, false);
	out->n = n;
	for (int64 start = 0; start < n; start += TRAIN_BLOCK_ROWS)
	{
		int			count = (int) Min((int64) TRAIN_BLOCK_ROWS, n - start);

		CHECK_FOR_INTERRUPTS();
		PipelineTransformBlock(b, rows + start, count, X, count);
		ModelPredictBlock(m, X, count, count, o);
		if (m->task == ML_TASK_CLUSTERING)
		{
			for (int i = 0; i < count; i++)
			{
				double		d = o[(Size) i * k + ModelNearestCluster(m, o + (Size) i * k)];

				inertia += d * d;
			}
			continue;
		}
		/* variances by sums shifted by the first row, row-major outputs */
		if (start == 0)
		{
			for (int j = 0; j < p; j++)
				xshift[j] = X[(Size) j * count];
			for (int c = 0; c < k; c++)
				oshift[c] = o[c];
		}
		for (int j = 0; j < p; j++)
			for (int i = 0; i < count; i++)
			{
				double		d = X[(Size) j * count + i] - xshift[j];

				xs1[j] += d;
				xs2[j] += d * d;
			}
		for (int i = 0; i < count; i++)
			for (int c = 0; c < k; c++)
			{
				double		d = o[(Size) i * k + c] - oshift[c];

				os1[c] += d;
				os2[c] += d * d;
			}
	}

	if (m->task == ML_TASK_CLUSTERING)
	{
		int64	   *rest;
		int64	   *pick;
		int64		nrest;
		int64		npick;
		int64	   *sample;
		double	   *xs;
		int		   *labels;

		out->inertia = inertia;
		/* the sample: the rows with the smallest seeded keys */
		SplitRows(n, NULL, 1, Min(1.0, (double) SILHOUETTE_MAX_ROWS / (double) Max(n, 1)),
				  seed, &rest, &nrest, &pick, &npick);
		sample = palloc(sizeof(int64) * Max(npick, 1));
		for (int64 i = 0; i < npick; i++)
			sample[i] = rows[pick[i]];
		xs = palloc(sizeof(double) * Max(npick * p, 1));
		labels = palloc(sizeof(int) * Max(npick, 1));
		for (int64 start = 0; start < npick; start += TRAIN_BLOCK_ROWS)
		{
			int			count = (int) Min((int64) TRAIN_BLOCK_ROWS, npick - start);

			PipelineTransformBlock(b, sample + start, count, X, count);
			ModelPredictBlock(m, X, count, count, o);
			for (int i = 0; i < count; i++)
			{
				labels[start + i] = ModelNearestCluster(m, o + (Size) i * k);
				for (int j = 0; j < p; j++)
					xs[(start + i) * p + j] = X[(Size) j * count + i];
			}
		}
		out->silhouette = MetricsSilhouette(xs, labels, (int) npick, p);
	}
	else
	{
		double		total = 0.0;
		double		kept = 0.0;

		for (int j = 0; j < p; j++)
			total += xs2[j] - xs1[j] * xs1[j] / (double) n;
		for (int c = 0; c < k; c++)
			kept += os2[c] - os1[c] * os1[c] / (double) n;
		out->explained_variance = total > 0 ? kept / total : NAN;
	}
}

/*
 * ModelScoreRows predicts rows of ds for a supervised model: one output per
 * row for regression, nclasses_y per row for classification, in the order
 * of labels_y.  The model's own labels may differ from labels_y (an older
 * model): its probabilities are mapped onto labels_y by label, and a label
 * it never learned has probability 0 (the lowest score for a model that
 * only scores).
 */
double *
ModelScoreRows(const Model *m, const DataSet *ds, const int64 *rows, int64 n,
			   int nclasses_y, char **labels_y)
{
	PipelineBinding *b = PipelineBind(m->pipeline, ds);
	int			p = m->pipeline->nfeatures;
	int			nout = ModelOutputs(m);
	int			nres = m->task == ML_TASK_CLASSIFICATION ? nclasses_y : 1;
	double	   *X;
	double	   *o;
	double	   *res;
	int		   *map = NULL;

	Assert(m->task == ML_TASK_REGRESSION || m->task == ML_TASK_CLASSIFICATION);
	X = palloc(sizeof(double) * TRAIN_BLOCK_ROWS * Max(p, 1));
	o = palloc(sizeof(double) * TRAIN_BLOCK_ROWS * nout);
	res = palloc_extended(sizeof(double) * Max(n, 1) * nres, MCXT_ALLOC_HUGE);
	if (m->task == ML_TASK_CLASSIFICATION)
	{
		map = palloc(sizeof(int) * m->nclasses);
		for (int c = 0; c < m->nclasses; c++)
		{
			map[c] = -1;
			for (int k = 0; k < nclasses_y; k++)
				if (strcmp(m->labels[c], labels_y[k]) == 0)
					map[c] = k;
		}
	}

	for (int64 start = 0; start < n; start += TRAIN_BLOCK_ROWS)
	{
		int			count = (int) Min((int64) TRAIN_BLOCK_ROWS, n - start);

		CHECK_FOR_INTERRUPTS();
		PipelineTransformBlock(b, rows + start, count, X, count);
		ModelPredictBlock(m, X, count, count, o);
		for (int i = 0; i < count; i++)
		{
			double	   *r = res + (start + i) * nres;

			if (map == NULL)
			{
				r[0] = o[i];
				continue;
			}
			/* a label the model never learned: probability 0, lowest score */
			for (int k = 0; k < nres; k++)
				r[k] = m->fitted->spec->scores_only ? -INFINITY : 0.0;
			for (int c = 0; c < m->nclasses; c++)
				if (map[c] >= 0)
					r[map[c]] = o[(Size) i * nout + c];
		}
	}
	pfree(X);
	pfree(o);
	if (map)
		pfree(map);
	return res;
}

/*
 * ModelEvaluateRows scores a model on DataSet rows whose true outcomes are
 * y: values, or indexes into labels_y (nclasses_y of them), matched to the
 * model's labels as ModelScoreRows does; unsupervised models have no y, and
 * seed picks the rows a silhouette is computed on.
 */
void
ModelEvaluateRows(const Model *m, const DataSet *ds, const int64 *rows, int64 n,
				  const double *y, int nclasses_y, char **labels_y, int64 seed,
				  bool detailed, Metrics *out)
{
	double	   *res;

	if (m->task == ML_TASK_CLUSTERING || m->task == ML_TASK_DECOMPOSITION)
	{
		evaluate_unsupervised(m, PipelineBind(m->pipeline, ds), rows, n, seed, out);
		return;
	}
	res = ModelScoreRows(m, ds, rows, n, nclasses_y, labels_y);
	MetricsCompute(out, m->task, y, res, n, nclasses_y, !m->fitted->spec->scores_only,
				   detailed);
	pfree(res);
}

/* Decides whether ml.train deploys its new model, and why. */
static bool
decide_deploy(DeployMode mode, const Gate *gate, const Model *model, const Metrics *metrics,
			  const ProjectInfo *project, const DataSet *ds, const int64 *rows,
			  const double *y, const Target *t, int64 seed, StringInfo reason,
			  PromotionRow *pr)
{
	const char *key = MetricKeyName(metrics->task);
	double		score;
	double		live_score;
	int64		live_id;
	Model	   *live;
	Metrics		live_metrics;
	const char *on = metrics->on_train ? "training" : "hold-out";

	pr->metric = key;
	pr->score = MetricsGet(metrics, key, &score) ? score : NAN;
	pr->live_score = NAN;
	pr->p_value = NAN;
	pr->live_model_id = CatalogLiveModelId(project->id);
	if (mode == DEPLOY_NEVER)
	{
		appendStringInfoString(reason, "deploy is never");
		return false;
	}
	if (mode == DEPLOY_ALWAYS)
	{
		appendStringInfoString(reason, "deploy is always");
		return true;
	}
	if (!GatePasses(gate, metrics, reason))
		return false;

	live_id = pr->live_model_id;
	if (live_id == 0)
	{
		appendStringInfoString(reason, gate->nbounds > 0 ?
							   "no model of the project is deployed; this one passes the gate" :
							   "no model of the project is deployed");
		return true;
	}

	live = CacheModel(live_id);
	for (int i = 0; i < live->pipeline->ncolumns; i++)
	{
		const PipelineColumn *pc = &live->pipeline->columns[i];
		int			c = DataSetFindColumn(ds, pc->input);

		if (c < 0 || ds->cols[c].categorical != pc->categorical)
		{
			appendStringInfo(reason,
							 "live model %lld cannot be scored on this source (it needs column \"%s\"); deploy explicitly with ml.deploy",
							 (long long) live_id, pc->input);
			return false;
		}
	}
	ModelEvaluateRows(live, ds, rows, metrics->n, y, t->nclasses, t->labels, seed, false,
					  &live_metrics);
	MetricsGet(metrics, key, &score);
	MetricsGet(&live_metrics, key, &live_score);
	pr->live_score = live_score;
	if (score > live_score)
	{
		StringInfoData short_of;

		initStringInfo(&short_of);
		if (!GateBeatsBy(gate, metrics, &live_metrics, &short_of))
		{
			appendStringInfo(reason, "%s (live model %lld, the same %lld %s rows)",
							 short_of.data, (long long) live_id,
							 (long long) metrics->n, on);
			return false;
		}
		appendStringInfo(reason, "%s %.6g beats live model %lld's %.6g on the same %lld %s rows%s",
						 key, score, (long long) live_id, live_score,
						 (long long) metrics->n, on,
						 gate->nmargins > 0 ? ", by at least the gate's beat_by" : "");
		if (gate->significance > 0)
		{
			double	   *mine = ModelScoreRows(model, ds, rows, metrics->n, t->nclasses, t->labels);
			double	   *theirs = ModelScoreRows(live, ds, rows, metrics->n, t->nclasses, t->labels);
			StringInfoData how;
			double		p;

			initStringInfo(&how);
			p = GatePairedTest(metrics->task, y, mine, theirs, metrics->n, t->nclasses, &how);
			pr->p_value = p;
			appendStringInfo(reason, "; %s; p = %.4g %s the gate's significance %g",
							 how.data, p, p < gate->significance ? "<" : ">=",
							 gate->significance);
			if (!(p < gate->significance))
				return false;
		}
		return true;
	}
	appendStringInfo(reason, "%s %.6g does not beat live model %lld's %.6g on the same %lld %s rows",
					 key, score, (long long) live_id, live_score,
					 (long long) metrics->n, on);
	return false;
}

static double *
gather(const double *y, const int64 *rows, int64 n)
{
	double	   *out = palloc_extended(sizeof(double) * Max(n, 1), MCXT_ALLOC_HUGE);

	for (int64 i = 0; i < n; i++)
		out[i] = y[rows[i]];
	return out;
}

/* Writes the fit's per-iteration telemetry to ml.training_log. */
static void
store_training_log(int64 model_id, const TrainLog *log)
{
	int32	   *iterations = palloc(sizeof(int32) * Max(log->n, 1));
	Jsonb	  **metrics = palloc(sizeof(Jsonb *) * Max(log->n, 1));

	for (int i = 0; i < log->n; i++)
	{
		const TrainLogEntry *e = &log->entries[i];
		JsonbParseState *st = NULL;

		JbBeginObject(&st);
		if (!isnan(e->train_loss))
		{
			JbKey(&st, "train_loss");
			JbFloat(&st, e->train_loss);
		}
		if (!isnan(e->validation_loss))
		{
			JbKey(&st, "validation_loss");
			JbFloat(&st, e->validation_loss);
		}
		if (!isnan(e->norm))
		{
			JbKey(&st, log->norm_name);
			JbFloat(&st, e->norm);
		}
		JbKey(&st, "elapsed_seconds");
		JbFloat(&st, e->elapsed);
		metrics[i] = JbFinishObject(&st);
		iterations[i] = e->iteration;
	}
	CatalogInsertTrainingLog(model_id, log->n, iterations, metrics);
}

static char *
text_arg_or_null(FunctionCallInfo fcinfo, int i)
{
	return PG_ARGISNULL(i) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(i));
}

/*
 * Fits the pipeline and the algorithm on rows of ds, whose targets are y
 * (NULL for unsupervised tasks), and fills model; its fitted algorithm is
 * *fitted and its telemetry goes to log.  in_fold says the rows are a
 * cross-validation fold's, for the error message when the pipeline leaves
 * too few rows for its features.
 */
static void
fit_model(const DataSet *ds, const int64 *rows, int64 n, double *y, const Target *t,
		  MLTask task, const PipelineOptions *opts, const AlgoSpec *spec,
		  const Hyperparams *hp, TrainLog *log, bool in_fold, AlgoModel *fitted,
		  Model *model)
{
	PipelineTarget ptarget = {task, y, t->nclasses};
	Pipeline   *pl = PipelineFit(ds, rows, n, opts, spec->default_scale,
								 spec->keeps_missing, &ptarget);
	TrainSet	ts;

	if (in_fold && (pl->nfeatures == 0 || pl->nfeatures > n))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("a cross-validation fold leaves %d features for %lld training rows",
						pl->nfeatures, (long long) n),
				 errhint("Use fewer folds (cv) or more rows.")));
	if (pl->nfeatures == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("the pipeline leaves no features to train on"),
				 errhint("Every column was excluded or encodes to nothing; check preprocess.")));
	if (pl->nfeatures > n)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("more features (%d) than training rows (%lld)", pl->nfeatures,
						(long long) n),
				 errhint("Use more rows, exclude columns in preprocess, or lower max_categories.")));

	memset(&ts, 0, sizeof(ts));
	ts.task = task;
	ts.n = n;
	ts.p = pl->nfeatures;
	ts.nclasses = t->nclasses;
	ts.y = y;
	ts.feature_names = pl->feature_names;
	ts.binding = PipelineBind(pl, ds);
	ts.rows = rows;
	ts.log = log;

	memset(fitted, 0, sizeof(*fitted));
	fitted->spec = spec;
	fitted->task = task;
	fitted->p = pl->nfeatures;
	fitted->nclasses = t->nclasses;
	spec->fit(fitted, &ts, hp);
	if (ts.X)
		pfree(ts.X);

	memset(model, 0, sizeof(*model));
	model->task = task;
	model->pipeline = pl;
	model->nclasses = t->nclasses;
	model->labels = t->labels;
	model->label_values = t->label_values;
	model->labels_numeric = t->labels_numeric;
	model->fitted = fitted;
}

/*
 * One fold of cross-validation: fits on rows, scores on held.  Allocations
 * go to a context that is dropped before the next fold.
 */
static void
cv_fold(const DataSet *ds, const int64 *rows, int64 n, const int64 *held, int64 nheld,
		const Target *t, MLTask task, const PipelineOptions *opts,
		const AlgoSpec *spec, const Hyperparams *hp, Metrics *out)
{
	TrainLog   *log = palloc0(sizeof(TrainLog));
	AlgoModel	fitted;
	Model		model;

	log->start = (int64) GetCurrentTimestamp();
	fit_model(ds, rows, n, gather(t->y, rows, n), t, task, opts, spec, hp, log, true,
			  &fitted, &model);
	ModelEvaluateRows(&model, ds, held, nheld, gather(t->y, held, nheld), t->nclasses,
					  t->labels, hp->seed, false, out);
}

/*
 * k-fold cross-validation on the training rows (stratified by class for
 * classification): a fresh pipeline and model per fold, scored on the
 * fold's rows.  Returns {"cv": {"folds", "metric", "fold_scores", "mean",
 * "std", "fold_metrics"}} to merge into the model's metrics.
 */
static Jsonb *
cross_validate(const DataSet *ds, const int64 *train_rows, int64 ntrain, const Target *t,
			   MLTask task, const PipelineOptions *opts, const AlgoSpec *spec,
			   const Hyperparams *hp)
{
	int			k = hp->cv;
	const char *key = MetricKeyName(task);
	double	   *strata = NULL;
	int		   *fold = palloc(sizeof(int) * Max(ntrain, 1));
	int64	   *in_rows = palloc(sizeof(int64) * Max(ntrain, 1));
	int64	   *out_rows = palloc(sizeof(int64) * Max(ntrain, 1));
	double	   *scores = palloc(sizeof(double) * k);
	Jsonb	  **fold_json = palloc(sizeof(Jsonb *) * k);
	double		mean = 0.0;
	double		ss = 0.0;
	JsonbParseState *st = NULL;
	MemoryContext fold_cxt;

	if (task == ML_TASK_CLASSIFICATION)
	{
		int64	   *count = palloc0(sizeof(int64) * t->nclasses);

		strata = gather(t->y, train_rows, ntrain);
		for (int64 i = 0; i < ntrain; i++)
			count[(int) strata[i]]++;
		for (int c = 0; c < t->nclasses; c++)
			if (count[c] > 0 && count[c] < k)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("cv %d is more than the %lld training rows of class \"%s\"",
								k, (long long) count[c], t->labels[c]),
						 errhint("Every fold needs a row of every class; use \"cv\": %lld or fewer.",
								 (long long) count[c])));
	}
	else if (ntrain < 2 * k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cv %d needs at least %d training rows, not %lld", k, 2 * k,
						(long long) ntrain)));
	SplitFolds(ntrain, strata, k, hp->seed, fold);

	fold_cxt = AllocSetContextCreate(CurrentMemoryContext, "pgmaker cv fold",
									 ALLOCSET_DEFAULT_SIZES);
	for (int f = 0; f < k; f++)
	{
		int64		nin = 0;
		int64		nout = 0;
		Metrics		m;
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		for (int64 i = 0; i < ntrain; i++)
		{
			if (fold[i] == f)
				out_rows[nout++] = train_rows[i];
			else
				in_rows[nin++] = train_rows[i];
		}
		old = MemoryContextSwitchTo(fold_cxt);
		cv_fold(ds, in_rows, nin, out_rows, nout, t, task, opts, spec, hp, &m);
		MemoryContextSwitchTo(old);
		fold_json[f] = MetricsToJsonb(&m, t->labels);
		if (!MetricsGet(&m, key, &scores[f]))
			scores[f] = NAN;
		MemoryContextReset(fold_cxt);
	}
	MemoryContextDelete(fold_cxt);

	for (int f = 0; f < k; f++)
		mean += scores[f] / k;
	for (int f = 0; f < k; f++)
		ss += (scores[f] - mean) * (scores[f] - mean);

	JbBeginObject(&st);
	JbKey(&st, "cv");
	JbBeginObject(&st);
	JbKey(&st, "folds");
	JbInt(&st, k);
	JbKey(&st, "metric");
	JbString(&st, key);
	JbKey(&st, "fold_scores");
	JbBeginArray(&st);
	for (int f = 0; f < k; f++)
		JbFloat(&st, scores[f]);
	JbEndArray(&st);
	JbKey(&st, "mean");
	JbFloat(&st, mean);
	JbKey(&st, "std");
	JbFloat(&st, sqrt(ss / (k - 1)));
	JbKey(&st, "fold_metrics");
	JbBeginArray(&st);
	for (int f = 0; f < k; f++)
		JbJsonb(&st, fold_json[f]);
	JbEndArray(&st);
	JbEndObject(&st);
	return JbFinishObject(&st);
}

/* The training run; allocations go to the current (throwaway) context. */
static void
train(FunctionCallInfo fcinfo, TrainResult *result)
{
	char	   *project_name = text_arg_or_null(fcinfo, 0);
	char	   *source = text_arg_or_null(fcinfo, 1);
	char	   *target = text_arg_or_null(fcinfo, 2);
	char	   *algorithm = text_arg_or_null(fcinfo, 3);
	char	   *task_arg = text_arg_or_null(fcinfo, 4);
	Jsonb	   *hp_json = PG_ARGISNULL(5) ? NULL : PG_GETARG_JSONB_P(5);
	Jsonb	   *prep_json = PG_ARGISNULL(6) ? NULL : PG_GETARG_JSONB_P(6);
	double		test_size = PG_ARGISNULL(7) ? 0.25 : PG_GETARG_FLOAT8(7);
	char	   *deploy_arg = PG_ARGISNULL(8) ? "auto" : text_to_cstring(PG_GETARG_TEXT_PP(8));
	Jsonb	   *gate_json = PG_ARGISNULL(9) ? NULL : PG_GETARG_JSONB_P(9);
	DeployMode	mode;
	ProjectInfo project;
	bool		project_exists;
	const AlgoSpec *spec = NULL;
	Hyperparams *hp = NULL;
	PipelineOptions *opts;
	DataSet    *ds;
	MLTask		task;
	Target		t;
	Gate	   *gate;
	int64	   *train_rows;
	int64	   *test_rows;
	int64		ntrain;
	int64		ntest;
	Pipeline   *pl;
	double	   *train_y;
	TrainLog   *train_log;
	Model		model;
	AlgoModel	fitted;
	TimestampTz fit_start;
	long		secs;
	int			usecs;
	Metrics		metrics;
	Metrics		train_metrics;
	int64	   *eval_rows;
	const double *eval_y;
	int64		neval;
	ModelRow	row;
	StringInfoData reason;
	PromotionRow promotion;
	Jsonb	   *cv_json = NULL;

	/* arguments */
	if (project_name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("project must not be NULL")));
	CatalogCheckProjectName(project_name);
	if (source == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source must not be NULL")));
	if (isnan(test_size) || test_size < 0.0 || test_size >= 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("test_size must be at least 0 and below 1, not %g", test_size)));
	if (strcmp(deploy_arg, "auto") == 0)
		mode = DEPLOY_AUTO;
	else if (strcmp(deploy_arg, "always") == 0)
		mode = DEPLOY_ALWAYS;
	else if (strcmp(deploy_arg, "never") == 0)
		mode = DEPLOY_NEVER;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown deploy mode \"%s\"", deploy_arg),
				 errhint("deploy is auto, always or never.")));

	project_exists = CatalogFindProject(project_name, &project);
	if (project_exists)
	{
		CatalogCheckOwner(&project);
		if (target == NULL)
			target = project.target;
		else if (project.target == NULL || strcmp(project.target, target) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("project \"%s\" predicts \"%s\", not \"%s\"", project_name,
							project.target ? project.target : "(no target)", target),
					 errhint("A project's target is fixed by its first model; use another project name.")));
	}
	if (algorithm)
	{
		spec = AlgoLookup(algorithm);
		hp = HyperparamsParse(spec, hp_json);
	}
	opts = PipelineParseOptions(prep_json);
	if (target && list_member(opts->exclude, makeString(target)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the target column \"%s\" cannot be excluded", target)));

	/* data */
	ds = ReaderLoad(source, target, opts->exclude);
	if (ds->nrows == 0)
	{
		if (ds->null_targets > 0)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("target column \"%s\" is NULL in every row", target)));
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("source has no rows")));
	}
	if (ds->null_targets > 0)
		ereport(NOTICE,
				(errmsg("skipped %lld rows whose target \"%s\" is NULL",
						(long long) ds->null_targets, target)));
	if (ds->ncols == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("source has no feature columns besides the target")));

	task = settle_task(ds, task_arg, project_exists ? &project : NULL, spec);
	if (spec == NULL)
	{
		spec = AlgoDefault(task);
		hp = HyperparamsParse(spec, hp_json);
	}
	if (!(spec->tasks & ML_TASK_BIT(task)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("algorithm %s cannot do %s", spec->name, MLTaskName(task)),
				 errhint("Algorithms for %s: %s.", MLTaskName(task), AlgoNamesForTask(task))));
	if (ds->target)
		encode_target(ds, task, &t);
	else
		memset(&t, 0, sizeof(t));
	gate = GateParse(gate_json, task, t.nclasses);

	/* split */
	SplitRows(ds->nrows, task == ML_TASK_CLASSIFICATION ? t.y : NULL, t.nclasses,
			  test_size, hp->seed, &train_rows, &ntrain, &test_rows, &ntest);
	if (ntrain == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("test_size %g leaves no training rows out of %lld", test_size,
						(long long) ds->nrows)));
	if (test_size > 0 && ntest == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("test_size %g leaves no hold-out rows out of %lld", test_size,
						(long long) ds->nrows),
				 errhint("Use more rows, a larger test_size, or test_size => 0 to report metrics on the training rows.")));
	if (task == ML_TASK_CLASSIFICATION)
	{
		int			seen = 0;
		bool	   *present = palloc0(sizeof(bool) * t.nclasses);

		for (int64 i = 0; i < ntrain; i++)
			present[(int) t.y[train_rows[i]]] = true;
		for (int c = 0; c < t.nclasses; c++)
			seen += present[c];
		if (seen < 2)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("the training rows hold only one class of target column \"%s\"", target),
					 errhint("Classification needs at least two classes; use more rows or a smaller test_size.")));
	}

	/* cross-validation, before the final fit on every training row */
	if (hp->cv > 0)
	{
		if (task != ML_TASK_REGRESSION && task != ML_TASK_CLASSIFICATION)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cv applies to regression and classification, not %s",
							MLTaskName(task))));
		cv_json = cross_validate(ds, train_rows, ntrain, &t, task, opts, spec, hp);
	}

	/* fit */
	fit_start = GetCurrentTimestamp();
	train_y = t.y ? gather(t.y, train_rows, ntrain) : NULL;
	train_log = palloc0(sizeof(TrainLog));
	train_log->start = (int64) fit_start;
	fit_model(ds, train_rows, ntrain, train_y, &t, task, opts, spec, hp, train_log, false,
			  &fitted, &model);
	pl = model.pipeline;
	TimestampDifference(fit_start, GetCurrentTimestamp(), &secs, &usecs);

	/* measure */
	/*
	 * Training-row metrics on a seeded sample of at most
	 * TRAIN_METRICS_MAX_ROWS rows: a large training set would otherwise
	 * cost a second full pass of predictions.  Hold-out metrics use every
	 * hold-out row.
	 */
	eval_rows = train_rows;
	eval_y = train_y;
	neval = ntrain;
	if (ntrain > TRAIN_METRICS_MAX_ROWS)
	{
		int64	   *rest;
		int64	   *pick;
		int64		nrest;

		SplitRows(ntrain, NULL, 1, (double) TRAIN_METRICS_MAX_ROWS / (double) ntrain,
				  hp->seed, &rest, &nrest, &pick, &neval);
		eval_rows = palloc(sizeof(int64) * Max(neval, 1));
		for (int64 i = 0; i < neval; i++)
			eval_rows[i] = train_rows[pick[i]];
		eval_y = train_y ? gather(train_y, pick, neval) : NULL;
	}
	ModelEvaluateRows(&model, ds, eval_rows, neval, eval_y, t.nclasses, t.labels,
					  hp->seed, false, &train_metrics);
	train_metrics.on_train = true;
	train_metrics.sampled_from = neval < ntrain ? ntrain : 0;
	if (ntest > 0)
		ModelEvaluateRows(&model, ds, test_rows, ntest,
						  t.y ? gather(t.y, test_rows, ntest) : NULL,
						  t.nclasses, t.labels, hp->seed, false, &metrics);
	else
		metrics = train_metrics;

	/* store */
	if (!project_exists)
	{
		project.id = CatalogCreateProject(project_name, task, target);
		project.name = project_name;
		project.task = task;
		project.target = target;
	}
	memset(&row, 0, sizeof(row));
	row.project_id = project.id;
	row.algorithm = spec->name;
	row.hyperparams = HyperparamsToJsonb(hp);
	row.preprocess = prep_json ? prep_json : DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	row.features = PipelineDescribe(pl);
	row.metrics = MetricsToJsonb(&metrics, t.labels);
	if (cv_json)
		row.metrics = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat,
														 JsonbPGetDatum(row.metrics),
														 JsonbPGetDatum(cv_json)));
	row.train_metrics = MetricsToJsonb(&train_metrics, t.labels);
	row.baseline = PipelineBaseline(pl);
	row.n_train = ntrain;
	row.n_test = ntest;
	row.fit_seconds = (double) secs + (double) usecs / 1e6;
	row.blob = ModelSerialize(&model);
	result->model_id = CatalogInsertModel(&row);
	store_training_log(result->model_id, train_log);

	/* deploy */
	initStringInfo(&reason);
	memset(&promotion, 0, sizeof(promotion));
	result->deployed = decide_deploy(mode, gate, &model, &metrics, &project, ds,
									 ntest > 0 ? test_rows : eval_rows,
									 ntest > 0 && t.y ? gather(t.y, test_rows, ntest) : eval_y,
									 &t, hp->seed, &reason, &promotion);
	promotion.project_id = project.id;
	promotion.model_id = result->model_id;
	promotion.mode = mode == DEPLOY_ALWAYS ? "always" : mode == DEPLOY_NEVER ? "never" : "auto";
	promotion.promoted = result->deployed;
	promotion.reason = reason.data;
	CatalogInsertPromotion(&promotion);
	if (result->deployed)
	{
		CatalogInsertDeployment(project.id, result->model_id,
								mode == DEPLOY_ALWAYS ? "always" : "auto", reason.data);
		CacheInvalidate();
	}
	else
		ereport(NOTICE,
				(errmsg("model %lld of project \"%s\" is not deployed: %s",
						(long long) result->model_id, project_name, reason.data)));

	result->project = project_name;
	result->algorithm = spec->name;
	result->metrics = row.metrics;
}

/*
 * ml_train trains a model and returns one row: project, model_id,
 * algorithm, metrics, deployed.
 */
Datum
ml_train(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext train_cxt;
		MemoryContext old;
		TupleDesc	tupdesc;
		TrainResult result;
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};
		HeapTuple	tuple;

		funcctx = SRF_FIRSTCALL_INIT();
		train_cxt = AllocSetContextCreate(CurrentMemoryContext, "pgmaker train",
										  ALLOCSET_DEFAULT_SIZES);
		old = MemoryContextSwitchTo(train_cxt);
		train(fcinfo, &result);

		MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "ml.train must return a composite type");
		values[0] = CStringGetTextDatum(result.project);
		values[1] = Int64GetDatum(result.model_id);
		values[2] = CStringGetTextDatum(result.algorithm);
		values[3] = JsonbPGetDatum(result.metrics);
		values[4] = BoolGetDatum(result.deployed);
		tuple = heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls);
		funcctx->user_fctx = (void *) HeapTupleGetDatum(tuple);
		funcctx->max_calls = 1;
		MemoryContextSwitchTo(old);
		MemoryContextDelete(train_cxt);
	}

	funcctx = SRF_PERCALL_SETUP();
	if (funcctx->call_cntr < funcctx->max_calls)
		SRF_RETURN_NEXT(funcctx, (Datum) funcctx->user_fctx);
	SRF_RETURN_DONE(funcctx);
}

/* A target value as a label's text, as training writes labels. */
static char *
target_label(const DataColumn *col, int64 i)
{
	double		v;

	if (col->categorical)
		return col->dict[col->codes[i]];
	v = col->values[i];
	if (is_bool_type(col->typid))
		return v != 0 ? "true" : "false";
	if (is_integer_type(col->typid) && fabs(v) < 9.2e18)
		return psprintf("%lld", (long long) v);
	if (is_integer_type(col->typid))
		return psprintf("%.0f", v);
	return float8out_internal(v);
}

/*
 * ml_evaluate scores a model (a project's live model, or one by id) on new
 * rows of a source: every metric of its task, plus per-class precision,
 * recall, f1 and support for classification and residual quantiles for
 * regression.  Labels the model never learned count as its errors.
 */
Datum
ml_evaluate(PG_FUNCTION_ARGS)
{
	char	   *source = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Model	   *m;
	ProjectInfo project;
	DataSet    *ds;
	int64	   *rows;
	double	   *y = NULL;
	char	  **labels = NULL;
	int			nlabels = 0;
	Metrics		metrics;
	Jsonb	   *result;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "pgmaker evaluate",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);

	if (get_fn_expr_argtype(fcinfo->flinfo, 0) == INT8OID)
	{
		int64		model_id = PG_GETARG_INT64(0);
		int64		project_id;

		m = CacheModel(model_id);
		CatalogModelAlgorithm(model_id, &project_id);
		CatalogProjectById(project_id, &project);
	}
	else
	{
		char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

		CatalogCheckProjectName(name);
		m = CacheProjectModel(name);
		CatalogRequireProject(name, &project);
	}
	if ((m->task == ML_TASK_REGRESSION || m->task == ML_TASK_CLASSIFICATION) &&
		project.target == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("project \"%s\" has no target column to evaluate against", project.name)));

	ds = ReaderLoad(source, m->task == ML_TASK_REGRESSION || m->task == ML_TASK_CLASSIFICATION ?
					project.target : NULL, NIL);
	if (ds->nrows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("source has no rows%s", ds->null_targets > 0 ? " with a target" : "")));
	rows = palloc_extended(sizeof(int64) * ds->nrows, MCXT_ALLOC_HUGE);
	for (int64 i = 0; i < ds->nrows; i++)
		rows[i] = i;

	if (m->task == ML_TASK_REGRESSION)
	{
		if (ds->target->categorical)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("target column \"%s\" must be numeric to evaluate a regression model",
							project.target)));
		y = ds->target->values;
	}
	else if (m->task == ML_TASK_CLASSIFICATION)
	{
		/* the model's labels first, then any it never learned */
		int			cap = m->nclasses + 8;

		labels = palloc(sizeof(char *) * cap);
		memcpy(labels, m->labels, sizeof(char *) * m->nclasses);
		nlabels = m->nclasses;
		y = palloc_extended(sizeof(double) * ds->nrows, MCXT_ALLOC_HUGE);
		for (int64 i = 0; i < ds->nrows; i++)
		{
			char	   *label = target_label(ds->target, i);
			int			c;

			for (c = 0; c < nlabels; c++)
				if (strcmp(labels[c], label) == 0)
					break;
			if (c == nlabels)
			{
				if (nlabels == MAX_CLASSES)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("target column \"%s\" has more than %d classes",
									project.target, MAX_CLASSES)));
				if (nlabels == cap)
				{
					cap *= 2;
					labels = repalloc(labels, sizeof(char *) * cap);
				}
				labels[nlabels++] = pstrdup(label);
			}
			y[i] = c;
			if ((i & 4095) == 0)
				CHECK_FOR_INTERRUPTS();
		}
	}

	ModelEvaluateRows(m, ds, rows, ds->nrows, y, nlabels, labels, 42, true, &metrics);
	metrics.evaluated_on = "source";
	MemoryContextSwitchTo(old);
	result = MetricsToJsonb(&metrics, labels);
	MemoryContextDelete(cxt);
	PG_RETURN_JSONB_P(result);
}
