/*-------------------------------------------------------------------------
 * src/monitor/aggregate.c
 *		ml._monitor_counts(baseline, names, VARIADIC values): the counts
 *		ml.monitor compares with a baseline, as a parallel-safe aggregate
 *		with combine, serialize and deserialize functions, so that a large
 *		source is counted by parallel workers.
 *
 * The state is the count array of monitor.h (rows, then per column its
 * counts from its offset).  A state built by the transition function also
 * holds the parsed baseline, which tells where each value is counted;
 * a deserialized state holds the counts only, which is all that combining
 * and finishing need.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "monitor/monitor.h"

PG_FUNCTION_INFO_V1(ml_monitor_trans);
PG_FUNCTION_INFO_V1(ml_monitor_combine);
PG_FUNCTION_INFO_V1(ml_monitor_serialize);
PG_FUNCTION_INFO_V1(ml_monitor_deserialize);
PG_FUNCTION_INFO_V1(ml_monitor_final);

/* the values start at this argument of the transition function */
#define FIRST_VALUE_ARG 3

typedef struct MonitorAggState
{
	Monitor    *m;				/* NULL in a deserialized state */
	int			nvalues;
	int		   *value_col;		/* per value: its column in m->cols */
	ValueConverter *value_conv; /* per value: for its type */
	int			ncounts;
	int64	   *counts;
} MonitorAggState;

/* Sets up a state from the baseline, the names and the values' types. */
static MonitorAggState *
state_create(FunctionCallInfo fcinfo, MemoryContext aggcxt)
{
	MemoryContext old = MemoryContextSwitchTo(aggcxt);
	MonitorAggState *st = palloc0(sizeof(MonitorAggState));
	Datum	   *names;
	bool	   *nulls;
	int			nnames;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the baseline and the names must not be NULL")));
	st->m = palloc0(sizeof(Monitor));
	MonitorParseBaseline(st->m, PG_GETARG_JSONB_P_COPY(1));
	st->ncounts = MonitorLayout(st->m);
	st->counts = palloc0(sizeof(int64) * st->ncounts);

	deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), TEXTOID, -1, false, TYPALIGN_INT,
					  &names, &nulls, &nnames);
	st->nvalues = PG_NARGS() - FIRST_VALUE_ARG;
	if (nnames != st->nvalues)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%d names for %d values", nnames, st->nvalues)));
	st->value_col = palloc(sizeof(int) * Max(st->nvalues, 1));
	st->value_conv = palloc(sizeof(ValueConverter) * Max(st->nvalues, 1));
	for (int v = 0; v < st->nvalues; v++)
	{
		char	   *name = nulls[v] ? NULL : TextDatumGetCString(names[v]);
		Oid			typid = get_fn_expr_argtype(fcinfo->flinfo, FIRST_VALUE_ARG + v);
		int			col = -1;
		MonColumn  *mc;

		for (int i = 0; i < st->m->ncols && col < 0 && name; i++)
			if (strcmp(st->m->cols[i].name, name) == 0)
				col = i;
		if (col < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("\"%s\" is not a column of the baseline", name ? name : "(null)")));
		for (int w = 0; w < v; w++)
			if (st->value_col[w] == col)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("column \"%s\" is counted twice", name)));
		if (!OidIsValid(typid))
			elog(ERROR, "could not determine the type of value %d", v + 1);
		mc = &st->m->cols[col];
		ValueConverterInit(&st->value_conv[v], typid);
		if (st->value_conv[v].kind != (mc->categorical ? VALUE_CATEGORICAL : VALUE_NUMERIC))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" is %s, not of type %s", name,
							mc->categorical ? "categorical" : "numeric", format_type_be(typid))));
		st->value_col[v] = col;
	}
	MemoryContextSwitchTo(old);
	return st;
}

/*
 * ml_monitor_trans counts one row: the row itself and each of its values
 * under its column.
 */
Datum
ml_monitor_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	MonitorAggState *st;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "ml._monitor_counts called in a non-aggregate context");
	st = PG_ARGISNULL(0) ? state_create(fcinfo, aggcxt) : (MonitorAggState *) PG_GETARG_POINTER(0);
	st->counts[0]++;
	for (int v = 0; v < st->nvalues; v++)
		MonitorCountValue(&st->m->cols[st->value_col[v]], &st->value_conv[v], st->counts,
						  PG_GETARG_DATUM(FIRST_VALUE_ARG + v), PG_ARGISNULL(FIRST_VALUE_ARG + v));
	PG_RETURN_POINTER(st);
}

/* ml_monitor_combine adds the counts of two states. */
Datum
ml_monitor_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	MonitorAggState *a = PG_ARGISNULL(0) ? NULL : (MonitorAggState *) PG_GETARG_POINTER(0);
	MonitorAggState *b = PG_ARGISNULL(1) ? NULL : (MonitorAggState *) PG_GETARG_POINTER(1);

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "ml._monitor_counts called in a non-aggregate context");
	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(aggcxt);

		a = palloc0(sizeof(MonitorAggState));
		a->ncounts = b->ncounts;
		a->counts = palloc(sizeof(int64) * b->ncounts);
		memcpy(a->counts, b->counts, sizeof(int64) * b->ncounts);
		MemoryContextSwitchTo(old);
		PG_RETURN_POINTER(a);
	}
	if (a->ncounts != b->ncounts)
		elog(ERROR, "ml._monitor_counts states of different baselines");
	for (int i = 0; i < a->ncounts; i++)
		a->counts[i] += b->counts[i];
	PG_RETURN_POINTER(a);
}

/* ml_monitor_serialize writes a state's counts as bytea. */
Datum
ml_monitor_serialize(PG_FUNCTION_ARGS)
{
	MonitorAggState *st = (MonitorAggState *) PG_GETARG_POINTER(0);
	Size		len = sizeof(int64) * st->ncounts;
	bytea	   *out = palloc(VARHDRSZ + len);

	SET_VARSIZE(out, VARHDRSZ + len);
	memcpy(VARDATA(out), st->counts, len);
	PG_RETURN_BYTEA_P(out);
}

/* ml_monitor_deserialize reads counts back into a state. */
Datum
ml_monitor_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	Size		len = VARSIZE_ANY_EXHDR(in);
	MonitorAggState *st;

	if (len % sizeof(int64) != 0 || len == 0)
		elog(ERROR, "a serialized ml._monitor_counts state has %zu bytes", len);
	st = palloc0(sizeof(MonitorAggState));
	st->ncounts = (int) (len / sizeof(int64));
	st->counts = palloc(len);
	memcpy(st->counts, VARDATA_ANY(in), len);
	PG_RETURN_POINTER(st);
}

/* ml_monitor_final returns the counts as bigint[] (NULL without rows). */
Datum
ml_monitor_final(PG_FUNCTION_ARGS)
{
	MonitorAggState *st = PG_ARGISNULL(0) ? NULL : (MonitorAggState *) PG_GETARG_POINTER(0);
	Datum	   *d;

	if (st == NULL)
		PG_RETURN_NULL();
	d = palloc(sizeof(Datum) * st->ncounts);
	for (int i = 0; i < st->ncounts; i++)
		d[i] = Int64GetDatum(st->counts[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(d, st->ncounts, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
