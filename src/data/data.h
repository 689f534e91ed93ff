/*-------------------------------------------------------------------------
 * src/data/data.h
 *		The data reader: a source (table, view or query) read through an
 *		SPI cursor into typed, column-major columns; value conversion shared
 *		with prediction; the deterministic train/test split.
 *-------------------------------------------------------------------------
 */
#ifndef PGMAKER_DATA_H
#define PGMAKER_DATA_H

#include "pgmaker.h"

#include "access/tupdesc.h"
#include "nodes/pg_list.h"

/* How a value of a PostgreSQL type becomes a feature. */
typedef enum ValueKind
{
	VALUE_NUMERIC,				/* int, float, numeric, bool, date, timestamp */
	VALUE_CATEGORICAL,			/* text, varchar, char, name, enum */
	VALUE_ARRAY,				/* one-dimensional numeric array */
	VALUE_UNSUPPORTED
} ValueKind;

/* The conversion of one PostgreSQL type, resolved once per column. */
typedef struct ValueConverter
{
	Oid			typid;			/* the type as declared (may be a domain) */
	Oid			basetype;		/* after stripping domains */
	ValueKind	kind;
	Oid			elemtype;		/* VALUE_ARRAY: element type */
	int16		elemlen;
	bool		elembyval;
	char		elemalign;
	Oid			outfunc;		/* VALUE_CATEGORICAL: output function */
	bool		outfunc_needed;
} ValueConverter;

extern void ValueConverterInit(ValueConverter *conv, Oid typid);
extern double ValueToDouble(const ValueConverter *conv, Datum value);
extern char *ValueToCString(const ValueConverter *conv, Datum value);
extern int	ValueArrayToDoubles(const ValueConverter *conv, Datum value,
								double *out, int expected, const char *colname);
extern void ValueCheckFinite(double v, const char *colname);
extern ValueKind ValueTypeKind(Oid basetype);
extern double ValueFromText(Oid basetype, const char *text);

/* A column of input features: numeric (NaN marks NULL) or categorical. */
typedef struct DataColumn
{
	char	   *name;			/* feature name: "col" or "col[2]" */
	char	   *source;			/* column of the source it comes from */
	int			element;		/* 0 for a scalar column, else 1-based */
	Oid			typid;			/* type in the source */
	bool		categorical;
	double	   *values;			/* numeric: one per row, NaN = NULL */
	int32	   *codes;			/* categorical: index into dict, -1 = NULL */
	char	  **dict;			/* categorical: distinct values */
	int			ndict;
} DataColumn;

/* Everything read from a source, column-major. */
typedef struct DataSet
{
	int64		nrows;
	int			ncols;
	DataColumn *cols;
	DataColumn *target;			/* NULL when no target was asked for */
	int64		null_targets;	/* rows skipped because the target was NULL */
	Size		bytes;			/* memory held, counted against the limit */
} DataSet;

extern DataSet *ReaderLoad(const char *source, const char *target,
						   List *exclude);
extern char *ReaderSourceQuery(const char *source);
extern int	DataSetFindColumn(const DataSet *ds, const char *name);

/* Deterministic split (split.c). */
extern void SplitRows(int64 nrows, const double *strata, int nstrata,
					  double test_size, int64 seed,
					  int64 **train, int64 *ntrain,
					  int64 **test, int64 *ntest);
extern uint64 SplitHash(int64 ordinal, int64 seed);
extern uint64 SplitSelectKth(uint64 *v, int64 n, int64 k);
extern void SplitFolds(int64 nrows, const double *strata, int k, int64 seed, int *fold);

/*
 * New tables written from a source (tables.c), for ml.clean and ml.split:
 * a name resolved as CREATE TABLE would resolve it, the checked source,
 * and generated statements run through SPI (the caller is connected).
 */
typedef struct NewTable
{
	const char *arg;			/* as the caller wrote it */
	Oid			nsp;			/* creation schema */
	char	   *relname;
	char	   *qualified;		/* quoted schema.name */
	Oid			existing;		/* the relation of that name, or InvalidOid */
} NewTable;

struct _SPI_plan;
struct CachedPlanSource;
struct FunctionCallInfoBaseData;

extern void NewTableResolve(const char *arg, const char *what, NewTable *t);
extern void NewTableExistsError(const NewTable *t, bool can_replace);
extern void NewTableCreate(const NewTable *t, const char *select_list,
						   const char *query);
extern struct CachedPlanSource *SourcePrepare(const char *query,
											  struct _SPI_plan **plan);
extern int	SourceFindColumn(TupleDesc desc, const char *name, const char *what);
extern void DataRunStatement(const char *sql, int expected);
extern char *DataTextArg(struct FunctionCallInfoBaseData *fcinfo, int i,
						 const char *name);

#endif							/* PGMAKER_DATA_H */
