/*-------------------------------------------------------------------------
 * src/data/tables.c
 *		New tables written from a source: name resolution, source checks
 *		and generated statements shared with ml.clean (clean.c), and
 *		ml.split, which writes a source's train/test split into two tables.
 *
 * ml.split reads the source once through a cursor planned exactly as the
 * reader plans ml.train's, so it sees the rows in the same order; it keeps
 * them in a tuplestore (spilling to disk past work_mem) with each row's
 * class, then deals them out with SplitRows (split.c).  Its test rows are
 * therefore the rows ml.train holds out for the same source, seed and
 * test_size when stratify is the target.  The new tables are created with
 * CREATE TABLE AS ... WITH NO DATA and filled straight through the table
 * access method, as CREATE TABLE AS fills its own table.
 *-------------------------------------------------------------------------
 */
#include "data/data.h"

#include <math.h>

#include "access/detoast.h"
#include "access/heapam.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/shortest_dec.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "tcop/pquery.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/portal.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"
#include "utils/varlena.h"

PG_FUNCTION_INFO_V1(ml_split);

#define SPLIT_BATCH_ROWS 10000

/*
 * NewTableResolve resolves the name of a table to create as CREATE TABLE
 * would: its creation schema, its quoted name, and the relation of that
 * name if one exists already.
 */
void
NewTableResolve(const char *arg, const char *what, NewTable *t)
{
	List	   *names;
	RangeVar   *rv;

	if (*arg == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", what)));
	names = textToQualifiedNameList(cstring_to_text(arg));
	rv = makeRangeVarFromNameList(names);
	t->arg = arg;
	t->nsp = RangeVarGetCreationNamespace(rv);
	t->relname = rv->relname;
	t->qualified = quote_qualified_identifier(get_namespace_name(t->nsp), t->relname);
	t->existing = get_relname_relid(t->relname, t->nsp);
}

/*
 * NewTableExistsError reports that a table to create exists already.
 */
void
NewTableExistsError(const NewTable *t, bool can_replace)
{
	ereport(ERROR,
			(errcode(ERRCODE_DUPLICATE_TABLE),
			 errmsg("relation \"%s\" already exists", t->arg),
			 can_replace ?
			 errhint("Choose another name, drop it first, or pass options => '{\"replace\": true}'.") :
			 errhint("Choose another name or drop it first.")));
}

/*
 * SourcePrepare prepares a source query as a cursor, and checks that it
 * is one query that only reads and that its columns have distinct names:
 * the one way ml.train, ml.profile, ml.clean and ml.split open sources.
 */
CachedPlanSource *
SourcePrepare(const char *query, SPIPlanPtr *plan_out)
{
	SPIPlanPtr	plan = SPI_prepare_cursor(query, 0, NULL, CURSOR_OPT_NO_SCROLL);
	List	   *sources;
	CachedPlanSource *ps;
	ListCell   *lc;
	TupleDesc	desc;

	if (plan == NULL)
		elog(ERROR, "SPI_prepare_cursor failed: %s", SPI_result_code_string(SPI_result));
	sources = SPI_plan_get_plan_sources(plan);
	if (list_length(sources) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source must be a single query")));
	ps = linitial(sources);
	foreach(lc, ps->query_list)
	{
		Query	   *q = lfirst_node(Query, lc);

		if (q->commandType != CMD_SELECT || q->hasModifyingCTE || q->utilityStmt != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("source must be a query that only reads"),
					 errhint("The source is only read: write the data first, then use it.")));
	}
	desc = ps->resultDesc;
	for (int i = 0; i < desc->natts; i++)
		for (int j = 0; j < i; j++)
			if (strcmp(NameStr(TupleDescAttr(desc, i)->attname),
					   NameStr(TupleDescAttr(desc, j)->attname)) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("the source has more than one column named \"%s\"",
								NameStr(TupleDescAttr(desc, i)->attname)),
						 errhint("Give every column of the source query a distinct name.")));
	*plan_out = plan;
	return ps;
}

/*
 * DataRunStatement runs one generated statement through SPI; it must be
 * exactly one statement.
 */
void
DataRunStatement(const char *sql, int expected)
{
	SPIPlanPtr	plan = SPI_prepare(sql, 0, NULL);
	int			rc;

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (list_length(SPI_plan_get_plan_sources(plan)) != 1)
		elog(ERROR, "generated statement is not a single statement");
	rc = SPI_execute_plan(plan, NULL, NULL, false, 0);
	if (rc != expected)
		elog(ERROR, "generated statement failed (%s)", SPI_result_code_string(rc));
	SPI_freeplan(plan);
}

/*
 * NewTableCreate creates an empty table with the columns of a SELECT list
 * over the source (aliased s), with their types, typmods and collations.
 */
void
NewTableCreate(const NewTable *t, const char *select_list, const char *query)
{
	DataRunStatement(psprintf("CREATE TABLE %s AS SELECT %s FROM (\n%s\n) s WITH NO DATA",
							  t->qualified, select_list, query),
					 SPI_OK_UTILITY);
}

/*
 * DataTextArg reads a text argument that must not be NULL.
 */
char *
DataTextArg(FunctionCallInfo fcinfo, int i, const char *name)
{
	if (PG_ARGISNULL(i))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
	return text_to_cstring(PG_GETARG_TEXT_PP(i));
}

/* Lists the source's columns, for a hint. */
static char *
describe_columns(TupleDesc desc)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < desc->natts && i < 20; i++)
		appendStringInfo(&buf, "%s%s", i ? ", " : "", NameStr(TupleDescAttr(desc, i)->attname));
	if (desc->natts > 20)
		appendStringInfoString(&buf, ", ...");
	return buf.data;
}

/*
 * SourceFindColumn returns the 0-based position of a column of the source;
 * a missing column is an error that says who asked for it.
 */
int
SourceFindColumn(TupleDesc desc, const char *name, const char *what)
{
	for (int i = 0; i < desc->natts; i++)
		if (strcmp(NameStr(TupleDescAttr(desc, i)->attname), name) == 0)
			return i;
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("%s names column \"%s\", which is not in the source", what, name),
			 errhint("The source has columns: %s.", describe_columns(desc))));
	return -1;					/* keep compiler quiet */
}

/* ----------------------------------------------------------------------
 * ml.split
 * ----------------------------------------------------------------------
 */

/* A class of the stratify column: its key and its index. */
typedef struct ClassEntry
{
	char	   *key;			/* must be first */
	int			index;
} ClassEntry;

/* Hashes and compares class keys, which are C strings. */
static uint32
class_hash(const void *key, Size keysize)
{
	const char *s = *(const char *const *) key;

	return hash_bytes((const unsigned char *) s, strlen(s));
}

static int
class_match(const void *key1, const void *key2, Size keysize)
{
	return strcmp(*(const char *const *) key1, *(const char *const *) key2);
}

/* Receives the source's rows: keeps them, and each row's class. */
typedef struct SplitReceiver
{
	DestReceiver pub;
	MemoryContext cxt;			/* long-lived: rows, classes */
	MemoryContext row_cxt;		/* reset after every batch */
	Tuplestorestate *store;
	Datum	   *values;
	bool	   *nulls;
	int			stratify;		/* 0-based attribute, -1 for none */
	ValueConverter conv;
	HTAB	   *classes;
	List	   *labels;			/* of char *, in order of first appearance */
	int32	   *row_class;		/* -1 = NULL */
	int64		nrows;
	int64		cap;
} SplitReceiver;

/* The class of a stratify value: the text of a category, the number of a numeric. */
static int
split_class_of(SplitReceiver *sr, Datum value)
{
	char	   *key;
	ClassEntry *entry;
	bool		found;

	if (sr->conv.kind == VALUE_CATEGORICAL)
		key = ValueToCString(&sr->conv, value);
	else
	{
		double		d = ValueToDouble(&sr->conv, value);

		/* the shortest exact decimal: equal numbers, equal keys */
		key = palloc(DOUBLE_SHORTEST_DECIMAL_LEN);
		double_to_shortest_decimal_buf(d == 0 ? 0.0 : d, key);
	}
	entry = hash_search(sr->classes, &key, HASH_ENTER, &found);
	if (!found)
	{
		MemoryContext old = MemoryContextSwitchTo(sr->cxt);

		entry->key = pstrdup(key);
		entry->index = list_length(sr->labels);
		sr->labels = lappend(sr->labels,
							 sr->conv.kind == VALUE_CATEGORICAL ? entry->key :
							 OidOutputFunctionCall(sr->conv.outfunc, value));
		MemoryContextSwitchTo(old);
	}
	return entry->index;
}

/* Keeps one row of the source, with its class. */
static bool
split_receive(TupleTableSlot *slot, DestReceiver *self)
{
	SplitReceiver *sr = (SplitReceiver *) self;
	TupleDesc	desc = slot->tts_tupleDescriptor;
	MemoryContext old = MemoryContextSwitchTo(sr->row_cxt);

	slot_getallattrs(slot);
	for (int i = 0; i < desc->natts; i++)
	{
		Datum		v = slot->tts_values[i];

		sr->nulls[i] = slot->tts_isnull[i];
		/* the kept copy must not point into the source's TOAST table */
		if (!sr->nulls[i] && TupleDescAttr(desc, i)->attlen == -1 &&
			VARATT_IS_EXTERNAL(DatumGetPointer(v)))
			v = PointerGetDatum(detoast_external_attr((struct varlena *) DatumGetPointer(v)));
		sr->values[i] = v;
	}
	tuplestore_putvalues(sr->store, desc, sr->values, sr->nulls);

	if (sr->nrows == sr->cap)
	{
		sr->cap *= 2;
		sr->row_class = repalloc_huge(sr->row_class, sizeof(int32) * sr->cap);
	}
	sr->row_class[sr->nrows++] = sr->stratify < 0 || slot->tts_isnull[sr->stratify] ? -1 :
		split_class_of(sr, slot->tts_values[sr->stratify]);
	MemoryContextSwitchTo(old);
	return true;
}

static void
split_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
split_shutdown(DestReceiver *self)
{
}

static void
split_destroy(DestReceiver *self)
{
}

/* A table being filled. */
typedef struct SplitTable
{
	Relation	rel;
	TupleTableSlot *slot;
	BulkInsertState bistate;
} SplitTable;

/* Opens a created table for writing rows straight into it. */
static void
split_table_open(SplitTable *t, const NewTable *nt)
{
	Oid			relid = get_relname_relid(nt->relname, nt->nsp);

	if (!OidIsValid(relid))
		elog(ERROR, "created table \"%s\" not found", nt->qualified);
	t->rel = table_open(relid, RowExclusiveLock);
	/* rows go straight into the heap: nothing may watch the table yet */
	if (t->rel->rd_rel->relhasindex || t->rel->trigdesc != NULL || t->rel->rd_rel->relhasrules)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("new table \"%s\" already has indexes, triggers or rules", nt->arg),
				 errdetail("An event trigger added them when the table was created.")));
	t->slot = table_slot_create(t->rel, NULL);
	t->bistate = GetBulkInsertState();
}

/* Finishes writing a table. */
static void
split_table_close(SplitTable *t)
{
	FreeBulkInsertState(t->bistate);
	table_finish_bulk_insert(t->rel, TABLE_INSERT_SKIP_FSM);
	ExecDropSingleTupleTableSlot(t->slot);
	table_close(t->rel, NoLock);
}

/*
 * ml_split writes the rows of a source into a train and a test table,
 * split as ml.train splits them, and returns the counts.
 *
 * Ordinals: rows whose stratify value is not NULL are numbered 0, 1, ...
 * in the order the source returns them, as ml.train numbers the rows of
 * a non-NULL target; rows with a NULL stratify value form a class of
 * their own and are numbered after them, so they change nothing for the
 * other rows.  Without stratify every row is numbered in order.
 */
Datum
ml_split(PG_FUNCTION_ARGS)
{
	char	   *source = DataTextArg(fcinfo, 0, "source");
	char	   *train_arg = DataTextArg(fcinfo, 1, "train_into");
	char	   *test_arg = DataTextArg(fcinfo, 2, "test_into");
	double		test_size = PG_ARGISNULL(3) ? 0.25 : PG_GETARG_FLOAT8(3);
	char	   *stratify = PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4));
	int32		seed = PG_ARGISNULL(5) ? 42 : PG_GETARG_INT32(5);
	MemoryContext work;
	NewTable	train_nt;
	NewTable	test_nt;
	char	   *query;
	SPIPlanPtr	plan;
	CachedPlanSource *ps;
	TupleDesc	desc;
	SplitReceiver sr;
	Portal		portal;
	int			nclasses;
	int64		nnull = 0;
	int64		nvalued = 0;
	double	   *strata = NULL;
	int64	   *train_rows;
	int64	   *test_rows;
	int64		ntrain;
	int64		ntest;
	bool	   *is_test;
	int64	   *class_train;
	int64	   *class_test;
	SplitTable	tables[2];
	TupleTableSlot *slot;
	CommandId	cid;
	int64		seen_null = 0;
	int64		seen_valued = 0;
	JsonbParseState *st = NULL;
	Jsonb	   *report;
	Jsonb	   *result_copy;
	ListCell   *lc;

	if (isnan(test_size) || test_size < 0.0 || test_size >= 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("test_size must be at least 0 and below 1, not %g", test_size)));
	if (seed < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("seed must be a non-negative integer, not %d", seed),
				 errhint("ml.train takes seeds from 0 to 2147483647; use the same one here.")));
	NewTableResolve(train_arg, "train_into", &train_nt);
	NewTableResolve(test_arg, "test_into", &test_nt);
	if (train_nt.nsp == test_nt.nsp && strcmp(train_nt.relname, test_nt.relname) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("train_into and test_into name the same table \"%s\"", train_arg)));
	if (OidIsValid(train_nt.existing))
		NewTableExistsError(&train_nt, false);
	if (OidIsValid(test_nt.existing))
		NewTableExistsError(&test_nt, false);
	query = ReaderSourceQuery(source);

	/* from here on, work memory is SPI's; the report is copied out at the end */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	work = CurrentMemoryContext;

	ps = SourcePrepare(query, &plan);
	desc = CreateTupleDescCopy(ps->resultDesc);

	memset(&sr, 0, sizeof(sr));
	sr.stratify = stratify ? SourceFindColumn(desc, stratify, "stratify") : -1;
	if (stratify)
	{
		HASHCTL		ctl;

		ValueConverterInit(&sr.conv, TupleDescAttr(desc, sr.stratify)->atttypid);
		if (sr.conv.kind != VALUE_NUMERIC && sr.conv.kind != VALUE_CATEGORICAL)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("stratify column \"%s\" has unsupported type %s", stratify,
							format_type_be(TupleDescAttr(desc, sr.stratify)->atttypid)),
					 errhint("Stratify by a number, boolean, date, text or enum column; cast it in the source query.")));
		ctl.keysize = sizeof(char *);
		ctl.entrysize = sizeof(ClassEntry);
		ctl.hash = class_hash;
		ctl.match = class_match;
		ctl.hcxt = work;
		sr.classes = hash_create("pgmaker split classes", 64, &ctl,
								 HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	}

	NewTableCreate(&train_nt, "*", query);
	NewTableCreate(&test_nt, "*", query);

	/* read the source once, in the order ml.train reads it */
	sr.pub.receiveSlot = split_receive;
	sr.pub.rStartup = split_startup;
	sr.pub.rShutdown = split_shutdown;
	sr.pub.rDestroy = split_destroy;
	sr.pub.mydest = DestNone;
	sr.cxt = work;
	sr.row_cxt = AllocSetContextCreate(work, "pgmaker split row", ALLOCSET_DEFAULT_SIZES);
	sr.store = tuplestore_begin_heap(false, false, work_mem);
	sr.values = palloc(sizeof(Datum) * Max(desc->natts, 1));
	sr.nulls = palloc(sizeof(bool) * Max(desc->natts, 1));
	sr.cap = 1024;
	sr.row_class = palloc(sizeof(int32) * sr.cap);

	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	for (;;)
	{
		uint64		fetched = PortalRunFetch(portal, FETCH_FORWARD, SPLIT_BATCH_ROWS,
											 (DestReceiver *) &sr);

		MemoryContextReset(sr.row_cxt);
		CHECK_FOR_INTERRUPTS();
		if (fetched < SPLIT_BATCH_ROWS)
			break;
	}
	SPI_cursor_close(portal);

	/* the split, by ordinal */
	nclasses = list_length(sr.labels);
	for (int64 i = 0; i < sr.nrows; i++)
		nnull += sr.row_class[i] < 0;
	nvalued = sr.nrows - nnull;
	if (stratify)
	{
		strata = palloc_extended(sizeof(double) * Max(sr.nrows, 1), MCXT_ALLOC_HUGE);
		for (int64 i = 0; i < sr.nrows; i++)
		{
			if (sr.row_class[i] >= 0)
				strata[seen_valued++] = sr.row_class[i];
			else
				strata[nvalued + seen_null++] = nclasses;
		}
	}
	SplitRows(sr.nrows, strata, nclasses + (nnull > 0), test_size, seed,
			  &train_rows, &ntrain, &test_rows, &ntest);
	is_test = palloc_extended(sizeof(bool) * Max(sr.nrows, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	for (int64 i = 0; i < ntest; i++)
		is_test[test_rows[i]] = true;

	/* deal the rows out */
	class_train = palloc0(sizeof(int64) * (nclasses + 1));
	class_test = palloc0(sizeof(int64) * (nclasses + 1));
	split_table_open(&tables[0], &train_nt);
	split_table_open(&tables[1], &test_nt);
	slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	cid = GetCurrentCommandId(true);
	seen_null = seen_valued = 0;
	for (int64 i = 0; i < sr.nrows; i++)
	{
		int			cls = sr.row_class[i] < 0 ? nclasses : sr.row_class[i];
		int64		ordinal = sr.row_class[i] < 0 ? nvalued + seen_null++ : seen_valued++;
		SplitTable *t = &tables[is_test[ordinal] ? 1 : 0];

		if (!tuplestore_gettupleslot(sr.store, true, false, slot))
			elog(ERROR, "split lost row %lld", (long long) i);
		ExecCopySlot(t->slot, slot);
		table_tuple_insert(t->rel, t->slot, cid, TABLE_INSERT_SKIP_FSM, t->bistate);
		if (is_test[ordinal])
			class_test[cls]++;
		else
			class_train[cls]++;
		if (i % SPLIT_BATCH_ROWS == 0)
			CHECK_FOR_INTERRUPTS();
	}
	ExecDropSingleTupleTableSlot(slot);
	split_table_close(&tables[0]);
	split_table_close(&tables[1]);
	tuplestore_end(sr.store);
	CommandCounterIncrement();

	/* the report */
	JbBeginObject(&st);
	JbKey(&st, "rows");
	JbInt(&st, sr.nrows);
	JbKey(&st, "train");
	JbInt(&st, ntrain);
	JbKey(&st, "test");
	JbInt(&st, ntest);
	if (stratify)
	{
		int			c = 0;

		JbKey(&st, "classes");
		JbBeginArray(&st);
		foreach(lc, sr.labels)
		{
			JbBeginObject(&st);
			JbKey(&st, "class");
			JbString(&st, lfirst(lc));
			JbKey(&st, "train");
			JbInt(&st, class_train[c]);
			JbKey(&st, "test");
			JbInt(&st, class_test[c]);
			JbEndObject(&st);
			c++;
		}
		if (nnull > 0)
		{
			JbBeginObject(&st);
			JbKey(&st, "class");
			JbNull(&st);
			JbKey(&st, "train");
			JbInt(&st, class_train[nclasses]);
			JbKey(&st, "test");
			JbInt(&st, class_test[nclasses]);
			JbEndObject(&st);
		}
		JbEndArray(&st);
	}
	report = JbFinishObject(&st);
	result_copy = SPI_palloc(VARSIZE(report));
	memcpy(result_copy, report, VARSIZE(report));
	SPI_finish();
	PG_RETURN_JSONB_P(result_copy);
}
