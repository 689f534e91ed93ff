/*-------------------------------------------------------------------------
 * src/rl/bandit.c
 *		Contextual bandits in SQL: ml.create_bandit, ml.choose, ml.reward,
 *		ml.bandit_evaluate and ml.drop_bandit.
 *
 * A bandit, its arms' states and its decisions live in ml.bandits,
 * ml.bandit_arms and ml.bandit_decisions, owned by the extension's owner
 * and written only here.  A call checks that the caller is a member of
 * the bandit's owner role, then runs its statements as the tables' owner
 * in a security-restricted context with search_path pg_catalog (as the
 * catalog module does).  ml.bandit_evaluate reads its log with the
 * caller's own rights.
 *
 * Concurrency: ml.choose only reads the arms and inserts a decision.
 * ml.reward marks the decision rewarded with "WHERE reward IS NULL" (of
 * two concurrent rewards of one decision, the second finds no row and
 * fails) and adds the reward to the arm's state in a single UPDATE whose
 * SET expression READ COMMITTED re-evaluates on the newest row version
 * after waiting for a concurrent reward, so no reward is lost.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/namespace.h"
#include "common/pg_prng.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "pgmaker.h"
#include "bgw/bgw.h"
#include "catalog/catalog.h"
#include "data/data.h"
#include "rl/rl.h"

PG_FUNCTION_INFO_V1(ml_create_bandit);
PG_FUNCTION_INFO_V1(ml_drop_bandit);
PG_FUNCTION_INFO_V1(ml_choose);
PG_FUNCTION_INFO_V1(ml_reward);
PG_FUNCTION_INFO_V1(ml_bandit_update);
PG_FUNCTION_INFO_V1(ml_bandit_evaluate);

/* A bandit as read from ml.bandits (and, for a choice, its arms). */
typedef struct Bandit
{
	int64		id;
	char	   *name;
	Oid			owner;
	BanditParams bp;
	int			nfeatures;		/* names of a jsonb context's keys */
	char	  **features;
	int			narms;
	char	  **arms;
	double	  **states;
	int64		rewards;		/* rewarded decisions, all arms */
} Bandit;

/* ---------- running as the tables' owner ---------- */

typedef struct OwnerCall
{
	Oid			save_user;		/* the caller */
	RoleSwitch	rs;
} OwnerCall;

/* SPI must be connected: statements from here on run as the owner. */
static void
owner_begin(OwnerCall *oc)
{
	int			save_sec;

	GetUserIdAndSecContext(&oc->save_user, &save_sec);
	BgwAsRole(CatalogOwner(), BGW_CATALOG_PATH, &oc->rs);
}

static void
owner_end(OwnerCall *oc)
{
	BgwRestoreRole(&oc->rs);
}

/*
 * A statement kept prepared for the backend's life (the hot paths run a
 * handful per call).
 */
static SPIPlanPtr
kept_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, types);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed (%s): %s", SPI_result_code_string(SPI_result), sql);
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*slot = plan;
	}
	return *slot;
}

static void
run_plan(SPIPlanPtr plan, Datum *values, const char *nulls, bool read_only, int expected)
{
	int			rc = SPI_execute_plan(plan, values, nulls, read_only, 0);

	if (rc != expected)
		elog(ERROR, "bandit statement failed: %s", SPI_result_code_string(rc));
}

/* ---------- options ---------- */

typedef struct OptionSeen
{
	BanditParams bp;
	bool		has_alpha,
				has_lambda,
				has_v,
				has_epsilon,
				has_decay,
				has_prior,
				has_intercept,
				has_seed;
	int			dim;			/* -1 when not given */
	int			nfeatures;		/* -1 when not given */
	char	  **features;
} OptionSeen;

static double
option_number(const char *key, JsonbValue *v, double min, bool min_open, double max)
{
	double		d;

	if (!JsonbValueToDouble(v, &d) || !isfinite(d) ||
		(min_open ? d <= min : d < min) || d > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bandit option \"%s\" must be a number %s %g%s",
						key, min_open ? ">" : ">=", min,
						isinf(max) ? "" : psprintf(" and <= %g", max))));
	return d;
}

static void
option_visit(const char *key, JsonbValue *v, void *arg)
{
	OptionSeen *os = arg;
	BanditParams *bp = &os->bp;

	if (strcmp(key, "alpha") == 0)
		bp->alpha = option_number(key, v, 0.0, false, INFINITY), os->has_alpha = true;
	else if (strcmp(key, "lambda") == 0)
		bp->lambda = option_number(key, v, 0.0, true, INFINITY), os->has_lambda = true;
	else if (strcmp(key, "v") == 0)
		bp->v = option_number(key, v, 0.0, false, INFINITY), os->has_v = true;
	else if (strcmp(key, "epsilon") == 0)
		bp->epsilon = option_number(key, v, 0.0, false, 1.0), os->has_epsilon = true;
	else if (strcmp(key, "decay") == 0)
		bp->decay = option_number(key, v, 0.0, false, INFINITY), os->has_decay = true;
	else if (strcmp(key, "prior_alpha") == 0)
		bp->prior_alpha = option_number(key, v, 0.0, true, INFINITY), os->has_prior = true;
	else if (strcmp(key, "prior_beta") == 0)
		bp->prior_beta = option_number(key, v, 0.0, true, INFINITY), os->has_prior = true;
	else if (strcmp(key, "seed") == 0)
	{
		double		d = option_number(key, v, -9007199254740992.0, false, 9007199254740992.0);

		if (d != floor(d))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("bandit option \"seed\" must be an integer")));
		bp->seed = (uint64) (int64) d;
		os->has_seed = true;
	}
	else if (strcmp(key, "dim") == 0)
	{
		double		d = option_number(key, v, 0.0, false, BANDIT_MAX_DIM);

		if (d != floor(d))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("bandit option \"dim\" must be an integer")));
		os->dim = (int) d;
	}
	else if (strcmp(key, "intercept") == 0)
	{
		if (v->type != jbvBool)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("bandit option \"intercept\" must be true or false")));
		bp->intercept = v->val.boolean;
		os->has_intercept = true;
	}
	else if (strcmp(key, "features") == 0)
	{
		JsonbIterator *it;
		JsonbValue	e;
		JsonbIteratorToken tok;
		int			n = 0;

		if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("bandit option \"features\" must be an array of names")));
		os->features = palloc(sizeof(char *) * (BANDIT_MAX_DIM + 1));
		it = JsonbIteratorInit(v->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
		{
			if (tok != WJB_ELEM)
				continue;
			if (e.type != jbvString || e.val.string.len == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("bandit option \"features\" must be an array of non-empty names")));
			if (n == BANDIT_MAX_DIM)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("a bandit's context has at most %d features", BANDIT_MAX_DIM)));
			os->features[n] = pnstrdup(e.val.string.val, e.val.string.len);
			for (int i = 0; i < n; i++)
				if (strcmp(os->features[i], os->features[n]) == 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("feature \"%s\" appears twice in bandit option \"features\"",
									os->features[n])));
			n++;
		}
		if (n == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("bandit option \"features\" must name at least one feature")));
		os->nfeatures = n;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown bandit option \"%s\"", key),
				 errhint("Options are alpha (linucb), v (thompson), epsilon and decay (epsilon_greedy), prior_alpha and prior_beta (thompson without a context), lambda, dim, features, intercept and seed.")));
}

static void
option_not_for(const char *key, bool given, const char *what)
{
	if (given)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bandit option \"%s\" does not apply to %s", key, what)));
}

/* The defaults, before options or a stored bandit's options apply. */
static void
params_defaults(BanditParams *bp, BanditAlgorithm algorithm)
{
	memset(bp, 0, sizeof(*bp));
	bp->algorithm = algorithm;
	bp->intercept = true;
	bp->alpha = 1.0;
	bp->lambda = 1.0;
	bp->v = 1.0;
	bp->epsilon = 0.1;
	bp->decay = 0.0;
	bp->prior_alpha = 1.0;
	bp->prior_beta = 1.0;
}

/* Sets the derived fields once algorithm, dim and intercept are known. */
static void
params_finish(BanditParams *bp)
{
	bp->beta = (bp->algorithm == BANDIT_THOMPSON && bp->dim == 0);
	bp->p = bp->beta ? 0 : bp->dim + (bp->intercept ? 1 : 0);
}

/*
 * The options a bandit is created with: checked against its algorithm and
 * completed with the defaults; the result is what ml.bandits stores.
 */
static void
parse_create_options(Jsonb *options, BanditAlgorithm algorithm, OptionSeen *os)
{
	BanditParams *bp = &os->bp;
	const char *alg = BanditAlgorithmName(algorithm);

	memset(os, 0, sizeof(*os));
	params_defaults(bp, algorithm);
	os->dim = -1;
	os->nfeatures = -1;
	JsonbForEachKey(options, "bandit options", option_visit, os);

	if (os->dim >= 0 && os->nfeatures >= 0 && os->dim != os->nfeatures)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bandit option \"dim\" is %d but \"features\" names %d", os->dim, os->nfeatures)));
	bp->dim = os->nfeatures >= 0 ? os->nfeatures : Max(os->dim, 0);
	params_finish(bp);

	option_not_for("alpha", os->has_alpha && algorithm != BANDIT_LINUCB, psprintf("algorithm %s", alg));
	option_not_for("v", os->has_v && algorithm != BANDIT_THOMPSON, psprintf("algorithm %s", alg));
	option_not_for("epsilon", os->has_epsilon && algorithm != BANDIT_EPSILON_GREEDY, psprintf("algorithm %s", alg));
	option_not_for("decay", os->has_decay && algorithm != BANDIT_EPSILON_GREEDY, psprintf("algorithm %s", alg));
	if (bp->beta)
	{
		option_not_for("v", os->has_v, "Thompson sampling without a context (Beta-Bernoulli)");
		option_not_for("lambda", os->has_lambda, "Thompson sampling without a context (Beta-Bernoulli)");
		option_not_for("intercept", os->has_intercept, "Thompson sampling without a context (Beta-Bernoulli)");
	}
	else
		option_not_for("prior_alpha\" or \"prior_beta", os->has_prior,
					   "a bandit with a context (only to Thompson sampling without one)");
	if (!bp->beta && bp->p == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a %s bandit without a context needs its intercept", alg),
				 errhint("Give \"dim\" or \"features\", or leave \"intercept\" true.")));
	if (!os->has_seed)
		bp->seed = pg_prng_uint64(&pg_global_prng_state) >> 11;	/* exact in a jsonb number */
}

/* The options column of ml.bandits: every setting that applies. */
static Jsonb *
options_jsonb(const BanditParams *bp)
{
	JsonbParseState *st = NULL;

	JbBeginObject(&st);
	switch (bp->algorithm)
	{
		case BANDIT_LINUCB:
			JbKey(&st, "alpha");
			JbFloat(&st, bp->alpha);
			break;
		case BANDIT_THOMPSON:
			if (!bp->beta)
			{
				JbKey(&st, "v");
				JbFloat(&st, bp->v);
			}
			break;
		case BANDIT_EPSILON_GREEDY:
			JbKey(&st, "epsilon");
			JbFloat(&st, bp->epsilon);
			JbKey(&st, "decay");
			JbFloat(&st, bp->decay);
			break;
	}
	if (bp->beta)
	{
		JbKey(&st, "prior_alpha");
		JbFloat(&st, bp->prior_alpha);
		JbKey(&st, "prior_beta");
		JbFloat(&st, bp->prior_beta);
	}
	else
	{
		JbKey(&st, "lambda");
		JbFloat(&st, bp->lambda);
		JbKey(&st, "intercept");
		JbBool(&st, bp->intercept);
	}
	JbKey(&st, "seed");
	JbInt(&st, (int64) bp->seed);
	return JbFinishObject(&st);
}

/* Reads a stored bandit's options (written by options_jsonb). */
static void
stored_visit(const char *key, JsonbValue *v, void *arg)
{
	BanditParams *bp = arg;
	double		d = 0.0;

	if (v->type == jbvBool)
	{
		if (strcmp(key, "intercept") == 0)
			bp->intercept = v->val.boolean;
		return;
	}
	if (!JsonbValueToDouble(v, &d))
		return;
	if (strcmp(key, "alpha") == 0)
		bp->alpha = d;
	else if (strcmp(key, "v") == 0)
		bp->v = d;
	else if (strcmp(key, "epsilon") == 0)
		bp->epsilon = d;
	else if (strcmp(key, "decay") == 0)
		bp->decay = d;
	else if (strcmp(key, "lambda") == 0)
		bp->lambda = d;
	else if (strcmp(key, "prior_alpha") == 0)
		bp->prior_alpha = d;
	else if (strcmp(key, "prior_beta") == 0)
		bp->prior_beta = d;
	else if (strcmp(key, "seed") == 0)
		bp->seed = (uint64) (int64) d;
}

/* ---------- reading a bandit ---------- */

static void
unknown_bandit(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("bandit \"%s\" does not exist", name)));
}

/* Its definition from the current SPI row (columns 1-6 of the queries below). */
static void
bandit_from_row(Bandit *b, HeapTuple row, TupleDesc desc)
{
	bool		isnull;
	char	   *alg;
	BanditAlgorithm algorithm;
	Datum		d;

	b->id = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
	b->owner = DatumGetObjectId(SPI_getbinval(row, desc, 2, &isnull));
	alg = TextDatumGetCString(SPI_getbinval(row, desc, 3, &isnull));
	if (!BanditAlgorithmFromName(alg, &algorithm))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("bandit \"%s\" has an unknown algorithm \"%s\"", b->name, alg)));
	params_defaults(&b->bp, algorithm);
	b->bp.dim = DatumGetInt32(SPI_getbinval(row, desc, 4, &isnull));
	d = SPI_getbinval(row, desc, 5, &isnull);
	b->nfeatures = 0;
	if (!isnull)
	{
		Datum	   *elems;
		bool	   *enulls;

		deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &enulls, &b->nfeatures);
		b->features = palloc(sizeof(char *) * Max(b->nfeatures, 1));
		for (int i = 0; i < b->nfeatures; i++)
			b->features[i] = TextDatumGetCString(elems[i]);
	}
	JsonbForEachKey(DatumGetJsonbP(SPI_getbinval(row, desc, 6, &isnull)), "bandit options",
					stored_visit, &b->bp);
	params_finish(&b->bp);
}

static void
require_member(const Bandit *b, Oid caller)
{
	if (!has_privs_of_role(caller, b->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be a member of role \"%s\" to use bandit \"%s\"",
						GetUserNameFromId(b->owner, false), b->name)));
}

#define BANDIT_COLUMNS "b.id, b.owner, b.algorithm, b.dim, b.features, b.options"

static SPIPlanPtr plan_load_with_arms;
static SPIPlanPtr plan_load;

/*
 * Reads bandit name into b (with its arms and their states when
 * with_arms), as the tables' owner (owner_begin came first), into memory
 * context cxt; checks that the caller oc->save_user may use it.
 */
static void
bandit_load(const OwnerCall *oc, const char *name, bool with_arms, Bandit *b, MemoryContext cxt)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	SPIPlanPtr	plan;
	MemoryContext old;
	TupleDesc	desc;

	values[0] = CStringGetTextDatum(name);
	if (with_arms)
		plan = kept_plan(&plan_load_with_arms,
						 "SELECT " BANDIT_COLUMNS ", a.arm, a.state, a.pulls"
						 "  FROM ml.bandits b JOIN ml.bandit_arms a ON a.bandit_id = b.id"
						 " WHERE b.name = $1 ORDER BY a.arm_index", 1, types);
	else
		plan = kept_plan(&plan_load, "SELECT " BANDIT_COLUMNS " FROM ml.bandits b WHERE b.name = $1",
						 1, types);
	run_plan(plan, values, NULL, true, SPI_OK_SELECT);
	if (SPI_processed == 0)
		unknown_bandit(name);

	old = MemoryContextSwitchTo(cxt);
	desc = SPI_tuptable->tupdesc;
	memset(b, 0, sizeof(*b));
	b->name = pstrdup(name);
	bandit_from_row(b, SPI_tuptable->vals[0], desc);
	if (with_arms)
	{
		int			len = BanditStateLength(&b->bp);

		b->narms = (int) SPI_processed;
		b->arms = palloc(sizeof(char *) * b->narms);
		b->states = palloc(sizeof(double *) * b->narms);
		for (int a = 0; a < b->narms; a++)
		{
			HeapTuple	row = SPI_tuptable->vals[a];
			bool		isnull;
			ArrayType  *st;

			b->arms[a] = TextDatumGetCString(SPI_getbinval(row, desc, 7, &isnull));
			st = DatumGetArrayTypeP(SPI_getbinval(row, desc, 8, &isnull));
			if (ARR_NDIM(st) != 1 || ARR_HASNULL(st) || ArrayGetNItems(1, ARR_DIMS(st)) != len)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("the state of arm \"%s\" of bandit \"%s\" is damaged", b->arms[a], name)));
			b->states[a] = palloc(sizeof(double) * len);
			memcpy(b->states[a], ARR_DATA_PTR(st), sizeof(double) * len);
			if ((Pointer) st != DatumGetPointer(SPI_getbinval(row, desc, 8, &isnull)))
				pfree(st);		/* a detoasted copy */
			b->rewards += DatumGetInt64(SPI_getbinval(row, desc, 9, &isnull));
		}
	}
	MemoryContextSwitchTo(old);
	require_member(b, oc->save_user);
}

/* ---------- contexts ---------- */

static void
context_length_error(const Bandit *b, int got)
{
	if (b->bp.dim == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bandit \"%s\" takes no context", b->name),
				 errhint("Call ml.choose(name) without a context.")));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("bandit \"%s\" takes a context of %d values, not %d", b->name, b->bp.dim, got)));
}

/* A float8[] context: one dimension, no NULLs, finite, of the right length. */
static double *
context_from_array(const Bandit *b, ArrayType *arr)
{
	int			n;
	double	   *ctx;

	if (ARR_ELEMTYPE(arr) != FLOAT8OID)
		elog(ERROR, "context must be float8[]");
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a bandit's context must be a one-dimensional array")));
	n = ARR_NDIM(arr) == 0 ? 0 : ArrayGetNItems(1, ARR_DIMS(arr));
	if (n != b->bp.dim)
		context_length_error(b, n);
	if (ARR_HASNULL(arr))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the context of bandit \"%s\" must not contain NULL", b->name)));
	ctx = palloc(sizeof(double) * Max(n, 1));
	memcpy(ctx, ARR_DATA_PTR(arr), sizeof(double) * n);
	for (int i = 0; i < n; i++)
		if (!isfinite(ctx[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("value %d of the context of bandit \"%s\" is not finite", i + 1, b->name)));
	return ctx;
}

typedef struct JsonContext
{
	const Bandit *b;
	double	   *ctx;
	bool	   *seen;
} JsonContext;

static double
context_number(const Bandit *b, const char *what, JsonbValue *v)
{
	double		d;

	if (!JsonbValueToDouble(v, &d))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("context %s of bandit \"%s\" must be a number, not %s",
						what, b->name, JsonbValueTypeName(v))));
	return d;
}

static void
context_key_visit(const char *key, JsonbValue *v, void *arg)
{
	JsonContext *jc = arg;
	const Bandit *b = jc->b;

	for (int i = 0; i < b->nfeatures; i++)
		if (strcmp(b->features[i], key) == 0)
		{
			jc->ctx[i] = context_number(b, psprintf("key \"%s\"", key), v);
			jc->seen[i] = true;
			return;
		}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("bandit \"%s\" has no context feature \"%s\"", b->name, key),
			 b->nfeatures > 0 ? 0 : errhint("Pass its context as an array of %d numbers.", b->bp.dim)));
}

/* A jsonb context: an object keyed by the bandit's features, or an array. */
static double *
context_from_jsonb(const Bandit *b, Jsonb *j)
{
	JsonContext jc;
	int			n = 0;

	jc.b = b;
	jc.ctx = palloc0(sizeof(double) * Max(b->bp.dim, 1));
	jc.seen = palloc0(sizeof(bool) * Max(b->bp.dim, 1));
	if (JB_ROOT_IS_SCALAR(j))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a bandit's jsonb context must be an object or an array")));
	if (JB_ROOT_IS_ARRAY(j))
	{
		JsonbIterator *it = JsonbIteratorInit(&j->root);
		JsonbValue	v;
		JsonbIteratorToken tok;
		int			count = JB_ROOT_COUNT(j);

		if (count != b->bp.dim)
			context_length_error(b, count);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
			if (tok == WJB_ELEM)
			{
				jc.ctx[n] = context_number(b, psprintf("value %d", n + 1), &v);
				n++;
			}
		return jc.ctx;
	}
	if (b->nfeatures == 0)
	{
		if (b->bp.dim == 0)
			context_length_error(b, JB_ROOT_COUNT(j));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bandit \"%s\" has no feature names; pass its context as an array of %d numbers",
						b->name, b->bp.dim)));
	}
	JsonbForEachKey(j, "context", context_key_visit, &jc);
	for (int i = 0; i < b->bp.dim; i++)
		if (!jc.seen[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the context of bandit \"%s\" lacks feature \"%s\"", b->name, b->features[i])));
	return jc.ctx;
}

static Datum
float8_array(const double *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Float8GetDatum(v[i]);
	return PointerGetDatum(construct_array(d, n, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

static char *
arg_text(FunctionCallInfo fcinfo, int i, const char *what)
{
	if (PG_ARGISNULL(i))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", what)));
	return text_to_cstring(PG_GETARG_TEXT_PP(i));
}

/* ---------- ml.create_bandit and ml.drop_bandit ---------- */

/*
 * ml.create_bandit(name text, arms text[], algorithm text, options jsonb)
 * RETURNS bigint
 */
Datum
ml_create_bandit(PG_FUNCTION_ARGS)
{
	char	   *name = arg_text(fcinfo, 0, "bandit name");
	ArrayType  *arms_arr;
	char	   *alg;
	Jsonb	   *options = PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3);
	BanditAlgorithm algorithm;
	OptionSeen	os;
	Datum	   *elems;
	bool	   *enulls;
	int			narms;
	OwnerCall	oc;
	int64		id;
	bool		isnull;
	double	   *state;
	int			len;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("arms must not be NULL")));
	alg = arg_text(fcinfo, 2, "algorithm");
	if (*name == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bandit name must not be empty")));
	if (!BanditAlgorithmFromName(alg, &algorithm))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown bandit algorithm \"%s\"", alg),
				 errhint("Algorithms are linucb, thompson and epsilon_greedy.")));

	arms_arr = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(arms_arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("arms must be a one-dimensional array")));
	deconstruct_array(arms_arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &narms);
	if (narms < 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a bandit needs at least 2 arms, got %d", narms)));
	if (narms > BANDIT_MAX_ARMS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a bandit has at most %d arms, got %d", BANDIT_MAX_ARMS, narms)));
	for (int a = 0; a < narms; a++)
	{
		if (enulls[a] || VARSIZE_ANY_EXHDR(DatumGetPointer(elems[a])) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("arm %d must not be NULL or empty", a + 1)));
		for (int c = 0; c < a; c++)
			if (DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID, elems[a], elems[c])))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("arm \"%s\" appears twice", TextDatumGetCString(elems[a]))));
	}

	parse_create_options(options, algorithm, &os);
	len = BanditStateLength(&os.bp);
	if ((int64) len * narms > BANDIT_MAX_STATE_VALUES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a bandit of %d arms with a context of %d values is too large", narms, os.bp.dim),
				 errdetail("Its state would hold %lld values; the limit is %d (arms x (p^2 + p), p the context's length plus the intercept).",
						   (long long) len * narms, BANDIT_MAX_STATE_VALUES)));
	state = palloc(sizeof(double) * len);
	BanditStateInit(&os.bp, state);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	owner_begin(&oc);
	{
		Oid			types[6] = {TEXTOID, REGROLEOID, TEXTOID, INT4OID, TEXTARRAYOID, JSONBOID};
		Datum		values[6];
		char		nulls[6] = "      ";

		if (SPI_execute_with_args("SELECT 1 FROM ml.bandits WHERE name = $1", 1, types,
								  &(Datum) {CStringGetTextDatum(name)}, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "bandit lookup failed");
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("bandit \"%s\" already exists", name)));

		values[0] = CStringGetTextDatum(name);
		values[1] = ObjectIdGetDatum(oc.save_user);
		values[2] = CStringGetTextDatum(alg);
		values[3] = Int32GetDatum(os.bp.dim);
		if (os.nfeatures > 0)
		{
			Datum	   *f = palloc(sizeof(Datum) * os.nfeatures);

			for (int i = 0; i < os.nfeatures; i++)
				f[i] = CStringGetTextDatum(os.features[i]);
			values[4] = PointerGetDatum(construct_array(f, os.nfeatures, TEXTOID, -1, false,
														TYPALIGN_INT));
		}
		else
			nulls[4] = 'n';
		values[5] = JsonbPGetDatum(options_jsonb(&os.bp));
		if (SPI_execute_with_args("INSERT INTO ml.bandits (name, owner, algorithm, dim, features, options)"
								  " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
								  6, types, values, nulls, false, 1) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not insert the bandit");
		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	{
		Oid			types[4] = {INT8OID, INT4OID, TEXTOID, FLOAT8ARRAYOID};
		Datum		values[4];
		SPIPlanPtr	plan = SPI_prepare("INSERT INTO ml.bandit_arms (bandit_id, arm_index, arm, state)"
									   " VALUES ($1, $2, $3, $4)", 4, types);

		values[0] = Int64GetDatum(id);
		values[3] = float8_array(state, len);
		for (int a = 0; a < narms; a++)
		{
			values[1] = Int32GetDatum(a);
			values[2] = elems[a];
			run_plan(plan, values, NULL, false, SPI_OK_INSERT);
		}
	}
	owner_end(&oc);
	SPI_finish();
	PG_RETURN_INT64(id);
}

/* ml.drop_bandit(name text) RETURNS void: the bandit, its arms and its decisions. */
Datum
ml_drop_bandit(PG_FUNCTION_ARGS)
{
	char	   *name = arg_text(fcinfo, 0, "bandit name");
	Bandit		b;
	OwnerCall	oc;
	Datum		id;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	owner_begin(&oc);
	bandit_load(&oc, name, false, &b, CurrentMemoryContext);
	id = Int64GetDatum(b.id);
	if (SPI_execute_with_args("DELETE FROM ml.bandit_decisions WHERE bandit_id = $1", 1,
							  (Oid[]) {INT8OID}, &id, NULL, false, 0) != SPI_OK_DELETE ||
		SPI_execute_with_args("DELETE FROM ml.bandits WHERE id = $1", 1,
							  (Oid[]) {INT8OID}, &id, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not drop bandit \"%s\"", name);
	owner_end(&oc);
	SPI_finish();
	PG_RETURN_VOID();
}

/* ---------- ml.choose ---------- */

static SPIPlanPtr plan_insert_decision;

/*
 * ml.choose(name text [, context float8[] | jsonb])
 * RETURNS TABLE (decision_id bigint, arm text, score float8)
 */
Datum
ml_choose(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = arg_text(fcinfo, 0, "bandit name");
	Oid			ctxtype = PG_NARGS() > 1 ? get_fn_expr_argtype(fcinfo->flinfo, 1) : InvalidOid;
	Bandit		b;
	OwnerCall	oc;
	double	   *ctx = NULL;
	double	   *x;
	BanditChoice ch;
	int64		decision;
	Datum		out[3];
	bool		outnull[3] = {false, false, false};

	if (PG_NARGS() > 1 && PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("context must not be NULL"),
				 errhint("Call ml.choose(name) for a bandit without a context.")));
	InitMaterializedSRF(fcinfo, 0);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	owner_begin(&oc);
	bandit_load(&oc, name, true, &b, CurrentMemoryContext);

	if (PG_NARGS() == 1)
	{
		if (b.bp.dim > 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("bandit \"%s\" needs a context of %d values", name, b.bp.dim)));
	}
	else if (ctxtype == JSONBOID)
		ctx = context_from_jsonb(&b, PG_GETARG_JSONB_P(1));
	else
		ctx = context_from_array(&b, PG_GETARG_ARRAYTYPE_P(1));

	x = palloc(sizeof(double) * Max(b.bp.p, 1));
	BanditFeatures(&b.bp, ctx, x);
	decision = nextval_internal(get_relname_relid("bandit_decisions_id_seq",
												  get_namespace_oid("ml", false)), false);
	ch = BanditChoose(&b.bp, b.narms, b.states, x, b.rewards, (uint64) decision);

	{
		Oid			types[6] = {INT8OID, INT8OID, INT4OID, FLOAT8ARRAYOID, FLOAT8OID, FLOAT8OID};
		Datum		values[6];
		char		nulls[6] = "      ";

		values[0] = Int64GetDatum(decision);
		values[1] = Int64GetDatum(b.id);
		values[2] = Int32GetDatum(ch.arm);
		if (b.bp.dim > 0)
			values[3] = float8_array(ctx, b.bp.dim);
		else
			nulls[3] = 'n';
		values[4] = Float8GetDatum(ch.score);
		values[5] = Float8GetDatum(ch.propensity);
		if (!ch.has_propensity)
			nulls[5] = 'n';
		run_plan(kept_plan(&plan_insert_decision,
						   "INSERT INTO ml.bandit_decisions"
						   " (id, bandit_id, arm_index, context, score, propensity)"
						   " VALUES ($1, $2, $3, $4, $5, $6)", 6, types),
				 values, nulls, false, SPI_OK_INSERT);
	}
	owner_end(&oc);

	out[0] = Int64GetDatum(decision);
	out[1] = CStringGetTextDatum(b.arms[ch.arm]);
	out[2] = Float8GetDatum(ch.score);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, outnull);
	SPI_finish();
	return (Datum) 0;
}

/* ---------- ml.reward ---------- */

static SPIPlanPtr plan_mark_decision;
static SPIPlanPtr plan_find_decision;
static SPIPlanPtr plan_update_arm;

/* ml.reward(name text, decision_id bigint, reward float8) RETURNS void */
Datum
ml_reward(PG_FUNCTION_ARGS)
{
	char	   *name = arg_text(fcinfo, 0, "bandit name");
	int64		decision;
	double		reward;
	Bandit		b;
	OwnerCall	oc;
	int32		arm;
	double	   *ctx = NULL;
	double	   *x;
	bool		isnull;
	Datum		ctxd;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("decision_id and reward must not be NULL")));
	decision = PG_GETARG_INT64(1);
	reward = PG_GETARG_FLOAT8(2);
	if (!isfinite(reward))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("reward must be a finite number, not %s", float8out_internal(reward))));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	owner_begin(&oc);
	bandit_load(&oc, name, false, &b, CurrentMemoryContext);
	if (b.bp.beta && (reward < 0.0 || reward > 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a reward of bandit \"%s\" must be between 0 and 1, not %g", name, reward),
				 errdetail("Thompson sampling without a context models Bernoulli rewards.")));

	{
		Oid			types[3] = {INT8OID, INT8OID, FLOAT8OID};
		Datum		values[3] = {Int64GetDatum(decision), Int64GetDatum(b.id), Float8GetDatum(reward)};

		run_plan(kept_plan(&plan_mark_decision,
						   "UPDATE ml.bandit_decisions SET reward = $3, rewarded_at = now()"
						   " WHERE id = $1 AND bandit_id = $2 AND reward IS NULL"
						   " RETURNING arm_index, context", 3, types),
				 values, NULL, false, SPI_OK_UPDATE_RETURNING);
		if (SPI_processed == 0)
		{
			run_plan(kept_plan(&plan_find_decision,
							   "SELECT 1 FROM ml.bandit_decisions WHERE id = $1 AND bandit_id = $2",
							   2, types),
					 values, NULL, true, SPI_OK_SELECT);
			if (SPI_processed == 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_OBJECT),
						 errmsg("bandit \"%s\" has no decision %lld", name, (long long) decision)));
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("decision %lld of bandit \"%s\" was already rewarded", (long long) decision, name)));
		}
	}
	arm = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	ctxd = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (b.bp.dim > 0)
	{
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("decision %lld of bandit \"%s\" has no context", (long long) decision, name)));
		ctx = context_from_array(&b, DatumGetArrayTypeP(ctxd));
	}
	x = palloc(sizeof(double) * Max(b.bp.p, 1));
	BanditFeatures(&b.bp, ctx, x);

	{
		Oid			types[4] = {INT8OID, INT4OID, FLOAT8ARRAYOID, FLOAT8OID};
		Datum		values[4];
		char		nulls[4] = "    ";

		values[0] = Int64GetDatum(b.id);
		values[1] = Int32GetDatum(arm);
		if (b.bp.beta)
			nulls[2] = 'n';
		else
			values[2] = float8_array(x, b.bp.p);
		values[3] = Float8GetDatum(reward);
		run_plan(kept_plan(&plan_update_arm,
						   "UPDATE ml.bandit_arms SET state = ml._bandit_update(state, $3, $4),"
						   " pulls = pulls + 1, reward_sum = reward_sum + $4"
						   " WHERE bandit_id = $1 AND arm_index = $2", 4, types),
				 values, nulls, false, SPI_OK_UPDATE);
		if (SPI_processed != 1)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("arm %d of bandit \"%s\" is missing", arm + 1, name)));
	}
	owner_end(&oc);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * ml._bandit_update(state float8[], x float8[], reward float8) RETURNS
 * float8[]: state plus one reward for features x (NULL x: a Beta state).
 */
Datum
ml_bandit_update(PG_FUNCTION_ARGS)
{
	ArrayType  *st;
	ArrayType  *out;
	BanditParams bp;
	int			n;
	double		reward;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("state and reward must not be NULL")));
	st = PG_GETARG_ARRAYTYPE_P(0);
	reward = PG_GETARG_FLOAT8(2);
	if (ARR_NDIM(st) != 1 || ARR_HASNULL(st) || ARR_ELEMTYPE(st) != FLOAT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a bandit state is a one-dimensional float8[] without NULLs")));
	n = ArrayGetNItems(1, ARR_DIMS(st));
	memset(&bp, 0, sizeof(bp));
	if (PG_ARGISNULL(1))
		bp.beta = true;
	else
	{
		ArrayType  *xa = PG_GETARG_ARRAYTYPE_P(1);

		if (ARR_NDIM(xa) != 1 || ARR_HASNULL(xa) || ARR_ELEMTYPE(xa) != FLOAT8OID)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("features must be a one-dimensional float8[] without NULLs")));
		bp.p = ArrayGetNItems(1, ARR_DIMS(xa));
		if (bp.p < 1 || bp.p > BANDIT_MAX_DIM + 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("features must have 1 to %d values", BANDIT_MAX_DIM + 1)));
		for (int i = 0; i < bp.p; i++)
			if (!isfinite(((double *) ARR_DATA_PTR(xa))[i]))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("features must be finite")));
	}
	if (!isfinite(reward))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("reward must be a finite number")));
	if (n != BanditStateLength(&bp))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a bandit state of %d values does not match %d features", n, bp.p)));
	out = DatumGetArrayTypePCopy(PointerGetDatum(st));
	BanditUpdate(&bp, (double *) ARR_DATA_PTR(out),
				 bp.beta ? NULL : (double *) ARR_DATA_PTR(PG_GETARG_ARRAYTYPE_P(1)), reward);
	for (int i = 0; i < n; i++)
		if (!isfinite(((double *) ARR_DATA_PTR(out))[i]))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("this reward would overflow the arm's state"),
					 errdetail("The products of the context and the reward exceed the range of float8."),
					 errhint("Scale the context and the rewards.")));
	PG_RETURN_ARRAYTYPE_P(out);
}

/* ---------- ml.bandit_evaluate ---------- */

/* A numeric column of the log as float8 (false when NULL). */
static bool
log_number(Datum d, bool isnull, Oid type, double *out)
{
	if (isnull)
		return false;
	switch (type)
	{
		case FLOAT8OID:
			*out = DatumGetFloat8(d);
			break;
		case FLOAT4OID:
			*out = DatumGetFloat4(d);
			break;
		case INT2OID:
			*out = DatumGetInt16(d);
			break;
		case INT4OID:
			*out = DatumGetInt32(d);
			break;
		case INT8OID:
			*out = (double) DatumGetInt64(d);
			break;
		case NUMERICOID:
			*out = DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
			break;
		case BOOLOID:
			*out = DatumGetBool(d) ? 1.0 : 0.0;
			break;
		default:
			elog(ERROR, "unexpected type %u", type);
	}
	return true;
}

static bool
numeric_type(Oid t)
{
	return t == FLOAT8OID || t == FLOAT4OID || t == INT2OID || t == INT4OID ||
		t == INT8OID || t == NUMERICOID || t == BOOLOID;
}

static int
log_column(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i + 1;
	}
	return 0;
}

/*
 * ml.bandit_evaluate(name text, log text) RETURNS jsonb
 *
 * Replay evaluation (Li, Chu, Langford and Wang, 2011): a fresh copy of
 * the bandit's policy (its algorithm, options and seed, no rewards yet)
 * walks the logged events in the log's order; where it picks the logged
 * arm, the event counts and its reward is fed back, else it is skipped.
 * The mean reward of the counted events estimates the policy's reward
 * without bias when the log's arms were chosen uniformly at random.  With
 * a propensity column, the inverse-propensity estimate is reported too.
 */
Datum
ml_bandit_evaluate(PG_FUNCTION_ARGS)
{
	char	   *name = arg_text(fcinfo, 0, "bandit name");
	char	   *source = arg_text(fcinfo, 1, "log");
	Bandit		b;
	OwnerCall	oc;
	char	   *query;
	Portal		portal;
	TupleDesc	desc;
	int			c_arm,
				c_reward,
				c_context,
				c_prop;
	Oid			t_reward,
				t_context,
				t_prop = InvalidOid;
	int			len;
	double	  **states;
	double	   *x;
	int64		events = 0,
				matched = 0,
				rewards = 0,
				unrewarded = 0,
				no_propensity = 0;
	double		total_logged = 0.0,
				total_matched = 0.0,
				ips = 0.0;
	int64	   *chosen;
	MemoryContext rowcxt;
	JsonbParseState *st = NULL;
	MemoryContext outer = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	owner_begin(&oc);
	bandit_load(&oc, name, true, &b, CurrentMemoryContext);
	owner_end(&oc);

	/* the log, read with the caller's rights */
	query = psprintf("SELECT * FROM (%s) log", ReaderSourceQuery(source));
	portal = SPI_cursor_open_with_args(NULL, query, 0, NULL, NULL, NULL, true, 0);
	desc = portal->tupDesc;
	c_arm = log_column(desc, "arm");
	c_reward = log_column(desc, "reward");
	c_context = log_column(desc, "context");
	c_prop = log_column(desc, "propensity");
	if (c_arm == 0 || c_reward == 0 || (b.bp.dim > 0 && c_context == 0))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("the log of bandit \"%s\" needs the columns arm, reward%s", name,
						b.bp.dim > 0 ? " and context" : ""),
				 errhint("Optional: propensity, the probability the logging policy chose the arm.")));
	t_reward = SPI_gettypeid(desc, c_reward);
	if (!numeric_type(t_reward))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column reward of the log must be numeric, not %s", format_type_be(t_reward))));
	t_context = c_context ? SPI_gettypeid(desc, c_context) : InvalidOid;
	if (b.bp.dim > 0 && t_context != FLOAT8ARRAYOID && t_context != JSONBOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column context of the log must be float8[] or jsonb, not %s",
						format_type_be(t_context))));
	if (c_prop)
	{
		t_prop = SPI_gettypeid(desc, c_prop);
		if (!numeric_type(t_prop))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column propensity of the log must be numeric, not %s", format_type_be(t_prop))));
	}

	len = BanditStateLength(&b.bp);
	states = palloc(sizeof(double *) * b.narms);
	for (int a = 0; a < b.narms; a++)
	{
		states[a] = palloc(sizeof(double) * len);
		BanditStateInit(&b.bp, states[a]);
	}
	chosen = palloc0(sizeof(int64) * b.narms);
	x = palloc(sizeof(double) * Max(b.bp.p, 1));
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "bandit replay", ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	row = SPI_tuptable->vals[r];
			MemoryContext old = MemoryContextSwitchTo(rowcxt);
			bool		isnull;
			Datum		d;
			char	   *arm;
			int			logged = -1;
			double		reward,
						prop = 1.0;
			double	   *ctx = NULL;
			BanditChoice ch;

			CHECK_FOR_INTERRUPTS();
			events++;
			d = SPI_getbinval(row, desc, c_arm, &isnull);
			if (isnull)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("event %lld of the log has no arm", (long long) events)));
			arm = SPI_getvalue(row, desc, c_arm);
			for (int a = 0; a < b.narms; a++)
				if (strcmp(b.arms[a], arm) == 0)
					logged = a;
			if (logged < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("event %lld of the log has arm \"%s\", which bandit \"%s\" does not have",
								(long long) events, arm, name)));
			d = SPI_getbinval(row, desc, c_reward, &isnull);
			if (isnull)
			{
				/* a decision never rewarded: not an event */
				events--;
				unrewarded++;
				MemoryContextSwitchTo(old);
				continue;
			}
			if (!log_number(d, isnull, t_reward, &reward) || !isfinite(reward))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("event %lld of the log has a reward that is not finite", (long long) events)));
			if (b.bp.beta && (reward < 0.0 || reward > 1.0))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("event %lld of the log has reward %g; bandit \"%s\" takes rewards between 0 and 1",
								(long long) events, reward, name)));
			if (c_prop)
			{
				d = SPI_getbinval(row, desc, c_prop, &isnull);
				if (isnull)
					no_propensity++;	/* no IPS figure then */
				else if (!log_number(d, isnull, t_prop, &prop) || !(prop > 0.0 && prop <= 1.0))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("event %lld of the log has a propensity outside (0, 1]", (long long) events)));
			}
			if (b.bp.dim > 0)
			{
				d = SPI_getbinval(row, desc, c_context, &isnull);
				if (isnull)
					ereport(ERROR,
							(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							 errmsg("event %lld of the log has no context", (long long) events)));
				ctx = t_context == JSONBOID ? context_from_jsonb(&b, DatumGetJsonbP(d))
					: context_from_array(&b, DatumGetArrayTypeP(d));
			}
			BanditFeatures(&b.bp, ctx, x);
			ch = BanditChoose(&b.bp, b.narms, states, x, rewards, (uint64) events);
			total_logged += reward;
			if (ch.arm == logged)
			{
				matched++;
				chosen[logged]++;
				total_matched += reward;
				ips += reward / prop;
				BanditUpdate(&b.bp, states[logged], x, reward);
				rewards++;
			}
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);

	MemoryContextSwitchTo(outer);
	JbBeginObject(&st);
	JbKey(&st, "events");
	JbInt(&st, events);
	JbKey(&st, "matched");
	JbInt(&st, matched);
	JbKey(&st, "match_rate");
	if (events > 0)
		JbFloat(&st, (double) matched / events);
	else
		JbNull(&st);
	JbKey(&st, "replay_reward");
	if (matched > 0)
		JbFloat(&st, total_matched / matched);
	else
		JbNull(&st);
	JbKey(&st, "logged_reward");
	if (events > 0)
		JbFloat(&st, total_logged / events);
	else
		JbNull(&st);
	if (c_prop)
	{
		/* only when every event has its propensity */
		JbKey(&st, "ips_reward");
		if (events > 0 && no_propensity == 0)
			JbFloat(&st, ips / events);
		else
			JbNull(&st);
	}
	JbKey(&st, "unrewarded");
	JbInt(&st, unrewarded);
	JbKey(&st, "chosen");
	JbBeginObject(&st);
	for (int a = 0; a < b.narms; a++)
	{
		JbKey(&st, b.arms[a]);
		JbInt(&st, chosen[a]);
	}
	JbEndObject(&st);
	{
		Jsonb	   *res = JbFinishObject(&st);

		SPI_finish();
		PG_RETURN_JSONB_P(res);
	}
}
