/*-------------------------------------------------------------------------
 * src/monitor/monitor.c
 *		ml.monitor: live data against the live model's baseline, in one
 *		scan of the source: drift (population stability index and
 *		Jensen-Shannon divergence on the baseline's bins for numbers;
 *		L-infinity distance and a chi-squared test for text) and data
 *		quality (missing columns, type changes, more NULLs, values outside
 *		the training range, values never seen in training).
 *
 * Each run is stored in ml.monitor_runs, and a run with violations raises
 * a "monitor" alert (NOTIFY ml_alerts, the alert channels).  Both are
 * written as the extension's owner, as the other catalog writes are; the
 * source is read with the caller's rights.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/tuplestore.h"

#include "pgmaker.h"
#include "bgw/bgw.h"
#include "catalog/catalog.h"
#include "data/data.h"
#include "monitor/monitor.h"

PG_FUNCTION_INFO_V1(ml_monitor);
PG_FUNCTION_INFO_V1(ml_report_quality_violation);

/* fractions are taken as at least this much in PSI and its logarithms */
#define MONITOR_EPSILON 1e-4

static const char *const check_names[NCHECKS] = {
	"psi", "js_divergence", "linf", "chi2_p", "null_increase", "out_of_range", "unseen"
};
static const double default_thresholds[NCHECKS] = {0.2, 0.1, 0.3, 0.01, 0.1, 0.1, 0.1};

/* ---------- the baseline ---------- */

static JsonbValue *
field(JsonbContainer *c, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(c, JB_FOBJECT, &k);
}

static void baseline_corrupt(const Monitor *m, const char *what) pg_attribute_noreturn();

static void
baseline_corrupt(const Monitor *m, const char *what)
{
	if (m->model_id == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the baseline is unusable: %s", what)));
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("the baseline of model %lld is unusable: %s", (long long) m->model_id, what)));
}

static double
number_field(const Monitor *m, JsonbContainer *c, const char *key)
{
	JsonbValue *v = field(c, key);
	double		d;

	if (v == NULL || !JsonbValueToDouble(v, &d))
		baseline_corrupt(m, psprintf("\"%s\" is not a number", key));
	return d;
}

/* Reads n numbers of the array at key into out. */
static void
number_array(const Monitor *m, JsonbContainer *c, const char *key, double *out, int n)
{
	JsonbValue *v = field(c, key);

	if (v == NULL || v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data) ||
		JsonContainerSize(v->val.binary.data) != n)
		baseline_corrupt(m, psprintf("\"%s\" is not an array of %d numbers", key, n));
	for (int i = 0; i < n; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(v->val.binary.data, i);

		if (e == NULL || !JsonbValueToDouble(e, &out[i]))
			baseline_corrupt(m, psprintf("\"%s\" is not an array of %d numbers", key, n));
	}
}

static int
cmp_cat(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static void
read_categories(Monitor *m, MonColumn *mc, JsonbContainer *c)
{
	JsonbValue *v = field(c, "categories");
	JsonbIterator *it;
	JsonbValue	jv;
	JsonbIteratorToken tok;
	int			i = 0;
	char	  **order;

	if (v == NULL || v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		baseline_corrupt(m, "\"categories\" is not an object");
	mc->ncats = JsonContainerSize(v->val.binary.data);
	mc->cats = palloc(sizeof(char *) * Max(mc->ncats, 1));
	mc->cat_fracs = palloc(sizeof(double) * Max(mc->ncats, 1));
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &jv, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			mc->cats[i] = pnstrdup(jv.val.string.val, jv.val.string.len);
		else if (tok == WJB_VALUE)
		{
			if (!JsonbValueToDouble(&jv, &mc->cat_fracs[i]))
				baseline_corrupt(m, "a category's fraction is not a number");
			i++;
		}
	}
	/* sorted by value for bsearch, fractions along */
	order = palloc(sizeof(char *) * Max(mc->ncats, 1));
	memcpy(order, mc->cats, sizeof(char *) * mc->ncats);
	qsort(order, mc->ncats, sizeof(char *), cmp_cat);
	{
		double	   *fr = palloc(sizeof(double) * Max(mc->ncats, 1));

		for (int k = 0; k < mc->ncats; k++)
			for (int j = 0; j < mc->ncats; j++)
				if (mc->cats[j] == order[k])
					fr[k] = mc->cat_fracs[j];
		mc->cats = order;
		mc->cat_fracs = fr;
	}
	mc->other = number_field(m, c, "other");
	mc->complete = number_field(m, c, "distinct") <= mc->ncats;
}

/*
 * MonitorParseBaseline reads a model's baseline (ml.models.baseline) into
 * m->cols; an unusable one is an error naming m->model_id.
 */
void
MonitorParseBaseline(Monitor *m, Jsonb *baseline)
{
	JsonbValue *cols;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			i = 0;

	cols = baseline ? field(&baseline->root, "columns") : NULL;
	if (cols == NULL || cols->type != jbvBinary || !JsonContainerIsObject(cols->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the live model of project \"%s\" (model %lld) has no monitoring baseline",
						m->project.name ? m->project.name : "?", (long long) m->model_id),
				 errhint("Models trained since baselines were added have one; an imported model has none.  Retrain the project.")));

	m->ncols = JsonContainerSize(cols->val.binary.data);
	m->cols = palloc0(sizeof(MonColumn) * Max(m->ncols, 1));
	it = JsonbIteratorInit(cols->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		MonColumn  *mc;
		JsonbContainer *c;
		JsonbValue *kind;
		JsonbValue *src;

		if (tok == WJB_KEY)
		{
			m->cols[i].name = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		mc = &m->cols[i++];
		if (v.type != jbvBinary)
			baseline_corrupt(m, "a column is not an object");
		c = v.val.binary.data;
		kind = field(c, "kind");
		src = field(c, "source");
		if (kind == NULL || kind->type != jbvString || src == NULL || src->type != jbvString)
			baseline_corrupt(m, "a column has no kind or source");
		mc->source = pnstrdup(src->val.string.val, src->val.string.len);
		mc->element = (int) number_field(m, c, "element");
		{
			JsonbValue *type = field(c, "type");

			if (type == NULL || type->type != jbvString)
				baseline_corrupt(m, "a column has no type");
			mc->type = pnstrdup(type->val.string.val, type->val.string.len);
		}
		if (kind->val.string.len == 11 && memcmp(kind->val.string.val, "categorical", 11) == 0)
			mc->categorical = true;
		else if (kind->val.string.len == 7 && memcmp(kind->val.string.val, "numeric", 7) == 0)
			mc->categorical = false;
		else
			baseline_corrupt(m, "a column's kind is neither numeric nor categorical");
		mc->base_null = number_field(m, c, "null_fraction");
		mc->base_count = (int64) number_field(m, c, "count");
		mc->empty = mc->base_count == 0;
		if (mc->empty)
			continue;
		if (mc->categorical)
			read_categories(m, mc, c);
		else
		{
			mc->min = number_field(m, c, "min");
			mc->max = number_field(m, c, "max");
			number_array(m, c, "edges", mc->edges, MONITOR_BINS - 1);
			number_array(m, c, "fractions", mc->fractions, MONITOR_BINS);
		}
	}
}

/* Reads the live model's baseline into m->cols, and returns it. */
static Jsonb *
load_baseline(Monitor *m)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(m->model_id)};
	bool		isnull;
	Jsonb	   *baseline = NULL;
	MemoryContext caller = CurrentMemoryContext;
	Datum		d;

	if (SPI_execute_with_args("SELECT baseline FROM ml.models WHERE id = $1", 1, types, values,
							  NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "model %lld does not exist", (long long) m->model_id);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
	{
		MemoryContext old = MemoryContextSwitchTo(caller);

		baseline = DatumGetJsonbPCopy(d);
		MemoryContextSwitchTo(old);
	}
	MonitorParseBaseline(m, baseline);
	return baseline;
}

/*
 * MonitorLayout gives each column its place in the count array and
 * returns the array's length.
 */
int
MonitorLayout(Monitor *m)
{
	int			n = 1;			/* the rows */

	for (int i = 0; i < m->ncols; i++)
	{
		MonColumn  *mc = &m->cols[i];

		mc->offset = n;
		n += mc->categorical ? MONITOR_TEXT_COUNTS(mc->ncats) : MONITOR_NUMERIC_COUNTS;
	}
	return n;
}

/* MonitorUnpack copies the count array into the columns' counters. */
void
MonitorUnpack(Monitor *m, const int64 *counts)
{
	m->rows = counts[0];
	for (int i = 0; i < m->ncols; i++)
	{
		MonColumn  *mc = &m->cols[i];
		const int64 *c = counts + mc->offset;

		mc->n = c[0];
		mc->nulls = c[1];
		if (mc->categorical)
		{
			mc->other_count = c[2];
			mc->unseen = c[3];
			mc->cat_counts = palloc(sizeof(int64) * Max(mc->ncats, 1));
			memcpy(mc->cat_counts, c + 4, sizeof(int64) * mc->ncats);
		}
		else
		{
			mc->outside = c[2];
			memcpy(mc->bins, c + 3, sizeof(int64) * MONITOR_BINS);
		}
	}
}

/* ---------- options ---------- */

static int
check_by_name(const char *name)
{
	for (int k = 0; k < NCHECKS; k++)
		if (strcmp(check_names[k], name) == 0)
			return k;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown check \"%s\"", name),
			 errhint("The checks with thresholds are psi, js_divergence, linf, chi2_p, null_increase, out_of_range and unseen.")));
	pg_unreachable();
}

static double
threshold_value(const char *name, JsonbValue *v, int k)
{
	double		d;
	bool		ok;

	if (!JsonbValueToDouble(v, &d))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("threshold \"%s\" must be a number, not %s", name, JsonbValueTypeName(v))));
	switch (k)
	{
		case CHECK_PSI:
			ok = d > 0 && isfinite(d);
			break;
		case CHECK_CHI2_P:
			ok = d > 0 && d < 1;
			break;
		default:
			ok = d > 0 && d <= 1;
			break;
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("threshold \"%s\" is out of range: %g", name, d),
				 errdetail(k == CHECK_PSI ? "It must be positive." :
						   k == CHECK_CHI2_P ? "A p-value threshold lies strictly between 0 and 1." :
						   "It must be greater than 0 and at most 1.")));
	return d;
}

static void
threshold_option(const char *key, JsonbValue *v, void *arg)
{
	double	   *thresholds = (double *) arg;
	int			k = check_by_name(key);

	thresholds[k] = threshold_value(key, v, k);
}

static void
feature_option(const char *key, JsonbValue *v, void *arg)
{
	Monitor    *m = (Monitor *) arg;
	MonColumn  *mc = NULL;
	Jsonb	   *obj;

	for (int i = 0; i < m->ncols && mc == NULL; i++)
		if (strcmp(m->cols[i].name, key) == 0)
			mc = &m->cols[i];
	if (mc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("feature \"%s\" is not in the baseline of project \"%s\"", key, m->project.name),
				 errhint("ml.baseline('%s') lists the features.", m->project.name)));
	if (v->type != jbvBinary)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the thresholds of feature \"%s\" must be a JSON object", key)));
	obj = JsonbValueToJsonb(v);
	JsonbForEachKey(obj, "feature thresholds", threshold_option, mc->thresholds);
}

static void
monitor_option(const char *key, JsonbValue *v, void *arg)
{
	Monitor    *m = (Monitor *) arg;

	if (strcmp(key, "thresholds") == 0)
	{
		if (v->type != jbvBinary)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"thresholds\" must be a JSON object")));
		JsonbForEachKey(JsonbValueToJsonb(v), "thresholds", threshold_option, m->thresholds);
	}
	else if (strcmp(key, "window") == 0)
	{
		char	   *text = JsonbValueToCString(v);
		Interval   *iv;

		if (v->type != jbvString || text == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"window\" must be an interval as text, such as \"1 hour\"")));
		iv = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(text),
												   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
		if (iv->month < 0 || iv->day < 0 || iv->time < 0 ||
			(iv->month == 0 && iv->day == 0 && iv->time == 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"window\" must be a positive interval, not \"%s\"", text)));
		m->window = text;
	}
	else if (strcmp(key, "features") == 0)
	{
		if (v->type != jbvBinary)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"features\" must be a JSON object")));
		JsonbForEachKey(JsonbValueToJsonb(v), "features", feature_option, m);
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown option \"%s\"", key),
				 errhint("ml.monitor takes thresholds, features and window.")));
}

/* ---------- the scan ---------- */

/*
 * captured_query reads the captured inputs of the window as the columns
 * of the baseline, cast to their training types: a number or a text by
 * its key, an array (whose elements are features) whole.  Calls made with
 * a float8[] were captured as arrays, which name no column: they are left
 * out.
 */
static char *
captured_query(Monitor *m)
{
	StringInfoData sql;
	int			n = 0;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (int i = 0; i < m->ncols; i++)
	{
		MonColumn  *mc = &m->cols[i];
		bool		done = false;

		for (int j = 0; j < i; j++)
			done |= strcmp(m->cols[j].source, mc->source) == 0;
		if (done)
			continue;
		if (n++ > 0)
			appendStringInfoString(&sql, ", ");
		if (mc->element > 0)
			appendStringInfo(&sql, "ARRAY(SELECT jsonb_array_elements_text(c.j -> %s))::%s[] AS %s",
							 quote_literal_cstr(mc->source), mc->type, quote_identifier(mc->source));
		else if (mc->categorical)
			appendStringInfo(&sql, "(c.j ->> %s) AS %s",
							 quote_literal_cstr(mc->source), quote_identifier(mc->source));
		else
			appendStringInfo(&sql, "(c.j ->> %s)::%s AS %s",
							 quote_literal_cstr(mc->source), mc->type, quote_identifier(mc->source));
	}
	/* the batches of the window, then their captures of the window */
	appendStringInfo(&sql, " FROM (SELECT u.input::jsonb AS j"
					 "   FROM ml.capture_batches b,"
					 "        unnest(b.captured_at, b.inputs) AS u(captured_at, input)"
					 "  WHERE b.project_id = " INT64_FORMAT
					 "    AND b.last_at >= now() - %s::interval"
					 "    AND u.captured_at >= now() - %s::interval"
					 "    AND left(u.input, 1) = '{') c",
					 m->project.id, quote_literal_cstr(m->window), quote_literal_cstr(m->window));
	return sql.data;
}

/*
 * Finds each baseline column in the source and returns the scan's list
 * of values: one per baseline column that is there with a type of the
 * same kind ("" when none); *from gets the scan's FROM item.
 */
static char *
plan_scan(Monitor *m, const char *query, char **from)
{
	SPIPlanPtr	plan;
	CachedPlanSource *ps = SourcePrepare(query, &plan);
	TupleDesc	desc = ps->resultDesc;
	StringInfoData sql;
	int			out = 0;

	initStringInfo(&sql);
	for (int i = 0; i < m->ncols; i++)
	{
		MonColumn  *mc = &m->cols[i];
		Form_pg_attribute attr = NULL;
		ValueConverter conv;

		for (int a = 0; a < desc->natts && attr == NULL; a++)
			if (strcmp(NameStr(TupleDescAttr(desc, a)->attname), mc->source) == 0)
				attr = TupleDescAttr(desc, a);
		if (attr == NULL)
		{
			mc->missing = true;
			continue;
		}
		mc->source_type = format_type_be(attr->atttypid);
		ValueConverterInit(&conv, attr->atttypid);
		if (mc->element > 0)
		{
			mc->type_mismatch = conv.kind != VALUE_ARRAY || mc->categorical;
			if (!mc->type_mismatch)
				ValueConverterInit(&mc->conv, conv.elemtype);
		}
		else
		{
			mc->type_mismatch = conv.kind != (mc->categorical ? VALUE_CATEGORICAL : VALUE_NUMERIC);
			mc->conv = conv;
		}
		if (mc->type_mismatch)
			continue;
		mc->out_col = ++out;
		if (out > 1)
			appendStringInfoString(&sql, ", ");
		if (mc->element > 0)
			appendStringInfo(&sql, "(s.%s)[%d]", quote_identifier(mc->source), mc->element);
		else
			appendStringInfo(&sql, "s.%s", quote_identifier(mc->source));
	}
	*from = psprintf("(\n%s\n) s", query);
	SPI_freeplan(plan);
	return sql.data;
}

/*
 * MonitorCountValue counts one value of a column into the count array,
 * read with conv (of the value's type, which is of the column's kind).
 */
void
MonitorCountValue(const MonColumn *mc, const ValueConverter *conv, int64 *counts, Datum d, bool isnull)
{
	int64	   *c = counts + mc->offset;

	if (isnull)
	{
		c[1]++;
		return;
	}
	if (mc->empty)
	{
		c[0]++;
		return;
	}
	if (mc->categorical)
	{
		char	   *s = ValueToCString(conv, d);
		char	  **hit = bsearch(&s, mc->cats, mc->ncats, sizeof(char *), cmp_cat);

		c[0]++;
		if (hit)
			c[4 + (hit - mc->cats)]++;
		else if (mc->complete)
			c[3]++;
		else
			c[2]++;
	}
	else
	{
		double		v = ValueToDouble(conv, d);

		/* NaN counts as missing, as in training */
		if (isnan(v))
		{
			c[1]++;
			return;
		}
		c[0]++;
		c[3 + MonitorBin(mc->edges, MONITOR_BINS - 1, v)]++;
		if (v < mc->min || v > mc->max)
			c[2]++;
	}
}

/*
 * scan counts the source in one aggregate (ml._monitor_counts, parallel
 * safe, so that PostgreSQL may split the scan across workers) over the
 * scan's query, and unpacks the counts into the columns.
 */
static void
scan(Monitor *m, const char *select_list, const char *from, Jsonb *baseline)
{
	Datum	   *names = palloc(sizeof(Datum) * Max(m->ncols, 1));
	int			nnames = 0;
	StringInfoData sql;
	SPIPlanPtr	plan;
	Oid			types[2] = {JSONBOID, TEXTARRAYOID};
	Datum		values[2];
	int			ncounts = MonitorLayout(m);
	int64	   *counts = palloc0(sizeof(int64) * ncounts);
	bool		isnull;
	Datum		d;

	for (int i = 0; i < m->ncols; i++)
		if (m->cols[i].out_col > 0)
			names[nnames++] = CStringGetTextDatum(m->cols[i].name);

	initStringInfo(&sql);
	if (select_list[0] != '\0')
		appendStringInfo(&sql, "SELECT ml._monitor_counts($1, $2, %s) FROM %s", select_list, from);
	else
		appendStringInfo(&sql, "SELECT ARRAY[count(*)] || array_fill(0::bigint, ARRAY[%d]) FROM %s",
						 ncounts - 1, from);
	values[0] = JsonbPGetDatum(baseline);
	values[1] = PointerGetDatum(construct_array(names, nnames, TEXTOID, -1, false, TYPALIGN_INT));
	plan = SPI_prepare_cursor(sql.data, 2, types, CURSOR_OPT_PARALLEL_OK);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare_cursor failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_execute_plan(plan, values, NULL, true, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "the monitor's scan failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
	{
		ArrayType  *arr = DatumGetArrayTypeP(d);

		if (ARR_NDIM(arr) != 1 || ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr)) != ncounts || ARR_HASNULL(arr))
			elog(ERROR, "the monitor's counts do not match its baseline");
		memcpy(counts, ARR_DATA_PTR(arr), sizeof(int64) * ncounts);
	}
	SPI_freeplan(plan);
	MonitorUnpack(m, counts);
}

/* ---------- the statistics ---------- */

/* The regularized upper incomplete gamma function Q(a, x). */
static double
gamma_q(double a, double x)
{
	double		gln = lgamma(a);

	if (x <= 0)
		return 1.0;
	if (x < a + 1)
	{
		/* the series of P(a, x) */
		double		sum = 1.0 / a;
		double		term = sum;

		for (int n = 1; n < 1000; n++)
		{
			term *= x / (a + n);
			sum += term;
			if (fabs(term) < fabs(sum) * 1e-15)
				break;
		}
		return 1.0 - sum * exp(-x + a * log(x) - gln);
	}
	else
	{
		/* the continued fraction of Q(a, x) (modified Lentz) */
		double		b = x + 1 - a;
		double		c = 1.0 / 1e-300;
		double		d = 1.0 / b;
		double		h = d;

		for (int i = 1; i < 1000; i++)
		{
			double		an = -i * (i - a);
			double		del;

			b += 2;
			d = an * d + b;
			if (fabs(d) < 1e-300)
				d = 1e-300;
			c = b + an / c;
			if (fabs(c) < 1e-300)
				c = 1e-300;
			d = 1.0 / d;
			del = d * c;
			h *= del;
			if (fabs(del - 1.0) < 1e-15)
				break;
		}
		return exp(-x + a * log(x) - gln) * h;
	}
}

/* Adds one result row to the tuplestore and the run's JSON. */
static void
emit(ReturnSetInfo *rsinfo, JsonbParseState **run, const char *feature, const char *check,
	 double value, double threshold, int violated, Jsonb *detail, int *nviolations)
{
	Datum		values[6];
	bool		nulls[6] = {false, false, isnan(value), isnan(threshold), violated < 0, detail == NULL};

	values[0] = CStringGetTextDatum(feature);
	values[1] = CStringGetTextDatum(check);
	values[2] = Float8GetDatum(value);
	values[3] = Float8GetDatum(threshold);
	values[4] = BoolGetDatum(violated > 0);
	values[5] = detail ? JsonbPGetDatum(detail) : (Datum) 0;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);

	JbBeginObject(run);
	JbKey(run, "feature");
	JbString(run, feature);
	JbKey(run, "check");
	JbString(run, check);
	JbKey(run, "value");
	JbFloat(run, value);
	JbKey(run, "threshold");
	JbFloat(run, threshold);
	JbKey(run, "violated");
	if (violated < 0)
		JbNull(run);
	else
		JbBool(run, violated > 0);
	if (detail)
	{
		JbKey(run, "detail");
		JbJsonb(run, detail);
	}
	JbEndObject(run);
	if (violated > 0)
		(*nviolations)++;
}

/* Emits a check whose value is bad above the threshold. */
static void
emit_above(ReturnSetInfo *rsinfo, JsonbParseState **run, MonColumn *mc, CheckKind k,
		   double value, Jsonb *detail, int *nv)
{
	emit(rsinfo, run, mc->name, check_names[k], value, mc->thresholds[k],
		 value > mc->thresholds[k], detail, nv);
}

static void
numeric_checks(ReturnSetInfo *rsinfo, JsonbParseState **run, MonColumn *mc, int *nv)
{
	double		psi = 0;
	double		js = 0;
	JsonbParseState *st = NULL;

	for (int b = 0; b < MONITOR_BINS; b++)
	{
		double		p = Max(mc->fractions[b], MONITOR_EPSILON);
		double		q = Max((double) mc->bins[b] / mc->n, MONITOR_EPSILON);
		double		pr = mc->fractions[b];
		double		qr = (double) mc->bins[b] / mc->n;
		double		mid = (pr + qr) / 2;

		psi += (q - p) * log(q / p);
		if (pr > 0)
			js += 0.5 * pr * log2(pr / mid);
		if (qr > 0)
			js += 0.5 * qr * log2(qr / mid);
	}
	JbBeginObject(&st);
	JbKey(&st, "baseline");
	JbBeginArray(&st);
	for (int b = 0; b < MONITOR_BINS; b++)
		JbFloat(&st, mc->fractions[b]);
	JbEndArray(&st);
	JbKey(&st, "current");
	JbBeginArray(&st);
	for (int b = 0; b < MONITOR_BINS; b++)
		JbFloat(&st, (double) mc->bins[b] / mc->n);
	JbEndArray(&st);
	{
		Jsonb	   *bins = JbFinishObject(&st);

		emit_above(rsinfo, run, mc, CHECK_PSI, psi, bins, nv);
		emit_above(rsinfo, run, mc, CHECK_JS, Max(js, 0), NULL, nv);
	}
	st = NULL;
	JbBeginObject(&st);
	JbKey(&st, "min");
	JbFloat(&st, mc->min);
	JbKey(&st, "max");
	JbFloat(&st, mc->max);
	JbKey(&st, "outside");
	JbInt(&st, mc->outside);
	emit_above(rsinfo, run, mc, CHECK_OUT_OF_RANGE, (double) mc->outside / mc->n,
			   JbFinishObject(&st), nv);
}

static void
categorical_checks(ReturnSetInfo *rsinfo, JsonbParseState **run, MonColumn *mc, int *nv)
{
	double		linf = 0;
	double		chi2 = 0;
	int			bins = 0;
	double		small_obs = 0;
	double		small_exp = 0;
	bool		impossible = false;
	double		p;
	JsonbParseState *st = NULL;
	const char *worst = NULL;
	/* the "other" bucket holds values outside the list, seen or not */
	double		other_now = (double) (mc->other_count + mc->unseen) / mc->n;

	for (int c = 0; c <= mc->ncats; c++)
	{
		double		base = c < mc->ncats ? mc->cat_fracs[c] : mc->other;
		double		obs = c < mc->ncats ? (double) mc->cat_counts[c] : (double) (mc->other_count + mc->unseen);
		double		now = obs / mc->n;
		double		expected = base * mc->n;

		if (fabs(now - base) > linf)
		{
			linf = fabs(now - base);
			worst = c < mc->ncats ? mc->cats[c] : "(other)";
		}
		/* cells expected fewer than 5 times are pooled */
		if (expected < 5)
		{
			small_obs += obs;
			small_exp += expected;
			continue;
		}
		chi2 += (obs - expected) * (obs - expected) / expected;
		bins++;
	}
	if (small_exp > 0)
	{
		chi2 += (small_obs - small_exp) * (small_obs - small_exp) / small_exp;
		bins++;
	}
	else if (small_obs > 0)
		impossible = true;		/* values where training had none */
	p = impossible ? 0 : bins > 1 ? gamma_q((bins - 1) / 2.0, chi2 / 2) : 1;

	JbBeginObject(&st);
	JbKey(&st, "largest_change");
	JbString(&st, worst ? worst : "");
	JbKey(&st, "other_baseline");
	JbFloat(&st, mc->other);
	JbKey(&st, "other_current");
	JbFloat(&st, other_now);
	emit_above(rsinfo, run, mc, CHECK_LINF, linf, JbFinishObject(&st), nv);

	st = NULL;
	JbBeginObject(&st);
	JbKey(&st, "chi2");
	JbFloat(&st, impossible ? INFINITY : chi2);
	JbKey(&st, "df");
	JbInt(&st, Max(bins - 1, 0));
	emit(rsinfo, run, mc->name, check_names[CHECK_CHI2_P], p, mc->thresholds[CHECK_CHI2_P],
		 p < mc->thresholds[CHECK_CHI2_P], JbFinishObject(&st), nv);

	if (mc->complete)
	{
		st = NULL;
		JbBeginObject(&st);
		JbKey(&st, "unseen");
		JbInt(&st, mc->unseen);
		emit_above(rsinfo, run, mc, CHECK_UNSEEN, (double) mc->unseen / mc->n, JbFinishObject(&st), nv);
	}
}

/* Stores the run (and raises its alert) as the extension's owner. */
static int64
store_run(Monitor *m, const char *source, Jsonb *results, int nchecks, int nviolations,
		  const char *summary)
{
	Oid			types[8] = {INT8OID, INT8OID, TEXTOID, INT8OID, INT4OID, INT4OID, JSONBOID, OIDOID};
	Datum		values[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	RoleSwitch	rs;
	bool		isnull;
	int64		run_id;

	values[0] = Int64GetDatum(m->project.id);
	values[1] = Int64GetDatum(m->model_id);
	values[2] = CStringGetTextDatum(source);
	values[3] = Int64GetDatum(m->rows);
	values[4] = Int32GetDatum(nchecks);
	values[5] = Int32GetDatum(nviolations);
	values[6] = JsonbPGetDatum(results);
	values[7] = ObjectIdGetDatum(GetUserId());

	BgwAsRole(BgwExtensionOwner(), BGW_CATALOG_PATH, &rs);
	if (SPI_execute_with_args("INSERT INTO ml.monitor_runs (project_id, model_id, source, rows, checks,"
							  " violations, results, run_by)"
							  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::regrole) RETURNING id",
							  8, types, values, nulls, false, 1) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not store the monitor run");
	run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (nviolations > 0)
	{
		Oid			atypes[4] = {INT8OID, OIDOID, TEXTOID, INT8OID};
		Datum		avalues[4];

		avalues[0] = Int64GetDatum(m->project.id);
		avalues[1] = ObjectIdGetDatum(m->project.owner);
		avalues[2] = CStringGetTextDatum(summary);
		avalues[3] = Int64GetDatum(run_id);
		if (SPI_execute_with_args("SELECT ml._raise_alert('monitor', 'warning', $1, $2::regrole, $3,"
								  " jsonb_build_object('run_id', $4, 'violations',"
								  "   (SELECT jsonb_agg(r) FROM ml.monitor_runs mr,"
								  "           jsonb_array_elements(mr.results) r"
								  "     WHERE mr.id = $4 AND (r->>'violated')::boolean)))",
								  4, atypes, avalues, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not raise the monitor alert");
	}
	BgwRestoreRole(&rs);
	return run_id;
}

/*
 * ml_monitor is ml.monitor(project, source, options): the checks of the
 * source against the live model's baseline, one row each.
 */
Datum
ml_monitor(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *project = DataTextArg(fcinfo, 0, "project");
	Jsonb	   *options = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	char	   *source;
	Monitor		m;
	JsonbParseState *run = NULL;
	int			nviolations = 0;
	int			nchecks = 0;
	int			nflagged = 0;
	StringInfoData summary;
	char	   *select_list;
	char	   *from;
	Jsonb	   *baseline;

	source = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));

	InitMaterializedSRF(fcinfo, 0);
	memset(&m, 0, sizeof(m));
	CatalogRequireProject(project, &m.project);
	/* a run is recorded and may raise alerts: for the project's members */
	if (!CatalogOwns(GetUserId(), m.project.owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be a member of role \"%s\" to monitor project \"%s\"",
						GetUserNameFromId(m.project.owner, false), project)));
	m.model_id = CatalogLiveModelId(m.project.id);
	if (m.model_id <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("project \"%s\" has no deployed model", project)));
	memcpy(m.thresholds, default_thresholds, sizeof(m.thresholds));
	m.window = "1 hour";

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	baseline = load_baseline(&m);

	/* global thresholds first, then the per-feature ones over them */
	if (options != NULL)
	{
		JsonbValue *t = field(&options->root, "thresholds");

		if (!JB_ROOT_IS_OBJECT(options))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("options must be a JSON object")));
		if (t && t->type == jbvBinary)
			JsonbForEachKey(JsonbValueToJsonb(t), "thresholds", threshold_option, m.thresholds);
	}
	for (int i = 0; i < m.ncols; i++)
		memcpy(m.cols[i].thresholds, m.thresholds, sizeof(m.thresholds));
	JsonbForEachKey(options, "options", monitor_option, &m);

	if (source == NULL)
	{
		if (!CaptureAvailable())
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("monitoring captured predictions needs pgmaker in shared_preload_libraries"),
					 errhint("Pass a source, or preload pgmaker and capture predictions with ml.set_capture.")));
		source = psprintf("captured predictions of the last %s", m.window);
		select_list = plan_scan(&m, captured_query(&m), &from);
	}
	else
		select_list = plan_scan(&m, ReaderSourceQuery(source), &from);
	scan(&m, select_list, from, baseline);

	initStringInfo(&summary);
	JbBeginArray(&run);
	{
		JsonbParseState *st = NULL;

		JbBeginObject(&st);
		JbKey(&st, "message");
		JbString(&st, m.rows == 0 ? "the source has no rows: nothing to compare" : "rows read");
		emit(rsinfo, &run, "*", "rows", (double) m.rows, NAN, m.rows == 0 ? -1 : 0,
			 JbFinishObject(&st), &nviolations);
	}
	for (int i = 0; i < m.ncols; i++)
	{
		MonColumn  *mc = &m.cols[i];
		int			before = nviolations;

		if (mc->missing)
		{
			emit(rsinfo, &run, mc->name, "missing_column", 1, NAN, 1, NULL, &nviolations);
		}
		else if (mc->type_mismatch)
		{
			JsonbParseState *st = NULL;

			JbBeginObject(&st);
			JbKey(&st, "baseline_type");
			JbString(&st, mc->type);
			JbKey(&st, "source_type");
			JbString(&st, mc->source_type);
			emit(rsinfo, &run, mc->name, "type_mismatch", 1, NAN, 1, JbFinishObject(&st), &nviolations);
		}
		else if (m.rows > 0)
		{
			double		null_now = (double) mc->nulls / m.rows;

			emit_above(rsinfo, &run, mc, CHECK_NULL_INCREASE, null_now - mc->base_null, NULL,
					   &nviolations);
			nchecks++;
			if (mc->n > 0 && !mc->empty)
			{
				if (mc->categorical)
				{
					categorical_checks(rsinfo, &run, mc, &nviolations);
					nchecks += mc->complete ? 3 : 2;
				}
				else
				{
					numeric_checks(rsinfo, &run, mc, &nviolations);
					nchecks += 3;
				}
			}
		}
		if (nviolations > before)
		{
			if (nflagged < 10)
				appendStringInfo(&summary, "%s%s", summary.len ? ", " : "", mc->name);
			nflagged++;
		}
		nchecks += mc->missing || mc->type_mismatch;
	}
	{
		Jsonb	   *results = JbFinishArray(&run);
		char	   *msg;

		if (nflagged > 10)
			appendStringInfo(&summary, " and %d more", nflagged - 10);
		msg = nviolations > 0 ?
			psprintf("monitoring of project %s found %d violation%s in %s", project, nviolations,
					 nviolations == 1 ? "" : "s", summary.data) : NULL;

		store_run(&m, source, results, nchecks, nviolations, msg ? msg : "");
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * ml_report_quality_violation is ml._report_quality_violation(project,
 * message, details): a model_quality alert for a project whose owner role
 * the caller is a member of, written as the extension's owner.
 */
Datum
ml_report_quality_violation(PG_FUNCTION_ARGS)
{
	char	   *project = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ProjectInfo pi;
	Oid			types[4] = {INT8OID, OIDOID, TEXTOID, JSONBOID};
	Datum		values[4];
	RoleSwitch	rs;
	bool		isnull;
	int64		alert_id;

	CatalogRequireProject(project, &pi);
	if (!CatalogOwns(GetUserId(), pi.owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be a member of role \"%s\" to report on project \"%s\"",
						GetUserNameFromId(pi.owner, false), project)));
	values[0] = Int64GetDatum(pi.id);
	values[1] = ObjectIdGetDatum(pi.owner);
	values[2] = PG_GETARG_DATUM(1);
	values[3] = PG_GETARG_DATUM(2);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	BgwAsRole(BgwExtensionOwner(), BGW_CATALOG_PATH, &rs);
	if (SPI_execute_with_args("SELECT ml._raise_alert('model_quality', 'warning', $1, $2::regrole, $3, $4)",
							  4, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not raise the model quality alert");
	alert_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	BgwRestoreRole(&rs);
	SPI_finish();
	PG_RETURN_INT64(alert_id);
}
