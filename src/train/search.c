/*-------------------------------------------------------------------------
 * src/train/search.c
 *		Hyperparameter search (grid and random) and the autopilot.
 *
 * A trial is a k-fold cross-validation of one algorithm with one set of
 * hyperparameters on the training rows; every trial of a run sees the
 * same folds.  A search runs the trials of one algorithm's space; the
 * autopilot runs, for each candidate algorithm of the task, its default
 * hyperparameters first and then random draws from a space chosen for
 * the algorithm, round-robin, until the trials or the time run out.
 *
 * Each trial runs in a subtransaction: a trial that fails (a combination
 * the algorithm refuses, a fit that does not converge to anything usable)
 * is reported as a WARNING and the run goes on.  A cancel or a shortage
 * of resources still ends the run.  The time budget (max_seconds) is
 * checked between trials and between the folds of a trial: an unfinished
 * trial is dropped, and the best finished one wins.  The first trial
 * always finishes, so a run always has a model.
 *
 * The caller refits the winner on every training row and stores it; see
 * train.c.
 *-------------------------------------------------------------------------
 */
#include "train/train.h"

#include <math.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#define SEARCH_MAX_GRID 10000
#define SEARCH_MAX_SECONDS 100000000	/* three years: keeps the deadline in range */
#define SEARCH_DEFAULT_N_ITER 10
#define SEARCH_DEFAULT_CV 5
#define AUTOPILOT_DEFAULT_N_ITER 6
#define AUTOPILOT_LARGE_ROWS 100000
#define ENSEMBLE_ROUNDS 20
#define ENSEMBLE_SELECT_ROWS 20000

/* The autopilot's pseudo-algorithm: it takes only seed, cv and threshold. */
const AlgoSpec autopilot_spec = {
	.name = "auto",
	.tasks = ML_TASK_BIT(ML_TASK_REGRESSION) | ML_TASK_BIT(ML_TASK_CLASSIFICATION),
};

/*
 * The autopilot's candidates per task, cheapest first, each with the
 * space its random trials draw from (NULL: defaults only).
 */
typedef struct AutoCandidate
{
	const char *algorithm;
	const char *space;
} AutoCandidate;

/* The tree ensembles' spaces, the same for regression and classification. */
#define RANDOM_FOREST_SPACE \
	"{\"max_depth\": {\"low\": 3, \"high\": 12}," \
	" \"n_estimators\": {\"low\": 50, \"high\": 300}," \
	" \"colsample_bynode\": {\"low\": 0.3, \"high\": 1}," \
	" \"min_child_weight\": {\"low\": 0.5, \"high\": 10, \"log\": true}}"
#define XGBOOST_SPACE \
	"{\"max_depth\": {\"low\": 2, \"high\": 8}," \
	" \"eta\": {\"low\": 0.01, \"high\": 0.3, \"log\": true}," \
	" \"n_estimators\": {\"low\": 50, \"high\": 400}," \
	" \"subsample\": {\"low\": 0.6, \"high\": 1}," \
	" \"colsample_bytree\": {\"low\": 0.6, \"high\": 1}," \
	" \"min_child_weight\": {\"low\": 0.5, \"high\": 10, \"log\": true}}"

static const AutoCandidate auto_regression[] = {
	{"linear", NULL},
	{"ridge", "{\"alpha\": {\"low\": 0.001, \"high\": 1000, \"log\": true}}"},
	{"lasso", "{\"alpha\": {\"low\": 0.0001, \"high\": 10, \"log\": true}}"},
	{"elastic_net", "{\"alpha\": {\"low\": 0.0001, \"high\": 10, \"log\": true},"
	" \"l1_ratio\": {\"low\": 0.05, \"high\": 0.95}}"},
	{"random_forest", RANDOM_FOREST_SPACE},
	{"xgboost", XGBOOST_SPACE},
};

static const AutoCandidate auto_classification[] = {
	{"logistic", "{\"C\": {\"low\": 0.001, \"high\": 1000, \"log\": true}}"},
	{"naive_bayes", "{\"var_smoothing\": {\"low\": 1e-12, \"high\": 0.001, \"log\": true}}"},
	{"linear_svm", "{\"C\": {\"low\": 0.001, \"high\": 100, \"log\": true}}"},
	{"random_forest", RANDOM_FOREST_SPACE},
	{"xgboost", XGBOOST_SPACE},
};

/* One searched hyperparameter: a list of values, or a numeric range. */
typedef struct SearchDim
{
	const HyperparamSpec *ps;
	int			nvalues;
	JsonbValue *values;			/* scalars */
	bool		is_range;
	double		low;
	double		high;
	bool		log;
} SearchDim;

typedef struct SearchSpace
{
	const AlgoSpec *spec;
	int			ndims;
	SearchDim  *dims;
} SearchSpace;

typedef struct SpaceParseState
{
	SearchSpace *space;
	bool		ranges_allowed;
} SpaceParseState;

typedef struct ArgsParseState
{
	SearchArgs *args;
	bool		autopilot;
} ArgsParseState;

/* Elements of a jsonb array given as a jbvBinary value, as scalars. */
static int
array_elements(const char *key, JsonbValue *v, JsonbValue **out)
{
	Jsonb	   *arr = JsonbValueToJsonb(v);
	JsonbIterator *it = JsonbIteratorInit(&arr->root);
	JsonbValue	e;
	JsonbIteratorToken tok;
	int			n = 0;
	int			cap = 8;

	*out = palloc(sizeof(JsonbValue) * cap);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (e.type == jbvBinary)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("search_params \"%s\" lists a nested array or object", key),
					 errhint("List the values themselves: numbers, strings, booleans or null.")));
		if (n == cap)
		{
			cap *= 2;
			*out = repalloc(*out, sizeof(JsonbValue) * cap);
		}
		(*out)[n++] = e;
	}
	return n;
}

/* Checks one value of a hyperparameter as hyperparams would. */
static void
check_value(const AlgoSpec *spec, const char *key, JsonbValue *v)
{
	JsonbParseState *st = NULL;

	JbBeginObject(&st);
	JbKey(&st, key);
	pushJsonbValue(&st, WJB_VALUE, v);
	(void) HyperparamsParse(spec, JbFinishObject(&st));
}

static void
check_number(const AlgoSpec *spec, const char *key, double d)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = DatumGetNumeric(DirectFunctionCall1(float8_numeric, Float8GetDatum(d)));
	check_value(spec, key, &v);
}

static void
range_key(const char *param, JsonbValue *v, const char *what, double *out)
{
	if (!JsonbValueToDouble(v, out) || !isfinite(*out))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("search_params \"%s\": \"%s\" must be a finite number", param, what)));
}

/* Parses a {"low", "high", "log"} range into dim. */
static void
parse_range(const AlgoSpec *spec, const char *key, JsonbValue *v, SearchDim *dim)
{
	Jsonb	   *obj = JsonbValueToJsonb(v);
	JsonbIterator *it = JsonbIteratorInit(&obj->root);
	JsonbValue	e;
	JsonbIteratorToken tok;
	char	   *k = NULL;
	bool		has_low = false;
	bool		has_high = false;

	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			k = pnstrdup(e.val.string.val, e.val.string.len);
		else if (tok == WJB_VALUE)
		{
			if (strcmp(k, "low") == 0)
			{
				range_key(key, &e, "low", &dim->low);
				has_low = true;
			}
			else if (strcmp(k, "high") == 0)
			{
				range_key(key, &e, "high", &dim->high);
				has_high = true;
			}
			else if (strcmp(k, "log") == 0 && e.type == jbvBool)
				dim->log = e.val.boolean;
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("search_params \"%s\" has an unknown range key \"%s\"", key, k),
						 errhint("A range is {\"low\": number, \"high\": number, \"log\": boolean}.")));
		}
	}
	if (!has_low || !has_high)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("search_params \"%s\" needs both \"low\" and \"high\"", key)));
	if (dim->ps->type != HP_INT && dim->ps->type != HP_FLOAT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("search_params \"%s\" is a range, but the hyperparameter is not a number", key),
				 errhint("List its values instead.")));
	if (dim->low > dim->high)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("search_params \"%s\" has low %g above high %g", key, dim->low, dim->high)));
	if (dim->log && dim->low <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("search_params \"%s\" is a log range, so low must be above 0, not %g",
						key, dim->low)));
	if (dim->ps->type == HP_INT)
	{
		dim->low = ceil(dim->low);
		dim->high = floor(dim->high);
		if (dim->low > dim->high)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("search_params \"%s\" holds no integer", key)));
	}
	check_number(spec, key, dim->low);
	check_number(spec, key, dim->high);
	dim->is_range = true;
}

static void
space_visit(const char *key, JsonbValue *v, void *arg)
{
	SpaceParseState *st = arg;
	SearchSpace *space = st->space;
	const AlgoSpec *spec = space->spec;
	SearchDim  *dim = &space->dims[space->ndims];

	memset(dim, 0, sizeof(*dim));
	if (strcmp(key, "seed") == 0 || strcmp(key, "cv") == 0 || strcmp(key, "threshold") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("hyperparameter \"%s\" cannot be searched", key),
				 errhint("Set it in hyperparams%s.",
						 strcmp(key, "cv") == 0 ? ", or the folds of the search in search_args" : "")));
	for (int i = 0; i < spec->nparams; i++)
		if (strcmp(spec->params[i].name, key) == 0)
			dim->ps = &spec->params[i];
	if (dim->ps == NULL)
	{
		StringInfoData names;

		initStringInfo(&names);
		for (int i = 0; i < spec->nparams; i++)
			appendStringInfo(&names, "%s%s", i ? ", " : "", spec->params[i].name);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown hyperparameter \"%s\" in search_params for algorithm %s",
						key, spec->name),
				 errhint(spec->nparams > 0 ? "Hyperparameters of %s: %s." :
						 "%s has no hyperparameters to search%s.",
						 spec->name, names.data)));
	}
	if (v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data))
	{
		dim->nvalues = array_elements(key, v, &dim->values);
		if (dim->nvalues == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("search_params \"%s\" lists no values", key)));
		for (int i = 0; i < dim->nvalues; i++)
			check_value(spec, key, &dim->values[i]);
	}
	else if (v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data))
	{
		if (!st->ranges_allowed)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("search_params \"%s\" is a range, which a grid search cannot enumerate", key),
					 errhint("List the values to try, or use search => 'random'.")));
		parse_range(spec, key, v, dim);
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("search_params \"%s\" must be a list of values or a {\"low\", \"high\"} range, not %s",
						key, JsonbValueTypeName(v))));
	space->ndims++;
}

static SearchSpace *
parse_space(const AlgoSpec *spec, Jsonb *params, bool ranges_allowed)
{
	SearchSpace *space = palloc0(sizeof(SearchSpace));
	SpaceParseState st = {space, ranges_allowed};

	space->spec = spec;
	space->dims = palloc(sizeof(SearchDim) * Max(spec->nparams, 1));
	if (params && !JB_ROOT_IS_OBJECT(params))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("search_params must be a JSON object")));
	if (params && JB_ROOT_COUNT(params) > spec->nparams)
		space->dims = repalloc(space->dims, sizeof(SearchDim) * JB_ROOT_COUNT(params));
	JsonbForEachKey(params, "search_params", space_visit, &st);
	return space;
}

/* A number in [0, 1) drawn from the seed for draw and dim. */
static double
draw_unit(int64 seed, int draw, int dim)
{
	return (double) (SplitHash((int64) draw * 64 + dim, seed ^ INT64CONST(0x7A5C3B1D)) >> 11) *
		(1.0 / 9007199254740992.0);
}

/* Pushes one value of dim: the value at index, or a draw from the range. */
static void
push_dim_value(JsonbParseState **st, const SearchDim *dim, int index, double u)
{
	double		d;

	JbKey(st, dim->ps->name);
	if (!dim->is_range)
	{
		pushJsonbValue(st, WJB_VALUE, &dim->values[index]);
		return;
	}
	if (dim->log)
		d = exp(log(dim->low) + u * (log(dim->high) - log(dim->low)));
	else
		d = dim->low + u * (dim->high - dim->low);
	if (dim->ps->type == HP_INT)
	{
		d = dim->log ? round(d) : floor(dim->low + u * (dim->high - dim->low + 1.0));
		JbInt(st, (int64) Min(Max(d, dim->low), dim->high));
	}
	else
		JbFloat(st, Min(Max(d, dim->low), dim->high));
}

/* The hyperparams of grid point g (mixed radix over the dims). */
static Jsonb *
grid_point(const SearchSpace *space, int64 g)
{
	JsonbParseState *st = NULL;

	JbBeginObject(&st);
	for (int d = space->ndims - 1; d >= 0; d--)
	{
		const SearchDim *dim = &space->dims[d];

		push_dim_value(&st, dim, (int) (g % dim->nvalues), 0.0);
		g /= dim->nvalues;
	}
	return JbFinishObject(&st);
}

/* The hyperparams of random draw number draw. */
static Jsonb *
random_point(const SearchSpace *space, int64 seed, int draw)
{
	JsonbParseState *st = NULL;

	JbBeginObject(&st);
	for (int d = 0; d < space->ndims; d++)
	{
		const SearchDim *dim = &space->dims[d];
		double		u = draw_unit(seed, draw, d);

		push_dim_value(&st, dim, dim->is_range ? 0 : (int) (u * dim->nvalues), u);
	}
	return JbFinishObject(&st);
}

static void
args_visit(const char *key, JsonbValue *v, void *arg)
{
	ArgsParseState *st = arg;
	SearchArgs *a = st->args;
	double		d;

	if (strcmp(key, "n_iter") == 0)
	{
		if (!JsonbValueToDouble(v, &d) || d != floor(d) || d < 1 || d > SEARCH_MAX_GRID)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("search_args \"n_iter\" must be an integer from 1 to %d",
							SEARCH_MAX_GRID)));
		a->n_iter = (int) d;
	}
	else if (strcmp(key, "cv") == 0)
	{
		if (!JsonbValueToDouble(v, &d) || d != floor(d) || d < 2 || d > 100)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("search_args \"cv\" must be an integer from 2 to 100")));
		a->cv = (int) d;
	}
	else if (strcmp(key, "max_seconds") == 0)
	{
		if (v->type == jbvNull && !st->autopilot)
			a->max_seconds = 0;
		else if (!JsonbValueToDouble(v, &d) || !(d > 0) || d > SEARCH_MAX_SECONDS)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_seconds must be above 0 and at most %d seconds",
							SEARCH_MAX_SECONDS)));
		else
			a->max_seconds = d;
	}
	else if (strcmp(key, "metric") == 0)
	{
		if (v->type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("search_args \"metric\" must be a metric's name")));
		a->metric = JsonbValueToCString(v);
	}
	else if (strcmp(key, "algorithms") == 0 && st->autopilot)
	{
		JsonbValue *names;
		int			n;

		if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("search_args \"algorithms\" must be a list of algorithm names")));
		n = array_elements(key, v, &names);
		if (n == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("search_args \"algorithms\" lists no algorithm")));
		for (int i = 0; i < n; i++)
		{
			if (names[i].type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("search_args \"algorithms\" must be a list of algorithm names")));
			a->algorithms = lappend(a->algorithms,
									(void *) AlgoLookup(JsonbValueToCString(&names[i])));
		}
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown search_args key \"%s\"", key),
				 errhint("search_args takes %s.", st->autopilot ?
						 "n_iter, cv, max_seconds, metric and algorithms" :
						 "n_iter, cv, max_seconds and metric")));
}

/*
 * SearchParseArgs validates search_args: {"n_iter", "cv", "max_seconds",
 * "metric"}, and for the autopilot "algorithms".  Zeroes mean defaults.
 */
void
SearchParseArgs(Jsonb *args, bool autopilot, SearchArgs *out)
{
	ArgsParseState st = {out, autopilot};

	memset(out, 0, sizeof(*out));
	JsonbForEachKey(args, "search_args", args_visit, &st);
}

/* Checks that metric is one of the task's, and returns it. */
static const char *
settle_metric(const SearchArgs *args, const FitInput *in)
{
	Metrics		probe;
	double		dummy;

	if (args->metric == NULL)
		return MetricKeyName(in->task);
	memset(&probe, 0, sizeof(probe));
	probe.task = in->task;
	if (!MetricsGet(&probe, args->metric, &dummy))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown metric \"%s\" in search_args for task %s", args->metric,
						MLTaskName(in->task)),
				 errhint("Search on a metric the task reports, such as %s.",
						 MetricKeyName(in->task))));
	if (strcmp(args->metric, "roc_auc") == 0 && in->t->nclasses > 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("search metric \"roc_auc\" is defined for binary classification only")));
	return args->metric;
}

/*
 * TrialBetter says whether trial a's mean is better than b's on metric; an
 * undefined mean is worse than any other, and equal means keep b.
 */
bool
TrialBetter(const char *metric, const Trial *a, const Trial *b)
{
	if (b == NULL)
		return true;
	if (isnan(a->cv.mean))
		return false;
	if (isnan(b->cv.mean))
		return true;
	return MetricHigherIsBetter(metric) ? a->cv.mean > b->cv.mean : a->cv.mean < b->cv.mean;
}

/* The run's state while its trials run. */
typedef struct RunState
{
	const FitInput *in;
	SearchOutcome *out;
	TimestampTz deadline;		/* 0: none */
	bool		want_oof;
	int			failed;
} RunState;

/* Whether the budget is spent; never before a trial has finished. */
static bool
budget_spent(const RunState *rs)
{
	return rs->out->trials != NIL && rs->deadline != 0 &&
		GetCurrentTimestamp() >= rs->deadline;
}

/*
 * Runs one trial of candidate cand with hyperparams hp_json in a
 * subtransaction.  Returns false when the time budget stopped it; a
 * failed trial is a WARNING and counts as run.
 */
static bool
run_trial(RunState *rs, SearchCandidate *cand, Jsonb *hp_json)
{
	SearchOutcome *out = rs->out;
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	Trial	   *trial = palloc0(sizeof(Trial));
	TimestampTz start = GetCurrentTimestamp();
	bool		finished = false;
	bool		first = out->trials == NIL;
	MemoryContext trial_cxt;

	trial->number = list_length(out->trials) + rs->failed + 1;
	trial->spec = cand->spec;
	trial->hp = HyperparamsParse(cand->spec, hp_json);

	/*
	 * The trial's cross-validation allocates in a context of its own, kept
	 * for a finished trial (its scores, fold metrics and out-of-fold
	 * outputs) and dropped, with whatever a failure left in it, otherwise.
	 */
	trial_cxt = AllocSetContextCreate(cxt, "pgmaker trial", ALLOCSET_SMALL_SIZES);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(trial_cxt);
	PG_TRY();
	{
		/*
		 * The trials' notices (a fit that stopped at max_iter, say) would
		 * repeat for every fold of every trial; the final fit still says
		 * them.  The setting is restored after the trial (by the rollback
		 * when it fails).
		 */
		int			nest = NewGUCNestLevel();

		if (client_min_messages < WARNING)
			(void) set_config_option("client_min_messages", "warning", PGC_USERSET,
									 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
		/* the first trial always finishes, so that the run has a model */
		finished = TrainCrossValidate(rs->in, cand->spec, trial->hp, out->folds, out->metric,
									  first ? 0 : rs->deadline, rs->want_oof, &trial->cv);
		AtEOXact_GUC(true, nest);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		/*
		 * A cancel, a shutdown, a shortage of resources or an internal error
		 * ends the run.
		 */
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_OPERATOR_INTERVENTION ||
			ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_INSUFFICIENT_RESOURCES ||
			ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_PROGRAM_LIMIT_EXCEEDED ||
			ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_INTERNAL_ERROR)
			ReThrowError(edata);
		MemoryContextDelete(trial_cxt);
		rs->failed++;
		ereport(WARNING,
				(errmsg("trial %d (%s) failed: %s", trial->number, cand->spec->name,
						edata->message),
				 errdetail("Hyperparameters: %s.",
						   JsonbToCString(NULL, &HyperparamsToJsonb(trial->hp)->root, 0))));
		FreeErrorData(edata);
		return true;
	}
	PG_END_TRY();

	if (!finished)
	{
		MemoryContextDelete(trial_cxt);
		return false;
	}
	trial->seconds = SecondsSince(start);
	out->trials = lappend(out->trials, trial);
	cand->ntrials++;
	if (TrialBetter(out->metric, trial, cand->best))
	{
		if (cand->best && cand->best->cv.oof)
		{
			pfree(cand->best->cv.oof);
			cand->best->cv.oof = NULL;
		}
		cand->best = trial;
	}
	else if (trial->cv.oof)
	{
		pfree(trial->cv.oof);
		trial->cv.oof = NULL;
	}
	if (out->chosen == NULL || TrialBetter(out->metric, trial, out->chosen->best))
		out->chosen = cand;
	return true;
}

/* Fills the settings every run shares and starts its clock. */
static void
begin_run(RunState *rs, const FitInput *in, const Hyperparams *common, const SearchArgs *args,
		  int default_cv, SearchOutcome *out)
{
	memset(rs, 0, sizeof(*rs));
	rs->in = in;
	rs->out = out;
	out->metric = settle_metric(args, in);
	out->folds = args->cv > 0 ? args->cv : common->cv > 0 ? common->cv : default_cv;
	out->max_seconds = args->max_seconds;
	TrainCheckFolds(in, out->folds);
	if (out->max_seconds > 0)
		rs->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												   (int64) (out->max_seconds * 1000.0));
	rs->want_oof = common->threshold_metric != NULL;
}

static void
end_run(RunState *rs, int run)
{
	SearchOutcome *out = rs->out;

	if (out->chosen == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("every trial of the %s failed", out->kind),
				 errhint("The warnings above say why.")));
	if (out->stopped_by_time)
		ereport(WARNING,
				(errmsg("%s stopped by max_seconds %g after %d of %d trials", out->kind,
						out->max_seconds, run, out->planned),
				 errhint("The best finished trial wins; raise max_seconds to run them all.")));
	out->failed = rs->failed;
}

/*
 * SearchRun runs a grid or random search of one algorithm: search_params
 * lists values ({"max_depth": [3, 6]}) or, for random search, ranges
 * ({"eta": {"low": 0.01, "high": 0.3, "log": true}}); the keys of hp_json
 * that are not searched apply to every trial.
 */
void
SearchRun(const FitInput *in, const AlgoSpec *spec, Jsonb *hp_json, const char *strategy,
		  Jsonb *params, const SearchArgs *args, SearchOutcome *out)
{
	bool		grid = strcmp(strategy, "grid") == 0;
	Hyperparams *common = HyperparamsParse(spec, hp_json);
	SearchSpace *space;
	SearchCandidate *cand;
	RunState	rs;
	int			run = 0;

	memset(out, 0, sizeof(*out));
	out->kind = "search";
	out->strategy = grid ? "grid" : "random";
	if (in->task != ML_TASK_REGRESSION && in->task != ML_TASK_CLASSIFICATION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("search applies to regression and classification, not %s",
						MLTaskName(in->task))));
	space = parse_space(spec, params, !grid);
	if (space->ndims == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("search_params names no hyperparameter to search"),
				 errhint("Give lists of values, such as {\"alpha\": [0.1, 1, 10]}.")));
	if (grid)
	{
		double		size = 1.0;

		if (args->n_iter > 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("search_args \"n_iter\" applies to random search"),
					 errhint("A grid search runs every combination of the listed values.")));
		for (int d = 0; d < space->ndims; d++)
			size *= space->dims[d].nvalues;
		if (size > SEARCH_MAX_GRID)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("the grid has %.0f combinations, more than the %d a search runs",
							size, SEARCH_MAX_GRID),
					 errhint("List fewer values, or use search => 'random' with n_iter.")));
		out->planned = (int) size;
	}
	else
		out->planned = args->n_iter > 0 ? args->n_iter : SEARCH_DEFAULT_N_ITER;

	begin_run(&rs, in, common, args, SEARCH_DEFAULT_CV, out);
	cand = palloc0(sizeof(SearchCandidate));
	cand->spec = spec;
	out->ncandidates = 1;
	out->candidates = cand;
	for (int i = 0; i < out->planned; i++)
	{
		Jsonb	   *point = grid ? grid_point(space, i) : random_point(space, common->seed, i);

		CHECK_FOR_INTERRUPTS();
		if (budget_spent(&rs) ||
			!run_trial(&rs, cand, JbConcat(hp_json, point)))
		{
			out->stopped_by_time = true;
			break;
		}
		run++;
	}
	end_run(&rs, run);
}

/* A metric of averaged out-of-fold outputs; NaN counts as the worst. */
static double
pooled_score(const FitInput *in, const char *metric, const double *y, const double *outputs,
			 int64 n)
{
	Metrics		m;
	double		v;

	MetricsCompute(&m, in->task, y, outputs, n, in->t->nclasses, true, NAN, false);
	if (!MetricsGet(&m, metric, &v))
		return MetricHigherIsBetter(metric) ? -INFINITY : INFINITY;
	return v;
}

/*
 * add_ensemble offers the autopilot one more candidate: a weighted average
 * of the candidates' best models, chosen by greedy forward selection with
 * replacement (Caruana et al., 2004) on their out-of-fold outputs.  It
 * starts from the best single candidate and, ENSEMBLE_ROUNDS times, adds
 * the candidate whose addition scores best; the weights are the counts.
 * Scores-only classifiers cannot be averaged and are left out.  Selection
 * looks at a sample of at most ENSEMBLE_SELECT_ROWS training rows.  The
 * ensemble's fold scores come from the combined out-of-fold outputs; the
 * weights were chosen on the same outputs, which favours the ensemble a
 * little, as it favours any candidate picked as the best of many.  When
 * the selection keeps a single candidate there is no ensemble.
 */
static void
add_ensemble(const FitInput *in, Jsonb *hp_json, SearchOutcome *out)
{
	int			nout = CvOutputs(in);
	int64		n = in->n;
	int64		step = Max(1, (n + ENSEMBLE_SELECT_ROWS - 1) / ENSEMBLE_SELECT_ROWS);
	int64		ns = (n + step - 1) / step;
	SearchCandidate **pool = palloc(sizeof(SearchCandidate *) * out->ncandidates);
	int			npool = 0;
	double	  **sample;
	double	   *ys = palloc(sizeof(double) * ns);
	double	   *sum = palloc0(sizeof(double) * ns * nout);
	double	   *trial_avg = palloc(sizeof(double) * ns * nout);
	int		   *count;
	int			members = 0;
	bool		higher = MetricHigherIsBetter(out->metric);
	TimestampTz start = GetCurrentTimestamp();
	EnsemblePlan *plan;
	Trial	   *trial;
	SearchCandidate *cand;
	double	   *combined;
	int			k;

	for (int c = 0; c < out->ncandidates; c++)
	{
		SearchCandidate *sc = &out->candidates[c];

		if (sc->best && sc->best->cv.oof && !sc->spec->scores_only)
			pool[npool++] = sc;
	}
	if (npool < 2)
		return;

	sample = palloc(sizeof(double *) * npool);
	for (int c = 0; c < npool; c++)
	{
		sample[c] = palloc(sizeof(double) * ns * nout);
		for (int64 i = 0; i < ns; i++)
			memcpy(sample[c] + i * nout, pool[c]->best->cv.oof + i * step * nout,
				   sizeof(double) * nout);
	}
	for (int64 i = 0; i < ns; i++)
		ys[i] = in->t->y[in->rows[i * step]];

	count = palloc0(sizeof(int) * npool);
	for (int round = 1; round <= ENSEMBLE_ROUNDS; round++)
	{
		int			pick = -1;
		double		pick_score = 0.0;

		CHECK_FOR_INTERRUPTS();
		for (int c = 0; c < npool; c++)
		{
			double		v;

			for (int64 j = 0; j < ns * nout; j++)
				trial_avg[j] = (sum[j] + sample[c][j]) / round;
			v = pooled_score(in, out->metric, ys, trial_avg, ns);
			if (pick < 0 || (higher ? v > pick_score : v < pick_score))
			{
				pick = c;
				pick_score = v;
			}
		}
		count[pick]++;
		for (int64 j = 0; j < ns * nout; j++)
			sum[j] += sample[pick][j];
	}
	for (int c = 0; c < npool; c++)
		members += count[c] > 0;
	if (members < 2)
		return;

	/* the plan, and the combined out-of-fold outputs of every training row */
	plan = palloc0(sizeof(EnsemblePlan));
	plan->specs = palloc(sizeof(AlgoSpec *) * members);
	plan->hps = palloc(sizeof(Hyperparams *) * members);
	plan->weights = palloc(sizeof(double) * members);
	combined = palloc_extended(sizeof(double) * Max(n, 1) * nout, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	for (int c = 0; c < npool; c++)
	{
		double		w = (double) count[c] / ENSEMBLE_ROUNDS;

		if (count[c] == 0)
			continue;
		plan->specs[plan->n] = pool[c]->spec;
		plan->hps[plan->n] = pool[c]->best->hp;
		plan->weights[plan->n] = w;
		plan->n++;
		for (int64 j = 0; j < n * nout; j++)
			combined[j] += w * pool[c]->best->cv.oof[j];
	}

	trial = palloc0(sizeof(Trial));
	trial->number = list_length(out->trials) + out->failed + 1;
	trial->spec = &ensemble_algo;
	trial->hp = HyperparamsParse(&autopilot_spec, hp_json);
	trial->hp->spec = &ensemble_algo;
	trial->hp->ensemble = plan;
	k = out->folds;
	TrainFoldScores(in, k, out->metric, combined, &trial->cv);
	trial->seconds = SecondsSince(start);
	out->trials = lappend(out->trials, trial);
	cand = &out->candidates[out->ncandidates++];
	cand->spec = &ensemble_algo;
	cand->best = trial;
	cand->ntrials = 1;
	if (TrialBetter(out->metric, trial, out->chosen->best))
		out->chosen = cand;
}

/* What the autopilot reports of the data it was given. */
static Jsonb *
profile_data(const FitInput *in)
{
	JsonbParseState *st = NULL;
	int			categorical = 0;
	int			with_nulls = 0;

	for (int c = 0; c < in->ds->ncols; c++)
	{
		const DataColumn *col = &in->ds->cols[c];
		bool		null = false;

		categorical += col->categorical;
		for (int64 i = 0; i < in->n && !null; i++)
			null = col->categorical ? col->codes[in->rows[i]] < 0 :
				isnan(col->values[in->rows[i]]);
		with_nulls += null;
	}
	JbBeginObject(&st);
	JbKey(&st, "task");
	JbString(&st, MLTaskName(in->task));
	JbKey(&st, "training_rows");
	JbInt(&st, in->n);
	JbKey(&st, "columns");
	JbInt(&st, in->ds->ncols);
	JbKey(&st, "categorical_columns");
	JbInt(&st, categorical);
	JbKey(&st, "columns_with_nulls");
	JbInt(&st, with_nulls);
	if (in->task == ML_TASK_CLASSIFICATION)
	{
		int64	   *count = palloc0(sizeof(int64) * in->t->nclasses);
		int64		smallest = in->n;

		for (int64 i = 0; i < in->n; i++)
			count[(int) in->t->y[in->rows[i]]]++;
		for (int c = 0; c < in->t->nclasses; c++)
			if (count[c] > 0)
				smallest = Min(smallest, count[c]);
		JbKey(&st, "classes");
		JbInt(&st, in->t->nclasses);
		JbKey(&st, "smallest_class_share");
		JbFloat(&st, (double) smallest / (double) Max(in->n, 1));
	}
	return JbFinishObject(&st);
}

/*
 * AutopilotRun chooses the candidate algorithms of the task (or those
 * search_args names), runs each one's defaults and then random draws from
 * its space, round-robin, with cross-validation under the time budget,
 * and leaves the best trial of each candidate and the overall winner in
 * out.  Large training sets get 3 folds instead of 5 and fewer draws.
 */
void
AutopilotRun(const FitInput *in, Jsonb *hp_json, const SearchArgs *args, SearchOutcome *out)
{
	const AutoCandidate *table = in->task == ML_TASK_REGRESSION ? auto_regression :
		auto_classification;
	int			ntable = in->task == ML_TASK_REGRESSION ? lengthof(auto_regression) :
		lengthof(auto_classification);
	bool		large = in->n > AUTOPILOT_LARGE_ROWS;
	Hyperparams *common = HyperparamsParse(&autopilot_spec, hp_json);
	int			n_iter = args->n_iter > 0 ? args->n_iter : large ? 2 : AUTOPILOT_DEFAULT_N_ITER;
	SearchSpace **spaces;
	RunState	rs;
	int			run = 0;

	memset(out, 0, sizeof(*out));
	out->kind = "autopilot";
	out->strategy = "auto";
	if (in->task != ML_TASK_REGRESSION && in->task != ML_TASK_CLASSIFICATION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the autopilot does regression and classification, not %s",
						MLTaskName(in->task))));
	if (!isnan(common->threshold))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the autopilot cannot take a fixed decision threshold"),
				 errhint("Its candidates score on different scales; tune it with \"threshold\": \"f1\".")));

	/* the candidates */
	if (args->algorithms != NIL)
	{
		ListCell   *lc;

		/* one more for the ensemble */
		out->candidates = palloc0(sizeof(SearchCandidate) * (list_length(args->algorithms) + 1));
		foreach(lc, args->algorithms)
		{
			const AlgoSpec *spec = lfirst(lc);

			if (!(spec->tasks & ML_TASK_BIT(in->task)))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("algorithm %s cannot do %s", spec->name, MLTaskName(in->task)),
						 errhint("Algorithms for %s: %s.", MLTaskName(in->task),
								 AlgoNamesForTask(in->task))));
			for (int i = 0; i < out->ncandidates; i++)
				if (out->candidates[i].spec == spec)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("search_args \"algorithms\" names %s twice", spec->name)));
			out->candidates[out->ncandidates++].spec = spec;
		}
	}
	else
	{
		out->candidates = palloc0(sizeof(SearchCandidate) * (ntable + 1));
		for (int i = 0; i < ntable; i++)
			out->candidates[out->ncandidates++].spec = AlgoLookup(table[i].algorithm);
	}
	spaces = palloc0(sizeof(SearchSpace *) * out->ncandidates);
	for (int i = 0; i < out->ncandidates; i++)
		for (int j = 0; j < ntable; j++)
			if (table[j].space && strcmp(table[j].algorithm, out->candidates[i].spec->name) == 0)
				spaces[i] = parse_space(out->candidates[i].spec,
										JbParse(table[j].space), true);
	out->planned = 0;
	for (int i = 0; i < out->ncandidates; i++)
		out->planned += 1 + (spaces[i] ? n_iter : 0);
	out->data_profile = profile_data(in);

	begin_run(&rs, in, common, args, large ? 3 : SEARCH_DEFAULT_CV, out);
	rs.want_oof = true;			/* for the ensemble */

	/* every candidate's defaults, then the draws, round-robin */
	for (int round = 0; round <= n_iter && !out->stopped_by_time; round++)
	{
		for (int i = 0; i < out->ncandidates; i++)
		{
			Jsonb	   *point;

			if (round > 0 && spaces[i] == NULL)
				continue;
			point = round == 0 ? hp_json :
				JbConcat(hp_json, random_point(spaces[i], common->seed + i, round - 1));
			CHECK_FOR_INTERRUPTS();
			if (budget_spent(&rs) ||
				!run_trial(&rs, &out->candidates[i], point))
			{
				out->stopped_by_time = true;
				break;
			}
			run++;
		}
	}
	end_run(&rs, run);
	add_ensemble(in, hp_json, out);
}
