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
#include "monitor/monitor.h"
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

	MetricsCompute(out, m->task, NULL, NULL, 0, 0, false, NAN, false);
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
				   ModelThresholdOn(m, nclasses_y, labels_y), detailed);
	pfree(res);
}

/*
 * ModelThresholdOn is the model's decision threshold for outputs that
 * ModelScoreRows mapped onto labels_y: NaN (the most probable class) when
 * it has none, or when labels_y are not its own two labels in its order.
 */
double
ModelThresholdOn(const Model *m, int nclasses_y, char **labels_y)
{
	if (!m->has_threshold || nclasses_y != 2 || m->nclasses != 2 ||
		strcmp(m->labels[0], labels_y[0]) != 0 || strcmp(m->labels[1], labels_y[1]) != 0)
		return NAN;
	return m->threshold;
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
	if (!CatalogMayAccess(project, ML_ACCESS_DEPLOY))
	{
		appendStringInfoString(reason, "the caller may train but not deploy with the project");
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
			p = GatePairedTest(metrics->task, y,
							   mine, ModelThresholdOn(model, t->nclasses, t->labels),
							   theirs, ModelThresholdOn(live, t->nclasses, t->labels),
							   metrics->n, t->nclasses, &how);
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
 * model_importance returns the feature importance the fitted algorithm
 * describes (XGBoost's total gain, say), one per feature, or NULL.
 */
static double *
model_importance(const AlgoModel *fitted, char **feature_names, char **labels)
{
	JsonbParseState *st = NULL;
	Jsonb	   *described;
	JsonbValue	key;
	JsonbValue *imp;
	double	   *out;

	if (fitted->spec->describe == NULL)
		return NULL;
	JbBeginObject(&st);
	fitted->spec->describe(fitted, feature_names, labels, &st);
	described = JbFinishObject(&st);
	key.type = jbvString;
	key.val.string.val = "importance";
	key.val.string.len = strlen("importance");
	imp = findJsonbValueFromContainer(&described->root, JB_FOBJECT, &key);
	if (imp == NULL || imp->type != jbvBinary || !JsonContainerIsObject(imp->val.binary.data))
		return NULL;
	out = palloc0(sizeof(double) * Max(fitted->p, 1));
	for (int j = 0; j < fitted->p; j++)
	{
		JsonbValue *v;

		key.val.string.val = feature_names[j];
		key.val.string.len = strlen(feature_names[j]);
		v = findJsonbValueFromContainer(imp->val.binary.data, JB_FOBJECT, &key);
		if (v != NULL)
			(void) JsonbValueToDouble(v, &out[j]);
	}
	return out;
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
	if (log && log->debug)
		DebugCheckData(log->debug, &ts);
	spec->fit(fitted, &ts, hp);
	if (ts.X)
		pfree(ts.X);
	if (log && log->debug)
	{
		DebugFinish(log->debug, log);
		if (log->debug->r[DBG_FEATURE_IMPORTANCE_OVERWEIGHT].enabled)
			DebugCheckImportance(log->debug, pl->nfeatures,
								 model_importance(fitted, pl->feature_names, t->labels),
								 pl->feature_names);
	}

	memset(model, 0, sizeof(*model));
	model->task = task;
	model->pipeline = pl;
	model->nclasses = t->nclasses;
	model->labels = t->labels;
	model->label_values = t->label_values;
	model->labels_numeric = t->labels_numeric;
	model->fitted = fitted;
}

/* Outputs per row of a supervised model of the task: 1, or the classes. */
int
CvOutputs(const FitInput *in)
{
	return in->task == ML_TASK_CLASSIFICATION ? in->t->nclasses : 1;
}

/*
 * The fold of each training row: in a seeded random order, stratified by
 * class for classification (SplitFolds).  Every cross-validation of a run
 * sees the same folds.
 */
static int *
cv_folds(const FitInput *in, int k)
{
	double	   *strata = in->task == ML_TASK_CLASSIFICATION ?
		gather(in->t->y, in->rows, in->n) : NULL;
	int		   *fold = palloc(sizeof(int) * Max(in->n, 1));

	SplitFolds(in->n, strata, k, in->seed, fold);
	if (strata)
		pfree(strata);
	return fold;
}

/* An empty result of k folds scored by metric. */
static void
cv_begin(CvResult *cv, int k, const char *metric)
{
	memset(cv, 0, sizeof(*cv));
	cv->k = k;
	cv->metric = metric;
	cv->scores = palloc(sizeof(double) * k);
	cv->fold_metrics = palloc(sizeof(Jsonb *) * k);
}

/* The mean and sample standard deviation of the fold scores. */
static void
cv_summarise(CvResult *cv)
{
	double		ss = 0.0;

	cv->mean = 0.0;
	for (int f = 0; f < cv->k; f++)
		cv->mean += cv->scores[f] / cv->k;
	for (int f = 0; f < cv->k; f++)
		ss += (cv->scores[f] - cv->mean) * (cv->scores[f] - cv->mean);
	cv->std = sqrt(ss / (cv->k - 1));
}

/*
 * TrainCheckFolds checks that k folds can be cut from the training rows:
 * for classification, every class has a row in every fold.
 */
void
TrainCheckFolds(const FitInput *in, int k)
{
	const Target *t = in->t;

	if (in->task != ML_TASK_REGRESSION && in->task != ML_TASK_CLASSIFICATION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cv applies to regression and classification, not %s",
						MLTaskName(in->task))));
	if (in->task == ML_TASK_CLASSIFICATION)
	{
		int64	   *count = palloc0(sizeof(int64) * t->nclasses);

		for (int64 i = 0; i < in->n; i++)
			count[(int) t->y[in->rows[i]]]++;
		for (int c = 0; c < t->nclasses; c++)
			if (count[c] > 0 && count[c] < k)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("cv %d is more than the %lld training rows of class \"%s\"",
								k, (long long) count[c], t->labels[c]),
						 errhint("Every fold needs a row of every class; use \"cv\": %lld or fewer.",
								 (long long) count[c])));
		pfree(count);
	}
	else if (in->n < 2 * k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cv %d needs at least %d training rows, not %lld", k, 2 * k,
						(long long) in->n)));
}

/*
 * One fold of cross-validation: fits on rows, scores on held into *out,
 * and writes the outputs of each held row (nout per row) to oof when it is
 * not NULL.
 * A fixed decision threshold applies to the fold's model as to the final
 * one.  Allocations go to a context the caller drops after the fold.
 */
static void
cv_fold(const FitInput *in, const int64 *rows, int64 n, const int64 *held, int64 nheld,
		const AlgoSpec *spec, const Hyperparams *hp, double *oof, Metrics *out)
{
	const Target *t = in->t;
	TrainLog   *log = palloc0(sizeof(TrainLog));
	AlgoModel	fitted;
	Model		model;
	double	   *y = gather(t->y, held, nheld);
	double	   *res;

	log->start = (int64) GetCurrentTimestamp();
	fit_model(in->ds, rows, n, gather(t->y, rows, n), t, in->task, in->opts, spec, hp, log,
			  true, &fitted, &model);
	if (!isnan(hp->threshold))
	{
		model.has_threshold = true;
		model.threshold = hp->threshold;
	}
	res = ModelScoreRows(&model, in->ds, held, nheld, t->nclasses, t->labels);
	MetricsCompute(out, in->task, y, res, nheld, t->nclasses, !spec->scores_only,
				   ModelThreshold(&model), false);
	if (oof)
		memcpy(oof, res, sizeof(double) * nheld * CvOutputs(in));
}

/*
 * TrainCrossValidate runs k-fold cross-validation on the training rows
 * (stratified by class for classification; the folds depend on in->seed
 * only, so every trial of a search sees the same folds): a fresh pipeline
 * and model per fold, scored on the fold's rows by metric.  With a
 * deadline (0: none) it stops between folds once the deadline has passed
 * and returns false; the result is then incomplete.  want_oof keeps each
 * training row's out-of-fold outputs (CvOutputs of them) in cv->oof.
 */
bool
TrainCrossValidate(const FitInput *in, const AlgoSpec *spec, const Hyperparams *hp, int k,
				   const char *metric, TimestampTz deadline, bool want_oof, CvResult *cv)
{
	const Target *t = in->t;
	int64		ntrain = in->n;
	int		   *fold = cv_folds(in, k);
	int64	   *in_rows = palloc(sizeof(int64) * Max(ntrain, 1));
	int64	   *out_rows = palloc(sizeof(int64) * Max(ntrain, 1));
	double	   *fold_oof = NULL;
	int			width = CvOutputs(in);	/* outputs per row */
	bool		stopped = false;
	MemoryContext fold_cxt;

	cv_begin(cv, k, metric);
	if (want_oof)
	{
		cv->oof = palloc_extended(sizeof(double) * Max(ntrain, 1) * width, MCXT_ALLOC_HUGE);
		fold_oof = palloc_extended(sizeof(double) * Max(ntrain, 1) * width, MCXT_ALLOC_HUGE);
	}

	fold_cxt = AllocSetContextCreate(CurrentMemoryContext, "pgmaker cv fold",
									 ALLOCSET_DEFAULT_SIZES);
	for (int f = 0; f < k; f++)
	{
		int64		nin = 0;
		int64		nout = 0;
		Metrics		m;
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		if (deadline != 0 && GetCurrentTimestamp() >= deadline)
		{
			stopped = true;
			break;
		}
		for (int64 i = 0; i < ntrain; i++)
		{
			if (fold[i] == f)
				out_rows[nout++] = in->rows[i];
			else
				in_rows[nin++] = in->rows[i];
		}
		old = MemoryContextSwitchTo(fold_cxt);
		cv_fold(in, in_rows, nin, out_rows, nout, spec, hp, fold_oof, &m);
		MemoryContextSwitchTo(old);
		cv->fold_metrics[f] = MetricsToJsonb(&m, t->labels);
		if (!MetricsGet(&m, metric, &cv->scores[f]))
			cv->scores[f] = NAN;
		if (want_oof)
		{
			int64		j = 0;

			for (int64 i = 0; i < ntrain; i++)
				if (fold[i] == f)
					memcpy(cv->oof + i * width, fold_oof + width * j++, sizeof(double) * width);
		}
		MemoryContextReset(fold_cxt);
	}
	MemoryContextDelete(fold_cxt);
	/* a search runs many of these: give back what is not the result */
	pfree(fold);
	pfree(in_rows);
	pfree(out_rows);
	if (fold_oof)
		pfree(fold_oof);
	if (stopped)
		return false;
	cv_summarise(cv);
	return true;
}

/*
 * TrainFoldScores fills cv from out-of-fold outputs oof (CvOutputs per
 * training row) that the folds of TrainCrossValidate produced: each
 * fold's metrics on its own rows, as if the folds had been scored one by
 * one.  cv->oof is oof.
 */
void
TrainFoldScores(const FitInput *in, int k, const char *metric, double *oof, CvResult *cv)
{
	const Target *t = in->t;
	int			nout = CvOutputs(in);
	int		   *fold = cv_folds(in, k);
	double	   *y = palloc(sizeof(double) * Max(in->n, 1));
	double	   *out = palloc_extended(sizeof(double) * Max(in->n, 1) * nout, MCXT_ALLOC_HUGE);

	cv_begin(cv, k, metric);
	cv->oof = oof;
	for (int f = 0; f < k; f++)
	{
		int64		m = 0;
		Metrics		met;

		for (int64 i = 0; i < in->n; i++)
		{
			if (fold[i] != f)
				continue;
			y[m] = t->y[in->rows[i]];
			memcpy(out + m * nout, oof + i * nout, sizeof(double) * nout);
			m++;
		}
		MetricsCompute(&met, in->task, y, out, m, t->nclasses, true, NAN, false);
		cv->fold_metrics[f] = MetricsToJsonb(&met, t->labels);
		if (!MetricsGet(&met, metric, &cv->scores[f]))
			cv->scores[f] = NAN;
	}
	cv_summarise(cv);
	pfree(fold);
	pfree(y);
	pfree(out);
}

/*
 * CvResultToJsonb returns {"cv": {"folds", "metric", "fold_scores",
 * "mean", "std", "fold_metrics"}}, to merge into a model's metrics.
 */
Jsonb *
CvResultToJsonb(const CvResult *cv)
{
	JsonbParseState *st = NULL;

	JbBeginObject(&st);
	JbKey(&st, "cv");
	JbBeginObject(&st);
	JbKey(&st, "folds");
	JbInt(&st, cv->k);
	JbKey(&st, "metric");
	JbString(&st, cv->metric);
	JbKey(&st, "fold_scores");
	JbBeginArray(&st);
	for (int f = 0; f < cv->k; f++)
		JbFloat(&st, cv->scores[f]);
	JbEndArray(&st);
	JbKey(&st, "mean");
	JbFloat(&st, cv->mean);
	JbKey(&st, "std");
	JbFloat(&st, cv->std);
	JbKey(&st, "fold_metrics");
	JbBeginArray(&st);
	for (int f = 0; f < cv->k; f++)
		JbJsonb(&st, cv->fold_metrics[f]);
	JbEndArray(&st);
	JbEndObject(&st);
	return JbFinishObject(&st);
}

/* The rows of a training run, split, and the sample training metrics use. */
typedef struct SplitRowsInfo
{
	FitInput	in;				/* the training rows */
	double	   *train_y;		/* their targets, or NULL */
	const int64 *test_rows;
	const double *test_y;		/* their targets, or NULL */
	int64		ntest;
	const int64 *eval_rows;		/* training rows the training metrics use */
	const double *eval_y;
	int64		neval;
	const StreamData *stream;	/* read by the aggregate path, or NULL */
} SplitRowsInfo;

/* A model fitted on every training row, measured, ready to store. */
typedef struct Refit
{
	const AlgoSpec *spec;
	Hyperparams *hp;
	AlgoModel	fitted;
	Model		model;
	TrainLog   *log;
	double		seconds;
	Metrics		metrics;		/* hold-out (training rows with test_size 0) */
	Metrics		train_metrics;
	Jsonb	   *metrics_json;
	int64		model_id;
} Refit;

/*
 * Sets a binary classifier's decision threshold: the fixed one of hp, or
 * one tuned for hp->threshold_metric on the out-of-fold outputs of
 * cross-validation when there are some (cv->oof), else on the training
 * rows' outputs of the model itself.  Returns {"decision_threshold": ...}
 * for the model's metrics, or NULL when the model has none.
 */
static Jsonb *
set_threshold(const SplitRowsInfo *sp, const CvResult *cv, const Hyperparams *hp, Model *model)
{
	JsonbParseState *st = NULL;
	const char *tuned_on = NULL;
	double		score = NAN;

	if (hp->threshold_metric == NULL && isnan(hp->threshold))
		return NULL;
	if (hp->threshold_metric == NULL)
		model->threshold = hp->threshold;
	else
	{
		const Target *t = sp->in.t;
		double		neutral = model->fitted->spec->scores_only ? 0.0 : 0.5;

		if (cv && cv->oof)
		{
			model->threshold = MetricsTuneThreshold(sp->train_y, cv->oof, sp->in.n,
													hp->threshold_metric, neutral, &score);
			tuned_on = "cross-validation";
		}
		else
		{
			double	   *res = ModelScoreRows(model, sp->in.ds, sp->eval_rows, sp->neval,
											 t->nclasses, t->labels);

			model->threshold = MetricsTuneThreshold(sp->eval_y, res, sp->neval,
													hp->threshold_metric, neutral, &score);
			pfree(res);
			tuned_on = "training";
		}
	}
	if (hp->threshold_metric && !isfinite(model->threshold))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("the decision threshold tuned for %s is not a finite number",
						hp->threshold_metric),
				 errhint("The model's outputs on the tuning rows include infinities; give the threshold as a number.")));
	model->has_threshold = true;

	JbBeginObject(&st);
	JbKey(&st, "decision_threshold");
	JbBeginObject(&st);
	JbKey(&st, "value");
	JbFloat(&st, model->threshold);
	if (tuned_on)
	{
		JbKey(&st, "tuned_for");
		JbString(&st, hp->threshold_metric);
		JbKey(&st, "tuned_on");
		JbString(&st, tuned_on);
		JbKey(&st, "score");
		JbFloat(&st, score);
	}
	JbEndObject(&st);
	return JbFinishObject(&st);
}

/*
 * Fits spec with hp on every training row, sets its decision threshold,
 * and measures it on the training sample and the hold-out rows.  cv (or
 * NULL) is the cross-validation of the same algorithm and hyperparameters,
 * whose figures join the model's metrics.
 */
static void
refit(const SplitRowsInfo *sp, const AlgoSpec *spec, Hyperparams *hp, const CvResult *cv,
	  Refit *r)
{
	const FitInput *in = &sp->in;
	const Target *t = in->t;
	TimestampTz start = GetCurrentTimestamp();
	Jsonb	   *threshold_json;

	memset(r, 0, sizeof(*r));
	r->spec = spec;
	r->hp = hp;
	r->log = palloc0(sizeof(TrainLog));
	r->log->start = (int64) start;
	r->log->debug = hp->rules ? DebugRulesParse(hp->rules) : NULL;
	if (sp->stream)
		TrainStreamFit(sp->stream, t, in->opts, spec, hp, &r->fitted, &r->model);
	else
		fit_model(in->ds, in->rows, in->n, sp->train_y, t, in->task, in->opts, spec, hp,
				  r->log, false, &r->fitted, &r->model);
	threshold_json = set_threshold(sp, cv, hp, &r->model);
	r->seconds = SecondsSince(start);

	ModelEvaluateRows(&r->model, in->ds, sp->eval_rows, sp->neval, sp->eval_y, t->nclasses,
					  t->labels, hp->seed, false, &r->train_metrics);
	r->train_metrics.on_train = true;
	r->train_metrics.sampled_from = sp->neval < in->n ? in->n : 0;
	if (sp->stream && sp->neval < sp->stream->ntrain)
		r->train_metrics.sampled_from = sp->stream->ntrain;
	if (sp->ntest > 0)
	{
		ModelEvaluateRows(&r->model, in->ds, sp->test_rows, sp->ntest, sp->test_y,
						  t->nclasses, t->labels, hp->seed, false, &r->metrics);
		if (sp->stream && sp->ntest < sp->stream->ntest)
			r->metrics.sampled_from = sp->stream->ntest;
	}
	else
		r->metrics = r->train_metrics;

	r->metrics_json = MetricsToJsonb(&r->metrics, t->labels);
	if (sp->stream)
		r->metrics_json = JbConcat(r->metrics_json, JbParse("{\"split\": \"row hash\"}"));
	if (cv)
		r->metrics_json = JbConcat(r->metrics_json, CvResultToJsonb(cv));
	if (threshold_json)
		r->metrics_json = JbConcat(r->metrics_json, threshold_json);
}

/* Orders candidates by their best trial, best first; none at the end. */
static int
candidate_rank_cmp(const void *a, const void *b, void *arg)
{
	const SearchCandidate *x = a;
	const SearchCandidate *y = b;
	const char *metric = arg;

	if (x->best == NULL || y->best == NULL)
		return (x->best == NULL) - (y->best == NULL);
	if (TrialBetter(metric, x->best, y->best))
		return -1;
	if (TrialBetter(metric, y->best, x->best))
		return 1;
	return x->best->number - y->best->number;
}

/*
 * The report of a search or autopilot run: what it ran, the candidates
 * ranked by their best cross-validated score, and why the winner won.
 */
static Jsonb *
run_report(const SearchOutcome *so, int64 run_id)
{
	JsonbParseState *st = NULL;
	SearchCandidate *ranked = palloc(sizeof(SearchCandidate) * so->ncandidates);
	const Trial *best = so->chosen->best;
	StringInfoData why;
	int			nfinished = 0;

	memcpy(ranked, so->candidates, sizeof(SearchCandidate) * so->ncandidates);
	qsort_arg(ranked, so->ncandidates, sizeof(SearchCandidate), candidate_rank_cmp,
			  (void *) so->metric);
	for (int i = 0; i < so->ncandidates; i++)
		nfinished += ranked[i].best != NULL;

	initStringInfo(&why);
	appendStringInfoString(&why, best->spec->name);
	if (best->hp->ensemble)
	{
		const EnsemblePlan *plan = best->hp->ensemble;

		appendStringInfoString(&why, " (");
		for (int i = 0; i < plan->n; i++)
			appendStringInfo(&why, "%s%s %.2f", i ? ", " : "", plan->specs[i]->name,
							 plan->weights[i]);
		appendStringInfoChar(&why, ')');
	}
	appendStringInfo(&why, " has the best cross-validated %s, %.4f (std %.4f over %d folds)",
					 so->metric, best->cv.mean, best->cv.std, so->folds);
	if (nfinished > 1)
		appendStringInfo(&why, "; the runner-up %s has %.4f", ranked[1].spec->name,
						 ranked[1].best->cv.mean);
	appendStringInfo(&why, "; %d trials of %d %s", list_length(so->trials), nfinished,
					 nfinished == 1 ? "algorithm" : "algorithms");
	if (so->stopped_by_time)
		appendStringInfo(&why, ", stopped by max_seconds after %d of %d planned",
						 list_length(so->trials) + so->failed, so->planned);
	if (so->failed > 0)
		appendStringInfo(&why, ", %d failed", so->failed);

	JbBeginObject(&st);
	JbKey(&st, "run_id");
	JbInt(&st, run_id);
	JbKey(&st, "strategy");
	JbString(&st, so->strategy);
	JbKey(&st, "metric");
	JbString(&st, so->metric);
	JbKey(&st, "folds");
	JbInt(&st, so->folds);
	JbKey(&st, "trials_planned");
	JbInt(&st, so->planned);
	JbKey(&st, "trials_run");
	JbInt(&st, list_length(so->trials));
	JbKey(&st, "trials_failed");
	JbInt(&st, so->failed);
	JbKey(&st, "stopped_by_time");
	JbBool(&st, so->stopped_by_time);
	if (so->data_profile)
	{
		JbKey(&st, "data");
		JbJsonb(&st, so->data_profile);
	}
	JbKey(&st, "chosen");
	JbString(&st, best->spec->name);
	JbKey(&st, "best_trial");
	JbInt(&st, best->number);
	JbKey(&st, "hyperparams");
	JbJsonb(&st, HyperparamsToJsonb(best->hp));
	JbKey(&st, "why");
	JbString(&st, why.data);
	JbKey(&st, "candidates");
	JbBeginArray(&st);
	for (int i = 0; i < so->ncandidates; i++)
	{
		JbBeginObject(&st);
		JbKey(&st, "algorithm");
		JbString(&st, ranked[i].spec->name);
		JbKey(&st, "trials");
		JbInt(&st, ranked[i].ntrials);
		if (ranked[i].best)
		{
			JbKey(&st, "best_trial");
			JbInt(&st, ranked[i].best->number);
			JbKey(&st, "cv_mean");
			JbFloat(&st, ranked[i].best->cv.mean);
			JbKey(&st, "cv_std");
			JbFloat(&st, ranked[i].best->cv.std);
		}
		JbEndObject(&st);
	}
	JbEndArray(&st);
	return JbFinishObject(&st);
}

/* Stores a refit model (of run run_id, or 0) and its telemetry. */
static void
store_refit(Refit *r, const SplitRowsInfo *sp, int64 project_id, int64 run_id,
			Jsonb *prep_json, Jsonb *extra)
{
	ModelRow	row;

	memset(&row, 0, sizeof(row));
	row.project_id = project_id;
	row.run_id = run_id;
	row.algorithm = r->spec->name;
	row.hyperparams = HyperparamsToJsonb(r->hp);
	row.preprocess = prep_json ? prep_json : JbParse("{}");
	row.features = PipelineDescribe(r->model.pipeline);
	row.metrics = extra ? JbConcat(r->metrics_json, extra) : r->metrics_json;
	row.train_metrics = MetricsToJsonb(&r->train_metrics, r->model.labels);
	row.baseline = MonitorBaseline(sp->in.ds, r->model.pipeline, sp->stream != NULL);
	/* the points of the report's plots, from the hold-out rows */
	if (sp->ntest > 0 && sp->test_y != NULL &&
		(r->model.task == ML_TASK_REGRESSION || r->model.task == ML_TASK_CLASSIFICATION))
	{
		double	   *res = ModelScoreRows(&r->model, sp->in.ds, sp->test_rows, sp->ntest,
										 r->model.task == ML_TASK_CLASSIFICATION ? r->model.nclasses : 0,
										 r->model.labels);

		row.curves = CurvesCompute(r->model.task, sp->test_y, res, sp->ntest, r->model.nclasses);
		pfree(res);
	}
	row.n_train = sp->stream ? sp->stream->ntrain : sp->in.n;
	row.n_test = sp->stream ? sp->stream->ntest : sp->ntest;
	row.fit_seconds = r->seconds;
	row.blob = ModelSerialize(&r->model);
	r->model_id = CatalogInsertModel(&row);
	r->metrics_json = row.metrics;
	store_training_log(r->model_id, r->log);
	if (r->log->debug)
		CatalogInsertDebugEvents(r->model_id, DebugReport(r->log->debug), DebugAlertDue(r->log->debug));
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
	char	   *search = text_arg_or_null(fcinfo, 10);
	Jsonb	   *search_params = PG_ARGISNULL(11) ? NULL : PG_GETARG_JSONB_P(11);
	Jsonb	   *search_args_json = PG_ARGISNULL(12) ? NULL : PG_GETARG_JSONB_P(12);
	bool		autopilot = algorithm && strcmp(algorithm, "auto") == 0;
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
	SplitRowsInfo sp;
	StreamData	stream;
	SearchArgs	sargs;
	SearchOutcome so;
	bool		searching;
	CvResult	cv;
	Refit	   *refits;
	int			nrefits = 0;
	Refit	   *chosen = NULL;
	int64		run_id = 0;
	TimestampTz run_start = GetCurrentTimestamp();
	StringInfoData reason;
	PromotionRow promotion;

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
	if (autopilot && (search || search_params))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("algorithm auto chooses its own search"),
				 errhint("Leave search and search_params unset; tune the autopilot with search_args.")));
	if (search && strcmp(search, "grid") != 0 && strcmp(search, "random") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown search \"%s\"", search),
				 errhint("search is grid or random.")));
	if (!search && !autopilot && (search_params || search_args_json))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s needs search => 'grid' or 'random'",
						search_params ? "search_params" : "search_args")));
	searching = search != NULL || autopilot;
	SearchParseArgs(search_args_json, autopilot, &sargs);

	project_exists = CatalogFindProject(project_name, &project);
	if (project_exists)
	{
		CatalogCheckAccess(&project, ML_ACCESS_TRAIN);
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
		spec = autopilot ? &autopilot_spec : AlgoLookup(algorithm);
		hp = HyperparamsParse(spec, hp_json);
	}
	opts = PipelineParseOptions(prep_json);
	if (target && list_member(opts->exclude, makeString(target)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the target column \"%s\" cannot be excluded", target)));

	/*
	 * data: by one aggregate scan when the fit allows it (linear and ridge
	 * on numeric columns, see stream.c), else read into memory
	 */
	memset(&stream, 0, sizeof(stream));
	if (!searching && spec && hp->cv == 0 && isnan(hp->threshold) && !hp->threshold_metric &&
		(spec->tasks == ML_TASK_BIT(ML_TASK_REGRESSION) ||
		 spec->tasks == ML_TASK_BIT(ML_TASK_CLASSIFICATION)) &&
		(task_arg == NULL ||
		 strcmp(task_arg, spec->tasks == ML_TASK_BIT(ML_TASK_REGRESSION) ?
				"regression" : "classification") == 0) &&
		(!project_exists || spec->tasks == ML_TASK_BIT(project.task)) &&
		TrainStreamRead(source, target, opts, spec, hp, test_size, &stream))
		ds = stream.ds;
	else
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
	if (autopilot && !(spec->tasks & ML_TASK_BIT(task)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the autopilot does regression and classification, not %s",
						MLTaskName(task))));
	if (!(spec->tasks & ML_TASK_BIT(task)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("algorithm %s cannot do %s", spec->name, MLTaskName(task)),
				 errhint("Algorithms for %s: %s.", MLTaskName(task), AlgoNamesForTask(task))));
	if (ds->target)
		encode_target(ds, task, &t);
	else
		memset(&t, 0, sizeof(t));
	if ((hp->threshold_metric || !isnan(hp->threshold)) &&
		!(task == ML_TASK_CLASSIFICATION && t.nclasses == 2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("hyperparameter \"threshold\" applies to binary classification"),
				 errhint("This model does %s%s.", MLTaskName(task),
						 task == ML_TASK_CLASSIFICATION ?
						 psprintf(" with %d classes", t.nclasses) : "")));
	if (!isnan(hp->threshold) && !spec->scores_only &&
		!(hp->threshold >= 0.0 && hp->threshold <= 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("hyperparameter \"threshold\" of %s must be between 0 and 1, not %g",
						spec->name, hp->threshold),
				 errhint("It is the probability of class \"%s\" from which a row is predicted as that class.",
						 t.labels[1])));
	gate = GateParse(gate_json, task, t.nclasses);

	/* split: by row order, or as the aggregate scan did */
	if (stream.ds)
	{
		train_rows = stream.train_rows;
		ntrain = stream.ntrain_sample;
		test_rows = stream.test_rows;
		ntest = stream.ntest_sample;
	}
	else
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

	memset(&sp, 0, sizeof(sp));
	sp.in.ds = ds;
	sp.in.t = &t;
	sp.in.task = task;
	sp.in.opts = opts;
	sp.in.rows = train_rows;
	sp.in.n = ntrain;
	sp.in.seed = hp->seed;
	sp.train_y = t.y ? gather(t.y, train_rows, ntrain) : NULL;
	sp.test_rows = test_rows;
	sp.ntest = ntest;
	sp.test_y = t.y && ntest > 0 ? gather(t.y, test_rows, ntest) : NULL;
	sp.stream = stream.ds ? &stream : NULL;

	/*
	 * Training-row metrics on a seeded sample of at most
	 * TRAIN_METRICS_MAX_ROWS rows: a large training set would otherwise
	 * cost a second full pass of predictions.  Hold-out metrics use every
	 * hold-out row.
	 */
	sp.eval_rows = train_rows;
	sp.eval_y = sp.train_y;
	sp.neval = ntrain;
	if (ntrain > TRAIN_METRICS_MAX_ROWS)
	{
		int64	   *rest;
		int64	   *pick;
		int64		nrest;
		int64	   *rows;

		SplitRows(ntrain, NULL, 1, (double) TRAIN_METRICS_MAX_ROWS / (double) ntrain,
				  hp->seed, &rest, &nrest, &pick, &sp.neval);
		rows = palloc(sizeof(int64) * Max(sp.neval, 1));
		for (int64 i = 0; i < sp.neval; i++)
			rows[i] = train_rows[pick[i]];
		sp.eval_rows = rows;
		sp.eval_y = sp.train_y ? gather(sp.train_y, pick, sp.neval) : NULL;
	}

	/*
	 * search or cross-validation, then the final fit of each candidate on
	 * every training row
	 */
	if (autopilot)
		AutopilotRun(&sp.in, hp_json, &sargs, &so);
	else if (searching)
		SearchRun(&sp.in, spec, hp_json, search, search_params, &sargs, &so);
	if (searching)
	{
		refits = palloc0(sizeof(Refit) * so.ncandidates);
		for (int i = 0; i < so.ncandidates; i++)
		{
			Trial	   *best = so.candidates[i].best;

			if (best == NULL)
				continue;
			refit(&sp, best->spec, best->hp, &best->cv, &refits[nrefits]);
			if (&so.candidates[i] == so.chosen)
				chosen = &refits[nrefits];
			nrefits++;
		}
	}
	else
	{
		bool		want_oof = hp->threshold_metric != NULL;

		if (hp->cv > 0)
		{
			TrainCheckFolds(&sp.in, hp->cv);
			TrainCrossValidate(&sp.in, spec, hp, hp->cv, MetricKeyName(task), 0, want_oof, &cv);
		}
		refits = palloc0(sizeof(Refit));
		refit(&sp, spec, hp, hp->cv > 0 ? &cv : NULL, &refits[0]);
		chosen = &refits[0];
		nrefits = 1;
	}

	/* store */
	if (!project_exists)
	{
		project.id = CatalogCreateProject(project_name, task, target, &project.owner);
		project.name = project_name;
		project.task = task;
		project.target = target;
	}
	if (searching)
	{
		RunRow		run;
		Jsonb	   *report;
		Jsonb	   *chosen_extra;
		JsonbParseState *st = NULL;
		ListCell   *lc;

		memset(&run, 0, sizeof(run));
		run.project_id = project.id;
		run.kind = so.kind;
		run.strategy = so.strategy;
		run.metric = so.metric;
		run.folds = so.folds;
		run.max_seconds = so.max_seconds;
		run.trials_planned = so.planned;
		run.trials_run = list_length(so.trials);
		run.stopped_by_time = so.stopped_by_time;
		run_id = CatalogInsertRun(&run);
		report = run_report(&so, run_id);
		JbBeginObject(&st);
		JbKey(&st, so.kind);
		JbJsonb(&st, report);
		chosen_extra = JbFinishObject(&st);
		for (int i = 0; i < nrefits; i++)
			store_refit(&refits[i], &sp, project.id, run_id, prep_json,
						&refits[i] == chosen ? chosen_extra : NULL);
		foreach(lc, so.trials)
		{
			Trial	   *trial = lfirst(lc);
			TrialRow	tr;

			memset(&tr, 0, sizeof(tr));
			for (int i = 0; i < nrefits; i++)
				if (refits[i].spec == trial->spec)
					tr.model_id = refits[i].model_id;
			tr.trial = trial->number;
			tr.algorithm = trial->spec->name;
			tr.params = HyperparamsToJsonb(trial->hp);
			tr.metric = so.metric;
			tr.nfolds = trial->cv.k;
			tr.fold_scores = trial->cv.scores;
			tr.mean = trial->cv.mean;
			tr.std = trial->cv.std;
			tr.best = trial == so.chosen->best;
			tr.seconds = trial->seconds;
			CatalogInsertTrial(run_id, &tr);
		}
		CatalogFinishRun(run_id, chosen->model_id, report, SecondsSince(run_start));
	}
	else
		store_refit(chosen, &sp, project.id, 0, prep_json, NULL);

	/* deploy */
	initStringInfo(&reason);
	memset(&promotion, 0, sizeof(promotion));
	result->deployed = decide_deploy(mode, gate, &chosen->model, &chosen->metrics, &project, ds,
									 ntest > 0 ? test_rows : sp.eval_rows,
									 ntest > 0 ? sp.test_y : sp.eval_y,
									 &t, chosen->hp->seed, &reason, &promotion);
	promotion.project_id = project.id;
	promotion.model_id = chosen->model_id;
	promotion.mode = mode == DEPLOY_ALWAYS ? "always" : mode == DEPLOY_NEVER ? "never" : "auto";
	promotion.promoted = result->deployed;
	promotion.reason = reason.data;
	CatalogInsertPromotion(&promotion);
	if (result->deployed)
	{
		CatalogInsertDeployment(project.id, chosen->model_id,
								mode == DEPLOY_ALWAYS ? "always" : "auto", reason.data);
		CacheInvalidate();
	}
	else
		ereport(NOTICE,
				(errmsg("model %lld of project \"%s\" is not deployed: %s",
						(long long) chosen->model_id, project_name, reason.data)));

	result->project = project_name;
	result->model_id = chosen->model_id;
	result->algorithm = chosen->spec->name;
	result->metrics = chosen->metrics_json;
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
