/*-------------------------------------------------------------------------
 * src/prep/prep.h
 *		The feature pipeline: imputation, scaling and one-hot encoding,
 *		fitted on the training rows only, stored in the model and replayed
 *		by every prediction.
 *-------------------------------------------------------------------------
 */
#ifndef PGMAKER_PREP_H
#define PGMAKER_PREP_H

#include "pgmaker.h"

#include <math.h>

#include "data/data.h"
#include "lib/stringinfo.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"

struct BlobReader;

typedef enum ImputeKind
{
	IMPUTE_MEAN,
	IMPUTE_MEDIAN,
	IMPUTE_MOST_FREQUENT,
	IMPUTE_CONSTANT,
	IMPUTE_ERROR,
	IMPUTE_CATEGORY,			/* categorical only: NULL is its own category */
	IMPUTE_NONE					/* numeric, for algorithms that take missing
								 * values: NULL stays NaN */
} ImputeKind;

typedef enum ScaleKind
{
	SCALE_NONE,
	SCALE_STANDARD,
	SCALE_MINMAX,
	SCALE_ROBUST,
	SCALE_DEFAULT				/* options only: the algorithm's default */
} ScaleKind;

#define PIPELINE_DEFAULT_MAX_CATEGORIES 32

/* What the user asked for one column (or for all, as defaults). */
typedef struct ColumnOptions
{
	char	   *column;			/* NULL for the defaults */
	bool		exclude;
	bool		impute_set;
	ImputeKind	impute;
	bool		fill_is_text;
	double		fill;			/* impute constant: numeric value */
	char	   *fill_text;		/* impute constant: category */
	ScaleKind	scale;
	int			max_categories;	/* 0 = default */
} ColumnOptions;

typedef struct PipelineOptions
{
	ColumnOptions defaults;
	List	   *columns;		/* of ColumnOptions * */
	List	   *exclude;		/* of String: columns the reader skips */
} PipelineOptions;

/* One fitted input column and the features it produces. */
typedef struct PipelineColumn
{
	char	   *name;			/* input name: "col" or "col[2]" */
	char	   *source;			/* column of the source */
	int			element;		/* 0 scalar, else 1-based array element */
	bool		categorical;
	ImputeKind	impute;
	/* numeric */
	Oid			value_type;		/* built-in base type of the source column */
	double		fill;			/* value replacing NULL */
	ScaleKind	scale;
	double		center;
	double		scale_by;		/* transformed = (x - center) / scale_by */
	double		inv_scale;		/* 1 / scale_by, derived: what is applied */
	/* categorical: features are categories[], then other, then null */
	int			ncategories;
	char	  **categories;
	bool		has_other;
	bool		has_null;
	int			fill_category;	/* impute most_frequent/constant: its index */
	HTAB	   *lookup;			/* category -> index, built on first use */
	/* statistics of the raw training values */
	double		raw_mean;
	double		raw_std;
	double		null_fraction;
	/* output features */
	int			first_feature;
	int			nfeatures;
} PipelineColumn;

typedef struct Pipeline
{
	int			ncolumns;
	PipelineColumn *columns;
	int			nfeatures;
	char	  **feature_names;
} Pipeline;

/* A pipeline bound to a DataSet: where each of its columns is. */
typedef struct PipelineBinding
{
	const Pipeline *pipeline;
	const DataSet *ds;
	int		   *colmap;			/* pipeline column -> DataSet column */
	int32	  **code_slot;		/* categorical: dict code -> feature offset, -1 */
} PipelineBinding;

/* One raw value handed to prediction. */
typedef struct PipelineValue
{
	bool		isnull;
	double		num;			/* numeric column */
	const char *str;			/* categorical column */
} PipelineValue;

extern void PipelineNullNotAllowed(const char *column) pg_attribute_noreturn();

/*
 * PipelineTransformNumber imputes (NaN is NULL) and scales one value of a
 * numeric column: the single definition every transform path uses.
 */
static inline double
PipelineTransformNumber(const PipelineColumn *pc, double v)
{
	if (isnan(v))
	{
		if (pc->impute == IMPUTE_ERROR)
			PipelineNullNotAllowed(pc->name);
		v = pc->fill;
	}
	return (v - pc->center) * pc->inv_scale;
}

extern PipelineOptions *PipelineParseOptions(Jsonb *preprocess);
extern Pipeline *PipelineFit(const DataSet *ds, const int64 *rows, int64 nrows,
							 const PipelineOptions *opts, ScaleKind default_scale,
							 bool keep_missing);
extern void PipelineLayout(Pipeline *pl);
extern PipelineBinding *PipelineBind(const Pipeline *pl, const DataSet *ds);
extern void PipelineTransformBlock(const PipelineBinding *b, const int64 *rows,
								   int n, double *out, int ld);
extern void PipelineTransformValues(const Pipeline *pl, const PipelineValue *vals,
									double *out);
extern int	PipelineFindColumn(const Pipeline *pl, const char *name);
extern void PipelineSerialize(const Pipeline *pl, StringInfo buf);
extern Pipeline *PipelineDeserialize(struct BlobReader *r);
extern Jsonb *PipelineDescribe(const Pipeline *pl);
extern Jsonb *PipelineBaseline(const Pipeline *pl);
extern const char *ImputeName(ImputeKind k);
extern const char *ScaleName(ScaleKind k);

#endif							/* PGMAKER_PREP_H */
