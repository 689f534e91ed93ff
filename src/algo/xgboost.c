/*-------------------------------------------------------------------------
 * src/algo/xgboost.c
 *		Gradient-boosted trees (xgboost) and random forests (random_forest)
 *		through XGBoost's C API.
 *
 * Design: the transformed training rows (NULLs stay NaN: XGBoost treats
 * them as missing) are copied once into a row-major float32 matrix, the
 * DMatrix is built from it and the copy freed.  Boosting runs one round
 * at a time so that a cancel is honoured between rounds; with
 * early_stopping_rounds a seeded slice of the training rows is held out
 * for validation and the booster is cut back to its best round.  A random
 * forest is XGBoost's one-round mode with num_parallel_tree trees.
 *
 * Cleanup policy: every DMatrix and Booster handle is owned by a struct
 * whose memory context has a reset callback that frees it, so an ERROR at
 * any point releases them; XGBoost's errors come back as return codes and
 * are raised only after the call returns.  XGBoost's threads never call
 * PostgreSQL.
 *-------------------------------------------------------------------------
 */
#include "algo/algo.h"

#include <math.h>
#include <xgboost/c_api.h>

#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "model/model.h"
#include "utils/memutils.h"

#define XGB_MAX_MODEL_BYTES (512 * 1024 * 1024)
#define XGB_LOG_SAMPLE_ROWS 10000

/* A booster and its training matrices, freed with their memory context. */
typedef struct XgbHandles
{
	BoosterHandle booster;
	DMatrixHandle dtrain;
	DMatrixHandle dvalid;
	DMatrixHandle dsample;		/* training rows the telemetry's loss is on */
	MemoryContextCallback cb;
} XgbHandles;

typedef struct XgbState
{
	XgbHandles *h;
	bool		parallel;		/* the booster predicts with many threads */
	int			rounds;			/* boosting rounds kept */
	int			best_round;		/* early stopping: 0-based best, else -1 */
} XgbState;

static const HyperparamSpec xgboost_params[] = {
	{"colsample_bynode", HP_FLOAT, "1", 1e-9, 1, NULL, false},
	{"colsample_bytree", HP_FLOAT, "1", 1e-9, 1, NULL, false},
	{"early_stopping_rounds", HP_INT, NULL, 1, 100000, NULL, true},
	{"eta", HP_FLOAT, NULL, 0, 1, NULL, true},
	{"gamma", HP_FLOAT, "0", 0, 1e300, NULL, false},
	{"learning_rate", HP_FLOAT, NULL, 0, 1, NULL, true},
	{"max_bin", HP_INT, "256", 2, 65535, NULL, false},
	{"max_depth", HP_INT, "6", 0, 64, NULL, false},
	{"min_child_weight", HP_FLOAT, "1", 0, 1e300, NULL, false},
	{"n_estimators", HP_INT, "100", 1, 100000, NULL, false},
	{"objective", HP_STRING, NULL, 0, 0,
	"reg:squarederror|reg:absoluteerror|reg:pseudohubererror|reg:squaredlogerror|"
	"count:poisson|reg:gamma|reg:tweedie|binary:logistic|multi:softprob", true},
	{"reg_alpha", HP_FLOAT, "0", 0, 1e300, NULL, false},
	{"reg_lambda", HP_FLOAT, "1", 0, 1e300, NULL, false},
	{"subsample", HP_FLOAT, "1", 1e-9, 1, NULL, false},
	{"tree_method", HP_STRING, "hist", 0, 0, "hist|approx|exact", false},
	{"validation_fraction", HP_FLOAT, "0.1", 0.01, 0.5, NULL, false},
};

static const HyperparamSpec random_forest_params[] = {
	{"colsample_bynode", HP_FLOAT, "0.8", 1e-9, 1, NULL, false},
	{"max_bin", HP_INT, "256", 2, 65535, NULL, false},
	{"max_depth", HP_INT, "6", 0, 64, NULL, false},
	{"min_child_weight", HP_FLOAT, "1", 0, 1e300, NULL, false},
	{"n_estimators", HP_INT, "100", 1, 100000, NULL, false},
	{"reg_lambda", HP_FLOAT, "1", 0, 1e300, NULL, false},
	{"subsample", HP_FLOAT, "0.8", 1e-9, 1, NULL, false},
	{"tree_method", HP_STRING, "hist", 0, 0, "hist|approx|exact", false},
};

/* XGBoost's last error, without the stack trace it appends. */
static char *
xgb_last_error(void)
{
	char	   *msg = pstrdup(XGBGetLastError());
	char	   *cut = strstr(msg, "\nStack trace");

	if (cut)
		*cut = '\0';
	return msg;
}

/* Raises XGBoost's last error after a failed call. */
static void
xgb_check(int rc, const char *what)
{
	if (rc != 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("XGBoost could not %s", what),
				 errdetail("%s", xgb_last_error())));
}

static void
xgb_release(void *arg)
{
	XgbHandles *h = arg;

	if (h->booster)
		XGBoosterFree(h->booster);
	if (h->dtrain)
		XGDMatrixFree(h->dtrain);
	if (h->dvalid)
		XGDMatrixFree(h->dvalid);
	if (h->dsample)
		XGDMatrixFree(h->dsample);
	h->booster = h->dtrain = h->dvalid = h->dsample = NULL;
}

/* New handles owned by the current memory context. */
static XgbHandles *
xgb_handles(void)
{
	static bool quiet = false;
	XgbHandles *h = palloc0(sizeof(XgbHandles));

	if (!quiet)
	{
		xgb_check(XGBSetGlobalConfig("{\"verbosity\": 0}"), "set its verbosity");
		quiet = true;
	}
	h->cb.func = xgb_release;
	h->cb.arg = h;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &h->cb);
	return h;
}

static void
xgb_set(BoosterHandle b, const char *name, const char *value)
{
	xgb_check(XGBoosterSetParam(b, name, value), psprintf("set parameter %s", name));
}

static void
xgb_set_float(BoosterHandle b, const char *name, double value)
{
	char		buf[64];

	snprintf(buf, sizeof(buf), "%.17g", value);
	xgb_set(b, name, buf);
}

static void
xgb_set_int(BoosterHandle b, const char *name, int value)
{
	char		buf[32];

	snprintf(buf, sizeof(buf), "%d", value);
	xgb_set(b, name, buf);
}

/* A DMatrix of the given training rows (indexes into the TrainSet). */
static DMatrixHandle
xgb_matrix(const TrainSet *ts, const int64 *which, int64 n)
{
	float	   *data = palloc_extended(sizeof(float) * Max(n * ts->p, 1), MCXT_ALLOC_HUGE);
	float	   *label = palloc_extended(sizeof(float) * Max(n, 1), MCXT_ALLOC_HUGE);
	double	   *block = palloc(sizeof(double) * TRAIN_BLOCK_ROWS * Max(ts->p, 1));
	int64	   *rows = palloc(sizeof(int64) * TRAIN_BLOCK_ROWS);
	DMatrixHandle dm = NULL;
	int			rc;

	for (int64 start = 0; start < n; start += TRAIN_BLOCK_ROWS)
	{
		int			count = (int) Min((int64) TRAIN_BLOCK_ROWS, n - start);

		for (int i = 0; i < count; i++)
		{
			rows[i] = ts->rows[which[start + i]];
			label[start + i] = (float) ts->y[which[start + i]];
		}
		PipelineTransformBlock(ts->binding, rows, count, block, count);
		for (int i = 0; i < count; i++)
			for (int j = 0; j < ts->p; j++)
				data[(start + i) * ts->p + j] = (float) block[(Size) j * count + i];
		CHECK_FOR_INTERRUPTS();
	}
	rc = XGDMatrixCreateFromMat_omp(data, (bst_ulong) n, (bst_ulong) ts->p, NAN, &dm,
									ml_threads);
	pfree(data);
	pfree(block);
	pfree(rows);
	xgb_check(rc, "create its training matrix");
	rc = XGDMatrixSetFloatInfo(dm, "label", label, (bst_ulong) n);
	pfree(label);
	if (rc != 0)
	{
		XGDMatrixFree(dm);
		xgb_check(rc, "set the labels");
	}
	return dm;
}

/* The objective: the user's for regression, else the task's. */
static const char *
xgb_objective(const TrainSet *ts, const char *asked)
{
	if (ts->task == ML_TASK_REGRESSION)
	{
		if (asked && strncmp(asked, "reg:", 4) != 0 && strncmp(asked, "count:", 6) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("objective \"%s\" does not fit regression", asked)));
		return asked ? asked : "reg:squarederror";
	}
	if (asked && strcmp(asked, ts->nclasses == 2 ? "binary:logistic" : "multi:softprob") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("objective \"%s\" does not fit %s classification", asked,
						ts->nclasses == 2 ? "binary" : "multiclass"),
				 errhint("Classification uses %s; leave objective unset.",
						 ts->nclasses == 2 ? "binary:logistic" : "multi:softprob")));
	return ts->nclasses == 2 ? "binary:logistic" : "multi:softprob";
}

/* Reads "<name>-<metric>:<value>" from XGBoost's evaluation string. */
static double
xgb_eval_score(const char *eval, const char *name)
{
	char		prefix[16];
	const char *p;

	snprintf(prefix, sizeof(prefix), "\t%s-", name);
	p = strstr(eval, prefix);
	if (p == NULL || (p = strchr(p, ':')) == NULL)
		elog(ERROR, "unexpected XGBoost evaluation output: %s", eval);
	return strtod(p + 1, NULL);
}

/* Splits the training rows into fit and validation rows, seeded. */
static void
xgb_validation_split(const TrainSet *ts, double fraction, int64 seed,
					 int64 **fit, int64 *nfit, int64 **valid, int64 *nvalid)
{
	int64	   *tr;
	int64	   *te;

	SplitRows(ts->n, ts->task == ML_TASK_CLASSIFICATION ? ts->y : NULL, ts->nclasses,
			  fraction, seed + 1, &tr, nfit, &te, nvalid);
	if (*nvalid == 0 || *nfit == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("validation_fraction %g leaves no validation rows out of %lld",
						fraction, (long long) ts->n),
				 errhint("Use more rows, a larger validation_fraction, or no early_stopping_rounds.")));
	*fit = tr;
	*valid = te;
}

static void
xgb_train(AlgoModel *m, TrainSet *ts, const Hyperparams *hp, bool forest)
{
	XgbState   *st = palloc0(sizeof(XgbState));
	XgbHandles *h = xgb_handles();
	int			n_estimators = HpInt(hp, "n_estimators");
	int			early = 0;
	int64	   *fit_rows;
	int64		nfit;
	int64	   *valid_rows = NULL;
	int64		nvalid = 0;
	DMatrixHandle dmats[3];
	int			ndmats = 0;
	DMatrixHandle evals[2];
	const char *eval_names[2] = {"train", "valid"};
	int			nevals;
	int			rounds;
	double		best = INFINITY;
	int			since_best = 0;

	st->h = h;
	st->best_round = -1;
	if (!forest && !HpIsNull(hp, "early_stopping_rounds"))
		early = HpInt(hp, "early_stopping_rounds");
	if (early > 0)
		xgb_validation_split(ts, HpFloat(hp, "validation_fraction"), hp->seed,
							 &fit_rows, &nfit, &valid_rows, &nvalid);
	else
	{
		nfit = ts->n;
		fit_rows = palloc_extended(sizeof(int64) * Max(nfit, 1), MCXT_ALLOC_HUGE);
		for (int64 i = 0; i < nfit; i++)
			fit_rows[i] = i;
	}

	h->dtrain = xgb_matrix(ts, fit_rows, nfit);
	dmats[ndmats++] = h->dtrain;
	if (early > 0)
	{
		h->dvalid = xgb_matrix(ts, valid_rows, nvalid);
		dmats[ndmats++] = h->dvalid;
	}

	/*
	 * The telemetry's training loss is measured on a seeded sample of at
	 * most XGB_LOG_SAMPLE_ROWS fitting rows: evaluating every row each
	 * round costs about a third of the boosting itself.
	 */
	if (ts->log && nfit > XGB_LOG_SAMPLE_ROWS)
	{
		int64	   *rest;
		int64	   *pick;
		int64		nrest;
		int64		npick;

		SplitRows(nfit, NULL, 1, (double) XGB_LOG_SAMPLE_ROWS / (double) nfit, hp->seed + 2,
				  &rest, &nrest, &pick, &npick);
		for (int64 k = 0; k < npick; k++)
			pick[k] = fit_rows[pick[k]];
		h->dsample = xgb_matrix(ts, pick, npick);
		dmats[ndmats++] = h->dsample;
	}
	evals[0] = h->dsample ? h->dsample : h->dtrain;
	evals[1] = h->dvalid;
	nevals = early > 0 ? 2 : 1;
	xgb_check(XGBoosterCreate(dmats, ndmats, &h->booster), "create a booster");

	xgb_set(h->booster, "objective", xgb_objective(ts, forest ? NULL : HpString(hp, "objective")));
	if (ts->task == ML_TASK_CLASSIFICATION && ts->nclasses > 2)
		xgb_set_int(h->booster, "num_class", ts->nclasses);
	xgb_set(h->booster, "tree_method", HpString(hp, "tree_method"));
	xgb_set_int(h->booster, "max_depth", HpInt(hp, "max_depth"));
	xgb_set_int(h->booster, "max_bin", HpInt(hp, "max_bin"));
	xgb_set_float(h->booster, "min_child_weight", HpFloat(hp, "min_child_weight"));
	xgb_set_float(h->booster, "lambda", HpFloat(hp, "reg_lambda"));
	xgb_set_float(h->booster, "subsample", HpFloat(hp, "subsample"));
	xgb_set_float(h->booster, "colsample_bynode", HpFloat(hp, "colsample_bynode"));
	xgb_set_int(h->booster, "seed", (int) hp->seed);
	if (ml_threads > 0)
		xgb_set_int(h->booster, "nthread", ml_threads);
	if (forest)
	{
		xgb_set_int(h->booster, "num_parallel_tree", n_estimators);
		xgb_set_float(h->booster, "eta", 1.0);
		rounds = 1;
	}
	else
	{
		double		eta = 0.3;

		if (!HpIsNull(hp, "eta") && !HpIsNull(hp, "learning_rate"))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("hyperparameters \"eta\" and \"learning_rate\" are the same; give one")));
		if (!HpIsNull(hp, "eta"))
			eta = HpFloat(hp, "eta");
		else if (!HpIsNull(hp, "learning_rate"))
			eta = HpFloat(hp, "learning_rate");
		xgb_set_float(h->booster, "eta", eta);
		xgb_set_float(h->booster, "alpha", HpFloat(hp, "reg_alpha"));
		xgb_set_float(h->booster, "gamma", HpFloat(hp, "gamma"));
		xgb_set_float(h->booster, "colsample_bytree", HpFloat(hp, "colsample_bytree"));
		rounds = n_estimators;
	}

	for (int i = 0; i < rounds; i++)
	{
		CHECK_FOR_INTERRUPTS();
		xgb_check(XGBoosterUpdateOneIter(h->booster, i, h->dtrain), "run a boosting round");
		st->rounds = i + 1;
		if (early > 0 || ts->log)
		{
			const char *eval;
			double		score = NAN;

			/* the losses of this round, on cached predictions */
			xgb_check(XGBoosterEvalOneIter(h->booster, i, evals, eval_names, nevals, &eval),
					  "evaluate a round");
			if (early > 0)
				score = xgb_eval_score(eval, "valid");
			if (early > 0 && score < best)
			{
				best = score;
				st->best_round = i;
				since_best = 0;
			}
			else if (early > 0)
				since_best++;
			/* a debugger rule that stops ends here, keeping the best round */
			if (!TrainLogAdd(ts, "gradient_norm", i + 1, xgb_eval_score(eval, "train"), score, NAN))
				break;
			if (early > 0 && since_best >= early)
				break;
		}
	}

	/* keep the best rounds only */
	if (early > 0 && st->best_round + 1 < st->rounds)
	{
		BoosterHandle cut;

		xgb_check(XGBoosterSlice(h->booster, 0, st->best_round + 1, 1, &cut),
				  "cut the booster to its best round");
		XGBoosterFree(h->booster);
		h->booster = cut;
		st->rounds = st->best_round + 1;
	}

	XGDMatrixFree(h->dtrain);
	h->dtrain = NULL;
	if (h->dvalid)
	{
		XGDMatrixFree(h->dvalid);
		h->dvalid = NULL;
	}
	if (h->dsample)
	{
		XGDMatrixFree(h->dsample);
		h->dsample = NULL;
	}
	/* serving predicts a row at a time: one thread */
	xgb_set_int(h->booster, "nthread", 1);
	m->state = st;
}

static void
xgboost_fit(AlgoModel *m, TrainSet *ts, const Hyperparams *hp)
{
	xgb_train(m, ts, hp, false);
}

static void
random_forest_fit(AlgoModel *m, TrainSet *ts, const Hyperparams *hp)
{
	xgb_train(m, ts, hp, true);
}

/*
 * Blocks of rows are predicted with every thread ml.threads allows; single
 * rows (serving) with one, where waking threads would cost more than the
 * prediction.  The setting changes only when the kind of call does.
 */
#define XGB_PARALLEL_MIN_ROWS 256

static void
xgb_predict(const AlgoModel *m, const double *X, int n, int ld, double *out)
{
	XgbState   *st = m->state;
	float		stackbuf[256];
	float	   *data = (Size) n * m->p <= lengthof(stackbuf) ? stackbuf :
		palloc(sizeof(float) * Max((Size) n * m->p, 1));
	char		values[256];
	const bst_ulong *shape;
	bst_ulong	dim;
	const float *result;
	int			k = m->task == ML_TASK_CLASSIFICATION ? m->nclasses : 1;

	for (int i = 0; i < n; i++)
		for (int j = 0; j < m->p; j++)
			data[(Size) i * m->p + j] = (float) X[(Size) j * ld + i];
	if ((n >= XGB_PARALLEL_MIN_ROWS) != st->parallel)
	{
		st->parallel = !st->parallel;
		xgb_set_int(st->h->booster, "nthread", st->parallel ? ml_threads : 1);
	}
	snprintf(values, sizeof(values),
			 "{\"data\": [%zu, true], \"shape\": [%d, %d], \"typestr\": \"<f4\", \"version\": 3}",
			 (size_t) data, n, m->p);
	/*
	 * Classification asks for margins (type 1) and turns them into
	 * probabilities in double precision, so that probabilities and
	 * ml.explain's margins agree to the last digit.
	 */
	xgb_check(XGBoosterPredictFromDense(st->h->booster, values,
										m->task == ML_TASK_CLASSIFICATION ?
										"{\"type\": 1, \"training\": false, \"iteration_begin\": 0, "
										"\"iteration_end\": 0, \"strict_shape\": true, \"cache_id\": 0, "
										"\"missing\": NaN}" :
										"{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
										"\"iteration_end\": 0, \"strict_shape\": true, \"cache_id\": 0, "
										"\"missing\": NaN}",
										NULL, &shape, &dim, &result),
			  "predict");
	for (int i = 0; i < n; i++)
	{
		double	   *o = out + (Size) i * k;

		if (k == 1)
			o[0] = result[i];
		else if (k == 2)
		{
			o[1] = 1.0 / (1.0 + exp(-(double) result[i]));
			o[0] = 1.0 / (1.0 + exp((double) result[i]));
		}
		else
		{
			const float *z = result + (Size) i * k;
			double		zmax = z[0];
			double		sum = 0.0;

			for (int c = 1; c < k; c++)
				zmax = Max(zmax, (double) z[c]);
			for (int c = 0; c < k; c++)
				sum += (o[c] = exp((double) z[c] - zmax));
			for (int c = 0; c < k; c++)
				o[c] /= sum;
		}
	}
	if (data != stackbuf)
		pfree(data);
}

/*
 * SHAP values from XGBoost's pred_contribs: one per feature and the bias,
 * for class cls of a multiclass model (binary: the positive class).
 */
static double
xgb_explain(const AlgoModel *m, const double *x, int cls, double *contrib)
{
	const XgbState *st = m->state;
	float	   *data = palloc(sizeof(float) * Max(m->p, 1));
	DMatrixHandle dm = NULL;
	const bst_ulong *shape;
	bst_ulong	dim;
	const float *result;
	const float *row;
	double		bias;
	int			rc;

	for (int j = 0; j < m->p; j++)
		data[j] = (float) x[j];
	/* contributions need a DMatrix: in-place prediction does not give them */
	xgb_check(XGDMatrixCreateFromMat(data, 1, (bst_ulong) m->p, NAN, &dm),
			  "create a matrix of one row");
	rc = XGBoosterPredictFromDMatrix(st->h->booster, dm,
									 "{\"type\": 2, \"training\": false, \"iteration_begin\": 0, "
									 "\"iteration_end\": 0, \"strict_shape\": true}",
									 &shape, &dim, &result);
	if (rc != 0)
	{
		XGDMatrixFree(dm);
		xgb_check(rc, "compute feature contributions");
	}
	/* strict shape: (rows, groups, features + 1) */
	row = result + (Size) (dim == 3 && shape[1] > 1 ? cls : 0) * (m->p + 1);
	for (int j = 0; j < m->p; j++)
		contrib[j] = row[j];
	bias = row[m->p];
	XGDMatrixFree(dm);
	pfree(data);
	return bias;
}

static void
xgb_serialize(const AlgoModel *m, StringInfo buf)
{
	const XgbState *st = m->state;
	bst_ulong	len;
	const char *bytes;

	xgb_check(XGBoosterSaveModelToBuffer(st->h->booster, "{\"format\": \"ubj\"}", &len, &bytes),
			  "save the model");
	if (len > XGB_MAX_MODEL_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the XGBoost model takes %llu bytes, more than %d",
						(unsigned long long) len, XGB_MAX_MODEL_BYTES),
				 errhint("Use fewer or shallower trees.")));
	pq_sendint32(buf, st->rounds);
	pq_sendint32(buf, st->best_round);
	pq_sendint32(buf, (int32) len);
	pq_sendbytes(buf, bytes, (int) len);
}

static void
xgb_deserialize(AlgoModel *m, BlobReader *r)
{
	XgbState   *st = palloc0(sizeof(XgbState));
	int32		len;
	const char *bytes;
	bst_ulong	nfeatures = 0;

	st->rounds = BlobGetInt32(r);
	st->best_round = BlobGetInt32(r);
	len = BlobGetCount(r, XGB_MAX_MODEL_BYTES, 1, "XGBoost model bytes");
	bytes = r->buf.data + r->buf.cursor;
	r->buf.cursor += len;

	/* XGBoost trusts model files: check the document before it reads it */
	{
		XgbDocument doc;
		MemoryContext oldcxt = CurrentMemoryContext;

		PG_TRY();
		{
			XgbDocumentCheck(bytes, (Size) len, false, &doc);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(oldcxt);
			edata = CopyErrorData();
			FlushErrorState();
			BlobCorrupt(r, psprintf("The XGBoost model is malformed: %s", edata->message));
		}
		PG_END_TRY();
	}
	st->h = xgb_handles();
	xgb_check(XGBoosterCreate(NULL, 0, &st->h->booster), "create a booster");
	if (XGBoosterLoadModelFromBuffer(st->h->booster, bytes, (bst_ulong) len) != 0)
		BlobCorrupt(r, psprintf("XGBoost cannot load the model: %s", xgb_last_error()));
	if (XGBoosterGetNumFeature(st->h->booster, &nfeatures) != 0 ||
		nfeatures != (bst_ulong) m->p)
		BlobCorrupt(r, "The XGBoost model's feature count does not match the pipeline's.");
	xgb_set_int(st->h->booster, "nthread", 1);
	m->state = st;
}

static void
xgb_describe(const AlgoModel *m, char **feature_names, char **labels,
			 JsonbParseState **js)
{
	const XgbState *st = m->state;
	bst_ulong	nfeat = 0;
	bst_ulong	dim = 0;
	const char **names = NULL;
	const bst_ulong *shape = NULL;
	const float *scores = NULL;

	JbKey(js, "rounds");
	JbInt(js, st->rounds);
	if (st->best_round >= 0)
	{
		JbKey(js, "best_round");
		JbInt(js, st->best_round);
	}
	xgb_check(XGBoosterFeatureScore(st->h->booster, "{\"importance_type\": \"total_gain\"}",
									&nfeat, &names, &dim, &shape, &scores),
			  "compute feature importance");

	/* names come back as "f<index>"; report them by the model's names */
	JbKey(js, "importance");
	JbBeginObject(js);
	{
		double		total = 0.0;

		for (bst_ulong i = 0; i < nfeat; i++)
			total += scores[i];
		for (int j = 0; j < m->p; j++)
		{
			double		gain = 0.0;
			char		fname[32];

			snprintf(fname, sizeof(fname), "f%d", j);
			for (bst_ulong i = 0; i < nfeat; i++)
				if (strcmp(names[i], fname) == 0)
					gain = scores[i];
			JbKey(js, feature_names[j]);
			JbFloat(js, total > 0 ? gain / total : 0.0);
		}
	}
	JbEndObject(js);
}

/*
 * XgbModelSave appends the booster of an xgboost or random_forest model to
 * out in one of XGBoost's own formats ("json" or "ubj"), and returns false
 * for a model of another algorithm.
 */
bool
XgbModelSave(const AlgoModel *m, const char *format, StringInfo out)
{
	const XgbState *st;
	bst_ulong	len;
	const char *bytes;
	char		config[64];

	if (m->spec != &xgboost_algo && m->spec != &random_forest_algo)
		return false;
	st = m->state;
	snprintf(config, sizeof(config), "{\"format\": \"%s\"}", format);
	xgb_check(XGBoosterSaveModelToBuffer(st->h->booster, config, &len, &bytes),
			  "save the model");
	if (len >= MaxAllocSize - VARHDRSZ - out->len)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the XGBoost model takes %llu bytes in format %s, more than a value can hold",
						(unsigned long long) len, format)));
	appendBinaryStringInfo(out, bytes, (int) len);
	return true;
}

/*
 * XgbModelLoad loads a model saved by XGBoost (JSON or UBJSON, which the
 * caller has checked) as the state of m, an xgboost model, and returns
 * its number of features.  The booster keeps no feature names: pgmaker
 * addresses features by position.
 */
int
XgbModelLoad(AlgoModel *m, const char *bytes, Size len)
{
	XgbState   *st = palloc0(sizeof(XgbState));
	bst_ulong	nfeatures = 0;
	int			rounds = 0;

	Assert(m->spec == &xgboost_algo);
	st->h = xgb_handles();
	st->best_round = -1;
	xgb_check(XGBoosterCreate(NULL, 0, &st->h->booster), "create a booster");
	if (len > XGB_MAX_MODEL_BYTES ||
		XGBoosterLoadModelFromBuffer(st->h->booster, bytes, (bst_ulong) len) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("XGBoost cannot load the model"),
				 errdetail("%s", len > XGB_MAX_MODEL_BYTES ?
						   psprintf("The model takes %zu bytes, more than %d.",
									(size_t) len, XGB_MAX_MODEL_BYTES) :
						   xgb_last_error())));
	xgb_check(XGBoosterGetNumFeature(st->h->booster, &nfeatures), "count the model's features");
	xgb_check(XGBoosterBoostedRounds(st->h->booster, &rounds), "count the boosting rounds");
	xgb_check(XGBoosterSetStrFeatureInfo(st->h->booster, "feature_name", NULL, 0),
			  "clear the feature names");
	xgb_check(XGBoosterSetStrFeatureInfo(st->h->booster, "feature_type", NULL, 0),
			  "clear the feature types");
	xgb_set_int(st->h->booster, "nthread", 1);
	st->rounds = rounds;
	m->state = st;
	return nfeatures > (bst_ulong) PG_INT32_MAX ? PG_INT32_MAX : (int) nfeatures;
}

const AlgoSpec xgboost_algo = {
	.name = "xgboost",
	.tasks = ML_TASK_BIT(ML_TASK_REGRESSION) | ML_TASK_BIT(ML_TASK_CLASSIFICATION),
	.default_scale = SCALE_NONE,
	.keeps_missing = true,
	.params = xgboost_params,
	.nparams = lengthof(xgboost_params),
	.fit = xgboost_fit,
	.predict = xgb_predict,
	.serialize = xgb_serialize,
	.deserialize = xgb_deserialize,
	.describe = xgb_describe,
	.explain = xgb_explain,
};

const AlgoSpec random_forest_algo = {
	.name = "random_forest",
	.tasks = ML_TASK_BIT(ML_TASK_REGRESSION) | ML_TASK_BIT(ML_TASK_CLASSIFICATION),
	.default_scale = SCALE_NONE,
	.keeps_missing = true,
	.params = random_forest_params,
	.nparams = lengthof(random_forest_params),
	.fit = random_forest_fit,
	.predict = xgb_predict,
	.serialize = xgb_serialize,
	.deserialize = xgb_deserialize,
	.describe = xgb_describe,
	.explain = xgb_explain,
};
