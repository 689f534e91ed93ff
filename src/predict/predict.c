/*-------------------------------------------------------------------------
 * src/predict/predict.c
 *		ml.predict, ml.predict_label, ml.predict_proba, ml.labels and
 *		ml.model_info.
 *
 * One C function serves each output, whatever addresses the model (a
 * project name or a model id) and whatever carries the input (a record,
 * a float8[] in training feature order, or a jsonb object): the argument
 * types are read once per call site.  fn_extra keeps, for the life of the
 * query, the model and the mapping from the input's columns to the
 * pipeline's, so a query over a million rows looks the model up once.
 *-------------------------------------------------------------------------
 */
#include "predict/predict.h"

#if PG_VERSION_NUM >= 150000
#include "common/pg_prng.h"
#endif

#include <math.h>

#include "access/htup_details.h"
#include "catalog/catalog.h"
#include "catalog/pg_type.h"
#include "data/data.h"
#include "eval/eval.h"
#include "monitor/monitor.h"
#include "algo/algo.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/tuplestore.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

PG_FUNCTION_INFO_V1(ml_predict);
PG_FUNCTION_INFO_V1(ml_predict_label);
PG_FUNCTION_INFO_V1(ml_predict_proba);
PG_FUNCTION_INFO_V1(ml_predict_batch);
PG_FUNCTION_INFO_V1(ml_labels);
PG_FUNCTION_INFO_V1(ml_model_info);
PG_FUNCTION_INFO_V1(ml_explain);
PG_FUNCTION_INFO_V1(ml_embed);
PG_FUNCTION_INFO_V1(ml_transform);

typedef enum InputForm
{
	INPUT_RECORD,
	INPUT_ARRAY,
	INPUT_JSONB
} InputForm;

/* One column of the input feeding consecutive pipeline columns. */
typedef struct InputSource
{
	const char *name;
	int			first;			/* first pipeline column it feeds */
	int			count;			/* 1, or the array's length */
	bool		is_array;		/* the pipeline column has an element > 0 */
	int			attnum;			/* INPUT_RECORD: attribute number */
	ValueConverter conv;		/* INPUT_RECORD: its type */
	bool		fast_float8;	/* INPUT_RECORD: float8 into a numeric column */
	int32		fixed_offset;	/* INPUT_RECORD: its offset in a row without
								 * NULLs, or -1 when a varlena precedes it */
} InputSource;

#define PREDICT_MEMO 8

/* A project this call site has resolved, and its model. */
typedef struct ProjectMemo
{
	char		name[NAMEDATALEN];
	int			len;
	Model	   *model;
} ProjectMemo;

typedef struct PredictCall
{
	bool		by_model;		/* first argument is a model id */
	InputForm	form;
	char		project[NAMEDATALEN];
	int			project_len;
	int64		model_id;
	Model	   *model;
	uint64		generation;		/* CacheGeneration the models were found at */
	ProjectMemo memo[PREDICT_MEMO];
	int			nmemo;
	MemoryContext map_cxt;		/* the input mapping; reset when it changes */
	uint64		relgen;			/* RelcacheGeneration the mapping was made at */
	/* input mapping, valid for model and (records) the row type below */
	Model	   *mapped_model;
	Oid			tuptype;
	int32		tuptypmod;
	TupleDesc	tupdesc;		/* a copy, for the life of the query */
	bool		all_float8;		/* every input is a float8 into a number */
	bool		all_fixed;		/* every input has a fixed offset */
	bool		keep_values;	/* fill values[] too (ml.explain shows them) */
	int			max_attnum;		/* highest attribute read */
	Datum	   *attvalues;		/* one deformed row */
	bool	   *attnulls;
	InputSource *sources;
	int			nsources;
	PipelineValue *values;
	double	   *x;
	double	   *out;
	double	   *array_buf;
} PredictCall;

/* A new prediction state in cxt. */
static PredictCall *
predict_call_new(MemoryContext cxt, bool by_model, InputForm form)
{
	PredictCall *pc = MemoryContextAllocZero(cxt, sizeof(PredictCall));

	pc->map_cxt = AllocSetContextCreate(cxt, "pgmaker prediction mapping", ALLOCSET_SMALL_SIZES);
	pc->by_model = by_model;
	pc->form = form;
	return pc;
}

/* Sets up the per-call-site state on the first call. */
static PredictCall *
predict_call(FunctionCallInfo fcinfo)
{
	PredictCall *pc = fcinfo->flinfo->fn_extra;

	if (pc == NULL)
	{
		Oid			addr_type = get_fn_expr_argtype(fcinfo->flinfo, 0);
		Oid			input_type = get_fn_expr_argtype(fcinfo->flinfo, 1);

		pc = predict_call_new(fcinfo->flinfo->fn_mcxt, addr_type == INT8OID,
							  input_type == JSONBOID ? INPUT_JSONB :
							  input_type == FLOAT8ARRAYOID ? INPUT_ARRAY : INPUT_RECORD);
		fcinfo->flinfo->fn_extra = pc;
	}
	return pc;
}

/* Finds the model for this row's first argument. */
/*
 * Finds the model for this row's first argument.  A call site keeps the
 * models it found, so a statement that switches between projects keeps
 * using the same model of each; they are looked up again only after the
 * cache learned of a catalog change (a later statement of a PL/pgSQL
 * loop, say, after a deployment or a drop).
 */
static Model *
predict_model(FunctionCallInfo fcinfo, PredictCall *pc)
{
	if (pc->generation != CacheGeneration)
	{
		pc->model = NULL;
		pc->nmemo = 0;
	}
	if (pc->by_model)
	{
		int64		id = PG_GETARG_INT64(0);

		if (pc->model == NULL || pc->model_id != id)
		{
			pc->model = CacheModel(id);
			pc->model_id = id;
			pc->generation = CacheGeneration;
		}
	}
	else
	{
		text	   *name = PG_GETARG_TEXT_PP(0);
		int			len = VARSIZE_ANY_EXHDR(name);

		/* the same project as the previous row: no lookup, no copy */
		if (pc->model == NULL || len != pc->project_len ||
			memcmp(VARDATA_ANY(name), pc->project, len) != 0)
		{
			ProjectMemo *memo = NULL;

			for (int i = 0; i < pc->nmemo && memo == NULL; i++)
				if (pc->memo[i].len == len &&
					memcmp(pc->memo[i].name, VARDATA_ANY(name), len) == 0)
					memo = &pc->memo[i];
			if (memo == NULL)
			{
				char	   *cname = text_to_cstring(name);
				Model	   *m = CacheProjectModel(cname);

				/* a lookup that learned of changes makes the others stale */
				if (pc->generation != CacheGeneration)
					pc->nmemo = 0;
				pc->generation = CacheGeneration;
				memo = &pc->memo[pc->nmemo < PREDICT_MEMO ? pc->nmemo++ : 0];
				strlcpy(memo->name, cname, NAMEDATALEN);
				memo->len = len;
				memo->model = m;
			}
			pc->model = memo->model;
			memcpy(pc->project, memo->name, len + 1);
			pc->project_len = len;
		}
	}
	return pc->model;
}

static char *
model_columns(const Model *m)
{
	StringInfoData buf;
	const char *last = NULL;
	int			shown = 0;

	initStringInfo(&buf);
	for (int i = 0; i < m->pipeline->ncolumns; i++)
	{
		const char *src = m->pipeline->columns[i].source;

		if (last && strcmp(last, src) == 0)
			continue;
		if (shown++ == 20)
		{
			appendStringInfoString(&buf, ", ...");
			break;
		}
		appendStringInfo(&buf, "%s%s", shown > 1 ? ", " : "", src);
		last = src;
	}
	return buf.data;
}

/* The pipeline's input names ("col", "arr[1]", ...), for hints. */
static char *
input_names(const Model *m)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < m->pipeline->ncolumns; i++)
	{
		if (i == 20)
		{
			appendStringInfoString(&buf, ", ...");
			break;
		}
		appendStringInfo(&buf, "%s%s", i ? ", " : "", m->pipeline->columns[i].name);
	}
	return buf.data;
}

static void
missing_input(const Model *m, const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("feature column \"%s\" is missing from the input", name),
			 errhint("The model was trained on columns: %s.", model_columns(m))));
}

/* Groups the pipeline's columns by the input column they come from. */
static void
map_sources(PredictCall *pc, Model *m, MemoryContext cxt)
{
	const Pipeline *pl = m->pipeline;

	cxt = pc->map_cxt;

	pc->sources = MemoryContextAllocZero(cxt, sizeof(InputSource) * Max(pl->ncolumns, 1));
	pc->nsources = 0;
	for (int i = 0; i < pl->ncolumns; i++)
	{
		const PipelineColumn *col = &pl->columns[i];
		InputSource *s = pc->nsources ? &pc->sources[pc->nsources - 1] : NULL;

		if (s && col->element > 1 && strcmp(s->name, col->source) == 0)
		{
			s->count++;
			continue;
		}
		s = &pc->sources[pc->nsources++];
		s->name = col->source;
		s->first = i;
		s->count = 1;
		s->is_array = col->element > 0;
	}
	pc->values = MemoryContextAllocZero(cxt, sizeof(PipelineValue) * Max(pl->ncolumns, 1));
	pc->x = MemoryContextAlloc(cxt, sizeof(double) * Max(pl->nfeatures, 1));
	pc->out = MemoryContextAlloc(cxt, sizeof(double) * Max(ModelOutputs(m), 1));
	pc->array_buf = MemoryContextAlloc(cxt, sizeof(double) * Max(pl->ncolumns, 1));
	pc->mapped_model = m;
}

static void
array_length_mismatch(const char *name, int got, int expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
			 errmsg("array column \"%s\" has %d elements but the model expects %d",
					name, got, expected)));
}

/* Stores a number for pipeline column i, checking it is one the model takes. */
static void
set_number(PredictCall *pc, const Pipeline *pl, int i, double v)
{
	const PipelineColumn *col = &pl->columns[i];

	ValueCheckFinite(v, col->name);
	pc->values[i].isnull = false;
	if (col->categorical)
		pc->values[i].str = psprintf("%s", float8out_internal(v));
	else
		pc->values[i].num = v;
}

static void
type_mismatch(const PipelineColumn *col, const char *given)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("column \"%s\" is %s but the model expects %s", col->name, given,
					col->categorical ? "a category (text)" : "a number")));
}

/* Maps the pipeline's input columns to the attributes of a row type. */
static void
map_record(FunctionCallInfo fcinfo, PredictCall *pc, Model *m, Oid tuptype,
		   int32 tuptypmod)
{
	MemoryContext cxt;
	const Pipeline *pl = m->pipeline;
	TupleDesc	tupdesc;
	MemoryContext old;

	/* a new mapping replaces the old one, memory included */
	MemoryContextReset(pc->map_cxt);
	cxt = pc->map_cxt;
	tupdesc = lookup_rowtype_tupdesc(tuptype, tuptypmod);
	old = MemoryContextSwitchTo(cxt);

	pc->tupdesc = CreateTupleDescCopy(tupdesc);
	ReleaseTupleDesc(tupdesc);
	tupdesc = pc->tupdesc;
	pc->attvalues = palloc(sizeof(Datum) * Max(tupdesc->natts, 1));
	pc->attnulls = palloc(sizeof(bool) * Max(tupdesc->natts, 1));
	MemoryContextSwitchTo(old);

	map_sources(pc, m, cxt);
	for (int s = 0; s < pc->nsources; s++)
	{
		InputSource *src = &pc->sources[s];

		src->attnum = 0;
		for (int a = 0; a < tupdesc->natts; a++)
		{
			Form_pg_attribute att = TupleDescAttr(tupdesc, a);

			if (!att->attisdropped && strcmp(NameStr(att->attname), src->name) == 0)
			{
				src->attnum = a + 1;
				ValueConverterInit(&src->conv, att->atttypid);
				break;
			}
		}
		if (src->attnum == 0)
			missing_input(m, src->name);
		if (src->is_array != (src->conv.kind == VALUE_ARRAY) ||
			src->conv.kind == VALUE_UNSUPPORTED)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" has type %s, which the model cannot use here",
							src->name, format_type_be(src->conv.typid)),
					 errhint("The model expects %s.", src->is_array ? "a numeric array" :
							 pl->columns[src->first].categorical ? "text" : "a number")));
		src->fast_float8 = src->conv.basetype == FLOAT8OID &&
			!pl->columns[src->first].categorical;
	}
	pc->all_float8 = true;
	pc->all_fixed = true;
	pc->max_attnum = 0;
	for (int s = 0; s < pc->nsources; s++)
	{
		InputSource *src = &pc->sources[s];
		int32		off = 0;

		pc->all_float8 &= src->fast_float8;
		pc->max_attnum = Max(pc->max_attnum, src->attnum);

		/* where the attribute lies in a row without NULLs, when fixed */
		for (int a = 0; a < src->attnum - 1 && off >= 0; a++)
		{
			Form_pg_attribute att = TupleDescAttr(tupdesc, a);

			if (att->attlen <= 0)
				off = -1;
			else
				off = att_align_nominal(off, att->attalign) + att->attlen;
		}
		if (off >= 0)
			off = att_align_nominal(off, TupleDescAttr(tupdesc, src->attnum - 1)->attalign);
		src->fixed_offset = off;
		pc->all_fixed &= off >= 0;
	}
	pc->tuptype = tuptype;
	pc->tuptypmod = tuptypmod;
	pc->relgen = RelcacheGeneration;
}

/*
 * Reads a record argument into pc->values; or, when every input is a
 * float8 feeding a numeric column, straight into the features pc->x, and
 * returns true.
 */
static bool
read_record(FunctionCallInfo fcinfo, PredictCall *pc, Model *m, HeapTupleHeader rec)
{
	Oid			tuptype = HeapTupleHeaderGetTypeId(rec);
	int32		tuptypmod = HeapTupleHeaderGetTypMod(rec);
	const Pipeline *pl = m->pipeline;
	HeapTupleData tuple;

	/* remap when the model or row type changed, or a relation's layout may have */
	if (pc->mapped_model != m || pc->tuptype != tuptype || pc->tuptypmod != tuptypmod ||
		pc->relgen != RelcacheGeneration)
		map_record(fcinfo, pc, m, tuptype, tuptypmod);

	/*
	 * The common case, float8 columns and a row without NULLs that holds
	 * every attribute read (a value stored before its type gained columns
	 * holds fewer): read each value at its offset, without deforming.
	 */
	if (pc->all_float8 && pc->all_fixed && !pc->keep_values &&
		!(rec->t_infomask & HEAP_HASNULL) &&
		HeapTupleHeaderGetNatts(rec) >= pc->max_attnum)
	{
		const char *data = (const char *) rec + rec->t_hoff;

		for (int s = 0; s < pc->nsources; s++)
		{
			const InputSource *src = &pc->sources[s];
			const PipelineColumn *col = &pl->columns[src->first];
			double		v;

			memcpy(&v, data + src->fixed_offset, sizeof(double));
			if (unlikely(isnan(v) || isinf(v)))
				ValueCheckFinite(v, src->name);
			pc->x[col->first_feature] = PipelineTransformNumber(col, v);
		}
		return true;
	}

	tuple.t_len = HeapTupleHeaderGetDatumLength(rec);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = rec;
	heap_deform_tuple(&tuple, pc->tupdesc, pc->attvalues, pc->attnulls);

	if (pc->all_float8 && !pc->keep_values)
	{
		for (int s = 0; s < pc->nsources; s++)
		{
			const InputSource *src = &pc->sources[s];
			const PipelineColumn *col = &pl->columns[src->first];
			double		v = NAN;

			if (!pc->attnulls[src->attnum - 1])
			{
				v = DatumGetFloat8(pc->attvalues[src->attnum - 1]);
				if (unlikely(isnan(v) || isinf(v)))
					ValueCheckFinite(v, src->name);
			}
			pc->x[col->first_feature] = PipelineTransformNumber(col, v);
		}
		return true;
	}

	for (int s = 0; s < pc->nsources; s++)
	{
		InputSource *src = &pc->sources[s];
		Datum		d = pc->attvalues[src->attnum - 1];

		if (pc->attnulls[src->attnum - 1])
		{
			for (int k = 0; k < src->count; k++)
				pc->values[src->first + k].isnull = true;
			continue;
		}
		if (src->fast_float8)
		{
			double		v = DatumGetFloat8(d);

			if (unlikely(isnan(v) || isinf(v)))
				ValueCheckFinite(v, src->name);
			pc->values[src->first].isnull = false;
			pc->values[src->first].num = v;
			continue;
		}
		if (src->is_array)
		{
			int			n = ValueArrayToDoubles(&src->conv, d, pc->array_buf,
												src->count, src->name);

			if (n != src->count)
				array_length_mismatch(src->name, n, src->count);
			for (int k = 0; k < src->count; k++)
			{
				pc->values[src->first + k].isnull = isnan(pc->array_buf[k]);
				if (!isnan(pc->array_buf[k]))
					set_number(pc, pl, src->first + k, pc->array_buf[k]);
			}
			continue;
		}
		if (src->conv.kind == VALUE_NUMERIC)
			set_number(pc, pl, src->first, ValueToDouble(&src->conv, d));
		else if (pl->columns[src->first].categorical)
		{
			pc->values[src->first].isnull = false;
			pc->values[src->first].str = ValueToCString(&src->conv, d);
		}
		else
			type_mismatch(&pl->columns[src->first], format_type_be(src->conv.typid));
	}
	return false;
}

/*
 * Reads a float8[] argument, one value per input column in model order,
 * straight into the features pc->x (the columns are all numeric); returns
 * true.
 */
static bool
read_array(FunctionCallInfo fcinfo, PredictCall *pc, Model *m)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
	const Pipeline *pl = m->pipeline;
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (pc->mapped_model != m)
	{
		for (int i = 0; i < pl->ncolumns; i++)
		{
			if (pl->columns[i].categorical)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("the model has categorical column \"%s\", which a float8[] cannot carry",
								pl->columns[i].name),
						 errhint("Pass a record or a jsonb object instead.")));
			if (pl->columns[i].derive != DERIVE_NONE)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("the model derives date parts from column \"%s\", which a float8[] cannot carry",
								pl->columns[i].source),
						 errhint("Pass a record or a jsonb object instead.")));
		}
		MemoryContextReset(pc->map_cxt);
		map_sources(pc, m, pc->map_cxt);
	}
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("features must be a one-dimensional array")));
	deconstruct_array(arr, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &nulls, &n);
	if (n != pl->ncolumns)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("expected %d features, got %d", pl->ncolumns, n),
				 errhint("The array gives one value per input feature in training order: %s.",
						 input_names(m))));
	for (int i = 0; i < n; i++)
	{
		const PipelineColumn *col = &pl->columns[i];
		double		v = NAN;

		if (!nulls[i])
		{
			v = DatumGetFloat8(elems[i]);
			if (unlikely(isnan(v) || isinf(v)))
				ValueCheckFinite(v, col->name);
		}
		pc->values[i].isnull = nulls[i];
		pc->values[i].num = v;
		pc->x[col->first_feature] = PipelineTransformNumber(col, v);
	}
	return true;
}

/* Stores one scalar jsonb value for pipeline column i. */
static void
jsonb_scalar(PredictCall *pc, const Pipeline *pl, int i, JsonbValue *v)
{
	const PipelineColumn *col = &pl->columns[i];
	double		d;

	if (v->type == jbvNull)
	{
		pc->values[i].isnull = true;
		return;
	}
	if (col->categorical)
	{
		char	   *s = JsonbValueToCString(v);

		if (s == NULL)
			type_mismatch(col, JsonbValueTypeName(v));
		pc->values[i].isnull = false;
		pc->values[i].str = s;
		return;
	}
	if (v->type == jbvBool)
		d = v->val.boolean ? 1.0 : 0.0;
	else if (v->type == jbvString)
		d = ValueFromText(col->value_type, JsonbValueToCString(v));
	else if (!JsonbValueToDouble(v, &d))
		type_mismatch(col, JsonbValueTypeName(v));
	set_number(pc, pl, i, d);
}

/* Reads a jsonb object argument: keys matched by column name. */
static bool
read_jsonb(FunctionCallInfo fcinfo, PredictCall *pc, Model *m)
{
	Jsonb	   *obj = PG_GETARG_JSONB_P(1);
	const Pipeline *pl = m->pipeline;

	if (!JB_ROOT_IS_OBJECT(obj))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features must be a jsonb object keyed by column name")));
	if (pc->mapped_model != m)
	{
		MemoryContextReset(pc->map_cxt);
		map_sources(pc, m, pc->map_cxt);
	}

	for (int s = 0; s < pc->nsources; s++)
	{
		InputSource *src = &pc->sources[s];
		JsonbValue	key;
		JsonbValue *v;

		key.type = jbvString;
		key.val.string.val = (char *) src->name;
		key.val.string.len = strlen(src->name);
		v = findJsonbValueFromContainer(&obj->root, JB_FOBJECT, &key);
		if (v == NULL)
			missing_input(m, src->name);
		if (!src->is_array || v->type == jbvNull)
		{
			for (int k = 0; k < src->count; k++)
				jsonb_scalar(pc, pl, src->first + k, v);
			continue;
		}
		if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" is %s but the model expects an array of %d numbers",
							src->name, JsonbValueTypeName(v), src->count)));
		{
			JsonbIterator *it = JsonbIteratorInit(v->val.binary.data);
			JsonbValue	elem;
			JsonbIteratorToken tok;
			int			k = 0;

			while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
			{
				if (tok != WJB_ELEM)
					continue;
				if (k < src->count)
					jsonb_scalar(pc, pl, src->first + k, &elem);
				k++;
			}
			if (k != src->count)
				array_length_mismatch(src->name, k, src->count);
		}
	}
	return false;
}

/* Predicts one input: fills pc->out with the model's outputs. */
static Model *
predict_row(FunctionCallInfo fcinfo)
{
	PredictCall *pc = predict_call(fcinfo);
	Model	   *m = predict_model(fcinfo, pc);

	bool		transformed = false;

	switch (pc->form)
	{
		case INPUT_RECORD:
			transformed = read_record(fcinfo, pc, m, PG_GETARG_HEAPTUPLEHEADER(1));
			break;
		case INPUT_ARRAY:
			transformed = read_array(fcinfo, pc, m);
			break;
		case INPUT_JSONB:
			transformed = read_jsonb(fcinfo, pc, m);
			break;
	}
	if (!transformed)
		PipelineTransformValues(m->pipeline, pc->values, pc->x);
	else if (m->pipeline->ninteractions > 0)
		PipelineTransformInteractions(m->pipeline, pc->x, 1, 1);
	ModelPredictBlock(m, pc->x, 1, 1, pc->out);
	return m;
}

static void
require_classification(FunctionCallInfo fcinfo, const Model *m, const char *fn)
{
	if (m->task != ML_TASK_CLASSIFICATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s needs a classification model, but model %lld does %s",
						fn, (long long) m->id, MLTaskName(m->task)),
				 errhint("Use ml.predict for this model.")));
}

/* Whether this call is in the sample of the given rate. */
static bool
capture_sampled(double rate)
{
	if (rate >= 1)
		return true;
#if PG_VERSION_NUM >= 150000
	return pg_prng_double(&pg_global_prng_state) < rate;
#else
	return (double) random() / ((double) MAX_RANDOM_VALUE + 1) < rate;
#endif
}

/*
 * capture_record_json writes the model's input columns of a row as a JSON
 * object: numbers (integers exactly) and booleans as JSON values, dates
 * and times as ISO 8601 strings, text as strings, arrays as JSON arrays.  Only the columns
 * the model reads, so that a capture costs little.
 */
static char *
capture_record_json(HeapTupleHeader rec, PredictCall *pc)
{
	HeapTupleData tuple;
	StringInfoData buf;

	tuple.t_len = HeapTupleHeaderGetDatumLength(rec);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = rec;
	heap_deform_tuple(&tuple, pc->tupdesc, pc->attvalues, pc->attnulls);

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < pc->nsources; i++)
	{
		const InputSource *src = &pc->sources[i];
		Datum		d = pc->attvalues[src->attnum - 1];

		if (i > 0)
			appendStringInfoChar(&buf, ',');
		escape_json(&buf, src->name);
		appendStringInfoChar(&buf, ':');
		if (pc->attnulls[src->attnum - 1])
		{
			appendStringInfoString(&buf, "null");
			continue;
		}
		switch (src->conv.kind == VALUE_ARRAY ? InvalidOid : src->conv.basetype)
		{
			case FLOAT8OID:
			case FLOAT4OID:
				{
					double		v = ValueToDouble(&src->conv, d);

					if (isfinite(v))
						appendStringInfoString(&buf, float8out_internal(v));
					else
						appendStringInfoString(&buf, "null");
				}
				break;
			case INT2OID:
				appendStringInfo(&buf, "%d", (int) DatumGetInt16(d));
				break;
			case INT4OID:
				appendStringInfo(&buf, "%d", DatumGetInt32(d));
				break;
			case INT8OID:
				appendStringInfo(&buf, INT64_FORMAT, DatumGetInt64(d));
				break;
			case DATEOID:
			case TIMESTAMPOID:
			case TIMESTAMPTZOID:
				{
					/* ISO 8601, whatever DateStyle says, so that it reads back */
					char		iso[MAXDATELEN + 1];

					appendStringInfoChar(&buf, '"');
					appendStringInfoString(&buf, JsonEncodeDateTime(iso, d, src->conv.basetype, NULL));
					appendStringInfoChar(&buf, '"');
				}
				break;
			case BOOLOID:
				appendStringInfoString(&buf, DatumGetBool(d) ? "true" : "false");
				break;
			case InvalidOid:
				appendStringInfoString(&buf, text_to_cstring(DatumGetTextPP(DirectFunctionCall1(array_to_json, d))));
				break;
			default:
				{
					Oid			out;
					bool		varlena;

					getTypeOutputInfo(src->conv.typid, &out, &varlena);
					escape_json(&buf, OidOutputFunctionCall(out, d));
				}
				break;
		}
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * capture_input hands the call's input, as JSON text, and its output to
 * the capture ring: a row's input columns as an object, an array as a
 * JSON array, a jsonb object as it is.
 */
static void
capture_input(FunctionCallInfo fcinfo, PredictCall *pc, const Model *m, double value)
{
	char	   *json;

	switch (pc->form)
	{
		case INPUT_RECORD:
			json = capture_record_json(PG_GETARG_HEAPTUPLEHEADER(1), pc);
			break;
		case INPUT_ARRAY:
			json = text_to_cstring(DatumGetTextPP(DirectFunctionCall1(array_to_json, PG_GETARG_DATUM(1))));
			break;
		default:
			{
				Jsonb	   *jb = PG_GETARG_JSONB_P(1);

				json = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
			}
			break;
	}
	CaptureWrite(m->id, value, json, strlen(json));
}

/*
 * ml_predict returns the regression value, or the predicted class: its
 * label when labels are numeric or boolean, else its index in ml.labels.
 */
Datum
ml_predict(PG_FUNCTION_ARGS)
{
	Model	   *m = predict_row(fcinfo);
	PredictCall *pc = fcinfo->flinfo->fn_extra;
	double		value = ModelPredictValue(m, pc->out);

	if (unlikely(m->capture_rate > 0) && capture_sampled(m->capture_rate))
		capture_input(fcinfo, pc, m, value);
	PG_RETURN_FLOAT8(value);
}

/*
 * ml_predict_label returns the predicted class label as text.
 */
Datum
ml_predict_label(PG_FUNCTION_ARGS)
{
	Model	   *m = predict_row(fcinfo);
	PredictCall *pc = fcinfo->flinfo->fn_extra;

	require_classification(fcinfo, m, "ml.predict_label");
	PG_RETURN_TEXT_P(cstring_to_text(m->labels[ModelPredictClass(m, pc->out)]));
}

/*
 * ml_predict_proba returns the probability of every class, in the order
 * of ml.labels.
 */
Datum
ml_predict_proba(PG_FUNCTION_ARGS)
{
	Model	   *m = predict_row(fcinfo);
	PredictCall *pc = fcinfo->flinfo->fn_extra;
	Datum	   *d;

	require_classification(fcinfo, m, "ml.predict_proba");
	if (m->fitted->spec->scores_only)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("model %lld (%s) does not estimate probabilities",
						(long long) m->id, m->fitted->spec->name),
				 errhint("Use ml.predict_label, or train an algorithm with probabilities such as logistic.")));
	d = palloc(sizeof(Datum) * m->nclasses);
	for (int c = 0; c < m->nclasses; c++)
		d[c] = Float8GetDatum(pc->out[c]);
	PG_RETURN_ARRAYTYPE_P(construct_array(d, m->nclasses, FLOAT8OID, 8,
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* What ml._predict_batch computed, handed out one row per call. */
typedef struct PredictBatch
{
	Model	   *model;
	int			n;
	double	   *out;			/* n x outputs, row-major */
} PredictBatch;

/*
 * ml_predict_batch is ml._predict_batch(model_id, rows, batch_size): the
 * predictions of an array of rows, predicted batch_size rows per call of
 * the model (all at once when 0), so that a model served by a container
 * gets whole batches.  Returns (ord, prediction, label, probabilities),
 * ord counting the rows from 1; label and probabilities only for
 * classification.  STRICT: no rows for a NULL array.
 */
Datum
ml_predict_batch(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	PredictBatch *pb;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext old;
		PredictCall *pc;
		Model	   *m;
		ArrayType  *arr;
		Oid			elemtype;
		int16		typlen;
		bool		typbyval;
		char		typalign;
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			batch = PG_GETARG_INT32(2);
		int			p;
		int			width;
		double	   *X;
		TupleDesc	tupdesc;

		if (batch < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("batch_size must not be negative")));
		funcctx = SRF_FIRSTCALL_INIT();
		old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "ml._predict_batch must return a row");
		funcctx->tuple_desc = BlessTupleDesc(tupdesc);

		/* fn_extra holds the SRF's state: this call's own prediction state */
		pc = predict_call_new(funcctx->multi_call_memory_ctx, true, INPUT_RECORD);
		m = predict_model(fcinfo, pc);
		arr = PG_GETARG_ARRAYTYPE_P(1);
		elemtype = ARR_ELEMTYPE(arr);
		if (!type_is_rowtype(elemtype))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("rows must be an array of rows, not %s", format_type_be(ARR_ELEMTYPE(arr)))));
		get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
		deconstruct_array(arr, elemtype, typlen, typbyval, typalign, &elems, &nulls, &n);

		p = m->pipeline->nfeatures;
		width = ModelOutputs(m);
		X = palloc(sizeof(double) * Max((int64) n * p, 1));
		for (int i = 0; i < n; i++)
		{
			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("row %d of rows is NULL", i + 1)));
			if (!read_record(fcinfo, pc, m, DatumGetHeapTupleHeader(elems[i])))
				PipelineTransformValues(m->pipeline, pc->values, pc->x);
			else if (m->pipeline->ninteractions > 0)
				PipelineTransformInteractions(m->pipeline, pc->x, 1, 1);
			for (int j = 0; j < p; j++)
				X[i + (int64) j * n] = pc->x[j];
			CHECK_FOR_INTERRUPTS();
		}

		pb = palloc(sizeof(PredictBatch));
		pb->model = m;
		pb->n = n;
		pb->out = palloc(sizeof(double) * Max((int64) n * width, 1));
		if (batch == 0)
			batch = Max(n, 1);
		for (int from = 0; from < n; from += batch)
			ModelPredictBlock(m, X + from, Min(batch, n - from), n, pb->out + (int64) from * width);
		funcctx->user_fctx = pb;
		MemoryContextSwitchTo(old);
	}

	funcctx = SRF_PERCALL_SETUP();
	pb = funcctx->user_fctx;
	if (funcctx->call_cntr < (uint64) pb->n)
	{
		int			i = (int) funcctx->call_cntr;
		Model	   *m = pb->model;
		const double *o = pb->out + (int64) i * ModelOutputs(m);
		Datum		values[4];
		bool		isnull[4] = {false, false, false, false};

		values[0] = Int32GetDatum(i + 1);
		values[1] = Float8GetDatum(ModelPredictValue(m, o));
		if (m->task == ML_TASK_CLASSIFICATION)
		{
			Datum	   *d = palloc(sizeof(Datum) * m->nclasses);

			values[2] = CStringGetTextDatum(m->labels[ModelPredictClass(m, o)]);
			for (int c = 0; c < m->nclasses; c++)
				d[c] = Float8GetDatum(o[c]);
			if (m->fitted->spec->scores_only)
				isnull[3] = true;
			else
				values[3] = PointerGetDatum(construct_array(d, m->nclasses, FLOAT8OID, 8,
															FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		}
		else
			isnull[2] = isnull[3] = true;
		SRF_RETURN_NEXT(funcctx, HeapTupleGetDatum(heap_form_tuple(funcctx->tuple_desc, values, isnull)));
	}
	SRF_RETURN_DONE(funcctx);
}

/*
 * ml_embed returns a row's coordinates in the model's space: the distance
 * to each cluster's centre (clustering) or the projection on each
 * component (decomposition).
 */
Datum
ml_embed(PG_FUNCTION_ARGS)
{
	Model	   *m = predict_row(fcinfo);
	PredictCall *pc = fcinfo->flinfo->fn_extra;
	int			k = ModelOutputs(m);
	Datum	   *d;

	if (m->task != ML_TASK_CLUSTERING && m->task != ML_TASK_DECOMPOSITION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("ml.embed needs a clustering or decomposition model, but model %lld does %s",
						(long long) m->id, MLTaskName(m->task)),
				 errhint("Use ml.predict for this model.")));
	d = palloc(sizeof(Datum) * k);
	for (int c = 0; c < k; c++)
		d[c] = Float8GetDatum(pc->out[c]);
	PG_RETURN_ARRAYTYPE_P(construct_array(d, k, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* The model addressed by argument 0: a project's live model or a model id. */
static Model *
addressed_model(FunctionCallInfo fcinfo)
{
	if (get_fn_expr_argtype(fcinfo->flinfo, 0) == INT8OID)
		return CacheModel(PG_GETARG_INT64(0));
	return CacheProjectModel(text_to_cstring(PG_GETARG_TEXT_PP(0)));
}

/*
 * ml_labels returns the class labels of a classification model, in the
 * order of ml.predict_proba; NULL for other tasks.
 */
Datum
ml_labels(PG_FUNCTION_ARGS)
{
	Model	   *m = addressed_model(fcinfo);
	Datum	   *d;

	if (m->task != ML_TASK_CLASSIFICATION)
		PG_RETURN_NULL();
	d = palloc(sizeof(Datum) * m->nclasses);
	for (int c = 0; c < m->nclasses; c++)
		d[c] = CStringGetTextDatum(m->labels[c]);
	PG_RETURN_ARRAYTYPE_P(construct_array(d, m->nclasses, TEXTOID, -1, false,
										  TYPALIGN_INT));
}

/*
 * Adds "centroids_raw": each cluster's centre in the units of the source
 * columns, the pipeline's scaling undone (a transformed value is
 * (x - center) / scale_by).  One-hot features, a cluster's share of rows
 * in each category, are the same in both units.
 */
static void
describe_centroids_raw(const Model *m, JsonbParseState **st)
{
	const Pipeline *pl = m->pipeline;
	const double *centres = m->fitted->spec->centres(m->fitted);

	JbKey(st, "centroids_raw");
	JbBeginArray(st);
	for (int c = 0; c < m->fitted->noutputs; c++)
	{
		const double *v = centres + (Size) c * pl->nfeatures;

		JbBeginObject(st);
		for (int i = 0; i < pl->ncolumns; i++)
		{
			const PipelineColumn *col = &pl->columns[i];

			for (int f = 0; f < col->nfeatures; f++)
			{
				int			j = col->first_feature + f;

				JbKey(st, pl->feature_names[j]);
				JbFloat(st, col->categorical ? v[j] : col->center + col->scale_by * v[j]);
			}
		}
		JbEndObject(st);
	}
	JbEndArray(st);
}

/*
 * ml_model_info describes a model: algorithm, task, labels, features and
 * what the algorithm learned (coefficients, intercepts, ...).
 */
Datum
ml_model_info(PG_FUNCTION_ARGS)
{
	int64		model_id = PG_GETARG_INT64(0);
	Model	   *m = CacheModel(model_id);
	JsonbParseState *st = NULL;
	int64		project_id;
	ProjectInfo project;

	CatalogModelAlgorithm(model_id, &project_id);
	CatalogProjectById(project_id, &project);

	JbBeginObject(&st);
	JbKey(&st, "model_id");
	JbInt(&st, model_id);
	JbKey(&st, "project");
	JbString(&st, project.name);
	JbKey(&st, "algorithm");
	JbString(&st, m->fitted->spec->name);
	JbKey(&st, "task");
	JbString(&st, MLTaskName(m->task));
	if (m->task == ML_TASK_CLASSIFICATION)
	{
		JbKey(&st, "labels");
		JbBeginArray(&st);
		for (int c = 0; c < m->nclasses; c++)
			JbString(&st, m->labels[c]);
		JbEndArray(&st);
	}
	JbKey(&st, "features");
	JbBeginArray(&st);
	for (int j = 0; j < m->pipeline->nfeatures; j++)
		JbString(&st, m->pipeline->feature_names[j]);
	JbEndArray(&st);
	m->fitted->spec->describe(m->fitted, m->pipeline->feature_names, m->labels, &st);
	if (m->task == ML_TASK_CLUSTERING && m->fitted->spec->centres)
		describe_centroids_raw(m, &st);
	PG_RETURN_JSONB_P(JbFinishObject(&st));
}

/*
 * ml_explain splits one prediction into the contributions of the input
 * columns (the one-hot features of a column summed back to it) and the
 * bias, which add up to the model's raw output: the value for
 * regression, the margin (log-odds) of the positive class for binary
 * classification, and of the predicted class for multiclass, whose label
 * the bias row's value names.
 */
Datum
ml_explain(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PredictCall *pc = predict_call(fcinfo);
	Model	   *m;
	const Pipeline *pl;
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	MemoryContext old;
	double	   *contrib;
	double		bias;
	int			cls = 0;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ml.explain must be called in a context that accepts a set")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "ml.explain must return a composite type");

	pc->keep_values = true;
	m = predict_row(fcinfo);
	pl = m->pipeline;
	if (m->fitted->spec->explain == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ml.explain does not support algorithm %s", m->fitted->spec->name)));
	if (m->task == ML_TASK_CLASSIFICATION)
		cls = ModelPredictClass(m, pc->out);
	contrib = palloc(sizeof(double) * Max(pl->nfeatures, 1));
	bias = m->fitted->spec->explain(m->fitted, pc->x, cls, contrib);

	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	tupdesc = CreateTupleDescCopy(tupdesc);
	store = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = tupdesc;
	MemoryContextSwitchTo(old);

	for (int i = 0; i < pl->ncolumns; i++)
	{
		const PipelineColumn *col = &pl->columns[i];
		const PipelineValue *v = &pc->values[i];
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		double		sum = 0.0;

		for (int f = 0; f < col->nfeatures; f++)
			sum += contrib[col->first_feature + f];
		values[0] = CStringGetTextDatum(col->name);
		if (v->isnull)
			nulls[1] = true;
		else
			values[1] = CStringGetTextDatum(col->categorical ? v->str :
											float8out_internal(PipelineDerivedValue(col, v->num)));
		values[2] = Float8GetDatum(sum);
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	for (int t = 0; t < pl->ninteractions; t++)
	{
		int			f = pl->nfeatures - pl->ninteractions + t;
		Datum		values[3];
		bool		nulls[3] = {false, true, false};

		values[0] = CStringGetTextDatum(pl->feature_names[f]);
		values[2] = Float8GetDatum(contrib[f]);
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = CStringGetTextDatum("<bias>");
		if (m->task == ML_TASK_CLASSIFICATION)
			values[1] = CStringGetTextDatum(m->labels[m->nclasses == 2 ? 1 : cls]);
		else
			nulls[1] = true;
		values[2] = Float8GetDatum(bias);
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * ml_transform shows what the project's live model sees: for every row of
 * a source, the features its pipeline produces (imputed, scaled, encoded),
 * with their names.  ml.predict on a raw row equals the model applied to
 * these features.
 */
Datum
ml_transform(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *project = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *source = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Model	   *m;
	const Pipeline *pl;
	DataSet    *ds;
	PipelineBinding *b;
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	MemoryContext old;
	Datum	   *names;
	Datum		names_array;
	double	   *X;
	int64	   *rows;
	int			p;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ml.transform must be called in a context that accepts a set")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "ml.transform must return a composite type");

	m = CacheProjectModel(project);
	pl = m->pipeline;
	p = pl->nfeatures;
	ds = ReaderLoad(source, NULL, NIL);
	b = PipelineBind(pl, ds);

	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	tupdesc = CreateTupleDescCopy(tupdesc);
	store = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = tupdesc;
	MemoryContextSwitchTo(old);

	names = palloc(sizeof(Datum) * Max(p, 1));
	for (int j = 0; j < p; j++)
		names[j] = CStringGetTextDatum(pl->feature_names[j]);
	names_array = PointerGetDatum(construct_array(names, p, TEXTOID, -1, false, TYPALIGN_INT));

	X = palloc(sizeof(double) * TRAIN_BLOCK_ROWS * Max(p, 1));
	rows = palloc(sizeof(int64) * TRAIN_BLOCK_ROWS);
	for (int64 start = 0; start < ds->nrows; start += TRAIN_BLOCK_ROWS)
	{
		int			count = (int) Min((int64) TRAIN_BLOCK_ROWS, ds->nrows - start);
		Datum	   *vals = palloc(sizeof(Datum) * Max(p, 1));

		for (int i = 0; i < count; i++)
			rows[i] = start + i;
		PipelineTransformBlock(b, rows, count, X, count);
		for (int i = 0; i < count; i++)
		{
			Datum		values[3];
			bool		nulls[3] = {false, false, false};

			for (int j = 0; j < p; j++)
				vals[j] = Float8GetDatum(X[(Size) j * count + i]);
			values[0] = Int64GetDatum(start + i + 1);
			values[1] = PointerGetDatum(construct_array(vals, p, FLOAT8OID, 8,
														FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			values[2] = names_array;
			tuplestore_putvalues(store, tupdesc, values, nulls);
		}
		pfree(vals);
		CHECK_FOR_INTERRUPTS();
	}
	return (Datum) 0;
}
