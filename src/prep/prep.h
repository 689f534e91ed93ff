/*-------------------------------------------------------------------------
 * src/prep/prep.h
 *		The feature pipeline: transformations (date parts, clipping, log1p,
 *		quantile bins), imputation, scaling, categorical encodings (one-hot,
 *		ordinal, target, hash) and interactions, fitted on the training
 *		rows only, stored in the model and replayed by every prediction.
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
	SCALE_MAXABS,
	SCALE_DEFAULT				/* options only: the algorithm's default */
} ScaleKind;

typedef enum EncodeKind
{
	ENCODE_ONE_HOT,
	ENCODE_ORDINAL,
	ENCODE_TARGET,
	ENCODE_HASH,
	ENCODE_DEFAULT				/* options only */
} EncodeKind;

/* A part of a date or timestamp that becomes a feature of its own. */
typedef enum DerivePart
{
	DERIVE_NONE,
	DERIVE_YEAR,
	DERIVE_MONTH,
	DERIVE_DAY,
	DERIVE_DOW,
	DERIVE_HOUR,
	DERIVE_EPOCH
} DerivePart;

#define DERIVE_PARTS 7
#define PIPELINE_DEFAULT_SMOOTHING 10.0
#define PIPELINE_MAX_BUCKETS 1000000

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
	/* categorical encodings */
	EncodeKind	encode;
	List	   *order;			/* ordinal: explicit categories, of String */
	double		smoothing;		/* target: < 0 means default */
	int			buckets;		/* hash: 0 = unset */
	/* numeric transforms */
	bool		log1p;
	bool		clip_set;
	double		clip_lo;		/* -Infinity when open */
	double		clip_hi;		/* +Infinity when open */
	int			bins;			/* 0 = none */
	List	   *parts;			/* date parts: of Integer (DerivePart) */
} ColumnOptions;

typedef struct PipelineOptions
{
	ColumnOptions defaults;
	List	   *columns;		/* of ColumnOptions * */
	List	   *exclude;		/* of String: columns the reader skips */
	List	   *interactions;	/* of List of two String */
} PipelineOptions;

/* What the pipeline may learn from the target (target encoding). */
typedef struct PipelineTarget
{
	MLTask		task;
	const double *y;			/* per training row, in training order */
	int			nclasses;
} PipelineTarget;

/* One fitted input column and the features it produces. */
typedef struct PipelineColumn
{
	char	   *name;			/* its name: "col", "col[2]", "col.year" */
	char	   *input;			/* the DataSet column it reads: "col", "col[2]" */
	char	   *source;			/* column of the source */
	int			element;		/* 0 scalar, else 1-based array element */
	bool		categorical;
	ImputeKind	impute;
	/* numeric, transformed in this order: part, clip, log1p, bins */
	Oid			value_type;		/* built-in base type of the source column */
	DerivePart	derive;
	bool		clip_set;
	double		clip_lo;
	double		clip_hi;
	bool		log1p;
	int			nbins;			/* quantile bins: value -> bin index */
	double	   *bin_edges;		/* nbins - 1 inner edges, ascending */
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
	EncodeKind	encode;
	int			nbuckets;		/* hash */
	int			target_width;	/* target: values per category */
	double	   *target_values;	/* target: ncategories x target_width */
	double	   *target_default; /* target: for unseen values and NULL */
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
	int			ninteractions;
	int		   *interactions;	/* pairs of column indexes: products, last */
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
extern double PipelinePreTransform(const PipelineColumn *pc, double v);
extern double PipelineDerivedValue(const PipelineColumn *pc, double v);

/* Does a numeric column transform its values before imputing? */
#define PipelineHasPre(pc) \
	((pc)->derive != DERIVE_NONE || (pc)->clip_set || (pc)->log1p || (pc)->nbins > 0)

/*
 * PipelineTransformNumber transforms (date part, clip, log1p, bins),
 * imputes (NaN is NULL) and scales one value of a numeric column: the
 * single definition every transform path uses.
 */
static inline double
PipelineTransformNumber(const PipelineColumn *pc, double v)
{
	if (!isnan(v) && PipelineHasPre(pc))
		v = PipelinePreTransform(pc, v);
	if (isnan(v))
	{
		if (pc->impute == IMPUTE_ERROR)
			PipelineNullNotAllowed(pc->name);
		v = pc->fill;
	}
	return (v - pc->center) * pc->inv_scale;
}

extern PipelineOptions *PipelineParseOptions(Jsonb *preprocess);
extern void PipelineSetMoments(Pipeline *pl, int i, int64 n, double mean, double m2);
extern Pipeline *PipelineFit(const DataSet *ds, const int64 *rows, int64 nrows,
							 const PipelineOptions *opts, ScaleKind default_scale,
							 bool keep_missing, const PipelineTarget *target);
extern void PipelineLayout(Pipeline *pl);
extern PipelineBinding *PipelineBind(const Pipeline *pl, const DataSet *ds);
extern void PipelineTransformBlock(const PipelineBinding *b, const int64 *rows,
								   int n, double *out, int ld);
extern void PipelineTransformValues(const Pipeline *pl, const PipelineValue *vals,
									double *out);
extern void PipelineTransformInteractions(const Pipeline *pl, double *out, int n, int ld);
extern int	PipelineFindColumn(const Pipeline *pl, const char *name);
extern void PipelineSerialize(const Pipeline *pl, StringInfo buf);
extern Pipeline *PipelineDeserialize(struct BlobReader *r);
extern Jsonb *PipelineDescribe(const Pipeline *pl);
extern const char *ImputeName(ImputeKind k);
extern const char *ScaleName(ScaleKind k);
extern const char *EncodeName(EncodeKind k);
extern const char *DeriveName(DerivePart k);

/* Options (options.c). */
extern void PipelineOptionError(const char *column, const char *msg) pg_attribute_noreturn();
extern ColumnOptions PipelineColumnOptions(const PipelineOptions *opts, const DataColumn *col,
										   ScaleKind default_scale);

#endif							/* PGMAKER_PREP_H */
